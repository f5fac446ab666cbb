"""One partition per distinct file content; keys are sha256 prefixes (never a comma)."""

import dagster as dg

media_files = dg.DynamicPartitionsDefinition(name="media_files")

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def range_tags(keys: list[str]) -> dict[str, str]:
    """Tags that make one run cover a contiguous range of partitions (one model load)."""
    return {RANGE_START: keys[0], RANGE_END: keys[-1]}
