"""Speech assets: faster-whisper transcripts of audio files and video soundtracks."""

import time

import dagster as dg

from media_assets.defs.assets.ingest import media_file
from media_assets.defs.partitions import per_file_asset
from media_assets.defs.resources import CatalogResource, GpuResource
from media_assets.lib.catalog.speech import store_transcript
from media_assets.lib.models.whisper import transcribe

AUDIO_GROUP = "audio"


class TranscriptConfig(dg.Config):
    """Whisper settings; editable in the launchpad."""

    language: str = ""  # empty: detect per file
    word_timestamps: bool = False
    beam_size: int = 5
    # >1: faster-whisper's batched pipeline (faster and more accurate here, ~650 MB RSS).
    batch_size: int = 8
    chunk_minutes: float = 10.0


def _has_audio(details: dict) -> bool:
    return any(s.get("type") == "audio" for s in details.get("streams", []))


@per_file_asset(group_name=AUDIO_GROUP, deps=[media_file],
                uses_models=True, kinds={"pytorch", "postgres"})
def transcripts(context: dg.AssetExecutionContext, config: TranscriptConfig,
                catalog: CatalogResource, gpu: GpuResource) -> dg.MaterializeResult:
    """Transcripts of the batch's audio files and video soundtracks: the detected language
    and its probability, timed segments (words too when asked), stored with a full-text index.
    The VAD filter keeps silence and music from producing invented text; long files are
    decoded and transcribed in chunks, with progress in the run log."""
    cat = catalog.get()
    rows = cat.files.get(context.partition_keys)
    todo = [k for k, r in rows.items()
            if r.status == "ok" and r.kind in ("audio", "video") and _has_audio(r.details)]
    done, failed, audio_s = [], {}, 0.0
    start = time.perf_counter()
    if todo:
        with gpu.manager.use("whisper") as model:
            for key in todo:
                path = cat.files.paths_of(key)[0]
                try:
                    t = transcribe(
                        model, path, language=config.language or None,
                        beam_size=config.beam_size, word_timestamps=config.word_timestamps,
                        chunk_seconds=config.chunk_minutes * 60, batch_size=config.batch_size,
                        on_progress=lambda d, total, p=path: context.log.info(
                            f"{p}: {d:.0f} / {total or 0:.0f} s transcribed"))
                except Exception as exc:  # corrupt audio: recorded, the batch goes on
                    failed[path] = f"{type(exc).__name__}: {exc}"
                    context.log.warning(f"{path}: transcription failed: {exc}")
                    continue
                store_transcript(cat.engine, key, t, gpu.manager.spec("whisper").model_id,
                                 config.word_timestamps)
                done.append((path, t))
                audio_s += t.duration_s
    seconds = time.perf_counter() - start
    preview = ["| file | language | segments | text |", "|---|---|---|---|"]
    for path, t in done[:20]:
        name = path.rsplit("/", 1)[-1].replace("|", "\\|").replace("\n", "\\n")
        preview.append(f"| {name} | {t.language} ({(t.language_probability or 0):.2f}) | "
                       f"{len(t.segments)} | {t.text[:120].replace('|', '/')} |")
    metadata = {
        "transcribed": dg.MetadataValue.int(len(done)),
        "failed": dg.MetadataValue.json(failed),
        "audio_seconds": dg.MetadataValue.float(round(audio_s, 1)),
        "seconds": dg.MetadataValue.float(round(seconds, 2)),
        "real_time_factor": dg.MetadataValue.float(round(seconds / audio_s, 3) if audio_s else 0.0),
        "preview": dg.MetadataValue.md("\n".join(preview)),
    }
    if done:
        metadata.update(gpu.report("whisper"))
    return dg.MaterializeResult(metadata=metadata)
