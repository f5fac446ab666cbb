"""One partition per distinct file content; keys are sha256 prefixes (never a comma)."""

import dagster as dg

media_files = dg.DynamicPartitionsDefinition(name="media_files")

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def range_tags(keys: list[str]) -> dict[str, str]:
    """Tags that make one run cover a contiguous range of partitions (one model load)."""
    return {RANGE_START: keys[0], RANGE_END: keys[-1]}


# Per-file runs are cheap to batch: a run covers up to this many partitions, so a model
# loaded for the first file serves all of them.
MAX_PARTITIONS_PER_RUN = 256


def per_file_asset(*, group_name: str, deps=(), uses_models: bool = False, **kwargs):
    """`@dg.asset` for one partition per file, many files to a run; `uses_models` puts it in
    the `gpu` pool (dagster.yaml allows one run at a time there)."""
    return dg.asset(partitions_def=media_files, deps=list(deps), group_name=group_name,
                    backfill_policy=dg.BackfillPolicy.multi_run(MAX_PARTITIONS_PER_RUN),
                    pool="gpu" if uses_models else None, **kwargs)
