"""Cluster assets over the whole corpus (not partitioned): clusters of the CLIP space, their
labels, and their hierarchies."""

import contextlib

import dagster as dg
from pydantic import Field

from media_assets.defs.assets.images import image_embeddings
from media_assets.defs.assets.video import video_frames
from media_assets.defs.file_metadata import markdown_table
from media_assets.defs.per_file import OWNER
from media_assets.defs.resources import CatalogResource, GpuResource
from media_assets.lib.clusters.hierarchy import LabelView, enrich
from media_assets.lib.clusters.labels import label_clusters
from media_assets.lib.clusters.method import cluster_vectors
from media_assets.lib.clusters.store import (cluster_count, clusters_of, clusters_to_label, label_digest,
                                             labels_of, load_vectors, overview, save_full_run,
                                             similar_clusters, store_hierarchy, store_label)
from media_assets.lib.clusters.visuals import representative_images
from media_assets.lib.models.locate import ModelNotFound
from media_assets.lib.models.roles import Role
from media_assets.lib.search.meaning import embed_clusters

CLUSTERS_GROUP = "clusters"
LABEL_CHUNK = 16  # clusters whose representatives are decoded at once


class ClusterConfig(dg.Config):
    """How clusters are found; editable in the launchpad."""

    min_cluster_size: int = Field(default=5, ge=2,
                                  description="Smallest group of files that makes a cluster; "
                                              "smaller groups stay unsorted.")
    min_samples: int = Field(default=0, ge=0,
                             description="Neighbours a point needs to be dense (0: the same "
                                         "as min_cluster_size). Higher: more left unsorted.")


def _model_ref(gpu: GpuResource) -> str:
    try:
        return gpu.inventory.ref(Role.CLIP)
    except ModelNotFound as exc:
        raise dg.Failure(f"clusters live in a CLIP space, and CLIP is missing: {exc}") from exc


def _preview(engine, model_ref: str, limit: int = 30) -> str:
    view = overview(engine, model_ref)
    rows = [(c["id"], c["name"] or "(not named yet)", c["size"], c["folder_path"] or "",
             ", ".join((r["path"] or r["key"][:12]).rsplit("/", 1)[-1]
                       for r in c["representatives"][:3]))
            for c in view["clusters"]]
    return (markdown_table(["id", "name", "files", "folder", "representatives"], rows,
                           limit=limit)
            + f"\n\n**Unsorted:** {view['unsorted']} files")


@dg.asset(group_name=CLUSTERS_GROUP, deps=[image_embeddings, video_frames],
          kinds={"python", "postgres"}, owners=[OWNER])
def image_clusters(context: dg.AssetExecutionContext, config: ClusterConfig,
                   catalog: CatalogResource, gpu: GpuResource) -> dg.MaterializeResult:
    """Clusters of the current CLIP model's vectors of images and video key frames: HDBSCAN
    on the exact 15-nearest-neighbour graph (lib/clusters/method.py says why not on the raw
    or PCA-reduced vectors). A video counts once per cluster. Noise stays unsorted. A cluster
    that keeps at least half its members (Jaccard) keeps its id, so its labels are not
    recomputed. Each keeps its 5 most central members as representatives. Between full
    runs, new files join the nearest cluster when close enough (in image_embeddings and
    video_frames)."""
    engine = catalog.get().engine
    model_ref = _model_ref(gpu)
    vectors = load_vectors(engine, model_ref)
    found = cluster_vectors(vectors.x, config.min_cluster_size, config.min_samples or None)
    summary = save_full_run(engine, model_ref, vectors, found.labels, found.method,
                            found.seconds, config.model_dump())
    context.log.info(f"{summary.clusters} clusters of {summary.files} files "
                     f"({summary.unsorted} unsorted) in {found.seconds:.1f}s")
    return dg.MaterializeResult(metadata={
        "clusters": dg.MetadataValue.int(summary.clusters),
        "files": dg.MetadataValue.int(summary.files),
        "vectors": dg.MetadataValue.int(summary.vectors),
        "unsorted": dg.MetadataValue.int(summary.unsorted),
        "ids_kept": dg.MetadataValue.int(summary.kept_ids),
        "ids_new": dg.MetadataValue.int(summary.new_ids),
        "ids_dropped": dg.MetadataValue.int(summary.dropped_ids),
        "method": found.method, "model_ref": model_ref,
        "seconds": dg.MetadataValue.float(round(found.seconds, 3)),
        "preview": dg.MetadataValue.md(_preview(engine, model_ref)),
    })


class ClusterLabelConfig(dg.Config):
    """How clusters are named; editable in the launchpad."""

    use_captioner: bool = Field(default=True, description="False: CLIP-only names "
                                                          "(marked degraded).")


@dg.asset(group_name=CLUSTERS_GROUP, deps=[image_clusters], kinds={"pytorch", "postgres"},
          owners=[OWNER], pool="gpu")
def cluster_labels(context: dg.AssetExecutionContext, config: ClusterLabelConfig,
                   catalog: CatalogResource, gpu: GpuResource) -> dg.MaterializeResult:
    """Per new or changed cluster (its representatives changed): a name built from what
    BLIP-2's captions and answers over the representatives share, a description, tags, a
    primary category (CLIP zero-shot of the centroid) and a computed confidence (README
    "Clusters"). Without the captioner, CLIP names the cluster from a vocabulary and the
    label says it is degraded, and why."""
    engine = catalog.get().engine
    model_ref = _model_ref(gpu)
    todo = clusters_to_label(engine, model_ref)
    labelled, degraded = 0, []
    for i in range(0, len(todo), LABEL_CHUNK):
        rows = clusters_of(engine, model_ref, todo[i:i + LABEL_CHUNK])
        inputs = []
        for row in rows:
            images, problems = representative_images(engine, row.representatives)
            for p in problems:
                context.log.warning(f"cluster {row.id}: {p}")
            inputs.append((row.size, row.centroid, images))
        for row, label in zip(rows, label_clusters(gpu.manager, inputs, config.use_captioner)):
            store_label(engine, row.id, label, [k for k, _ in row.representatives])
            labelled += 1
            if label.degraded:
                degraded.append(label.degraded_reason or "")
    metadata: dict = {"labelled": dg.MetadataValue.int(labelled),
                      "unchanged": dg.MetadataValue.int(cluster_count(engine, model_ref)
                                                        - labelled),
                      "degraded": dg.MetadataValue.int(len(degraded)),
                      "preview": dg.MetadataValue.md(_preview(engine, model_ref))}
    if degraded:
        metadata["degraded_reason"] = degraded[0]
        context.log.warning(f"{len(degraded)} clusters named by CLIP only: {degraded[0]}")
    if labelled:
        metadata.update(gpu.report(Role.CLIP))
        if len(degraded) < labelled:
            metadata.update(gpu.report(Role.CAPTIONER))
    return dg.MaterializeResult(metadata=metadata)


class ClusterHierarchyConfig(dg.Config):
    """How hierarchies are made; editable in the launchpad."""

    use_llm: bool = Field(default=True, description="Ask Phi-3.5; False: the heuristic.")


@dg.asset(group_name=CLUSTERS_GROUP, deps=[cluster_labels], kinds={"pytorch", "postgres"},
          owners=[OWNER], pool="gpu")
def cluster_hierarchies(context: dg.AssetExecutionContext, config: ClusterHierarchyConfig,
                        catalog: CatalogResource, gpu: GpuResource) -> dg.MaterializeResult:
    """Per cluster whose label changed: a hierarchy (Personal › Pets › Cats), a safe
    folder path, 10-20 tags, relationships (parent from the hierarchy, similar clusters by
    centroid) and a search description, which joins search. Phi-3.5 is loaded on demand
    for the batch and unloaded after it; its JSON is validated, retried once, and replaced
    by a heuristic from the label when invalid or absent (the row says which)."""
    engine = catalog.get().engine
    model_ref = _model_ref(gpu)
    # With an LLM here, hierarchies made without it (the heuristic's) or by another LLM are
    # made again, as CLIP vectors of another model are re-embedded.
    ref = gpu.inventory.ref_or_none(Role.LLM) if config.use_llm else None
    todo = [r for r in labels_of(engine, model_ref) if r.label_digest != label_digest(r)
            or (ref is not None and r.hierarchy_llm_ref != ref)]
    for_llm = sum(1 for r in todo if r.label_digest == label_digest(r))
    sources: dict[str, int] = {}
    reasons = []
    llm_seconds = 0.0
    with contextlib.ExitStack() as stack:
        llm, why_not = gpu.open_optional(stack, Role.LLM, config.use_llm and bool(todo))
        llm_id = gpu.manager.spec(Role.LLM).model_id if llm is not None else None
        for r in todo:
            similar = [{"cluster_id": s.id, "name": s.name,
                        "similarity": round(float(s.similarity), 3)}
                       for s in similar_clusters(engine, model_ref, r.cluster_id)]
            e = enrich(llm, LabelView(r.cluster_name, r.description, list(r.tags),
                                      r.primary_category, tuple(r.captions),
                                      tuple(r.clip_terms)),
                       similar, llm_id, why_not or "no LLM", llm_ref=ref)
            e.llm_ref = ref  # tried, loaded or not (too big, broken): not redone for it
            store_hierarchy(engine, r.cluster_id, e, label_digest(r))
            llm_seconds += e.llm_seconds or 0.0
            sources[e.source] = sources.get(e.source, 0) + 1
            if e.source_reason:
                reasons.append(e.source_reason)
    metadata: dict = {"enriched": dg.MetadataValue.int(len(todo)),
                      "by_llm": dg.MetadataValue.int(sources.get("llm", 0)),
                      "by_heuristic": dg.MetadataValue.int(sources.get("heuristic", 0)),
                      "redone_for_llm": dg.MetadataValue.int(for_llm),
                      "llm_seconds_total": dg.MetadataValue.float(round(llm_seconds, 2)),
                      "preview": dg.MetadataValue.md(_preview(engine, model_ref))}
    if reasons:
        metadata["first_reason"] = reasons[0][:500]
    if llm is not None:
        metadata.update(gpu.report(Role.LLM))
    # Names, descriptions and search descriptions as sentence vectors (only changed ones).
    why = gpu.inventory.why_missing(Role.TEXT)
    if why is None:
        with gpu.manager.use(Role.TEXT) as embedder:
            metadata["texts_embedded"] = dg.MetadataValue.int(embed_clusters(engine, embedder))
    else:
        context.log.warning(f"cluster texts not embedded: {why}")
    return dg.MaterializeResult(metadata=metadata)
