"""Speech assets: faster-whisper transcripts of audio files and video soundtracks."""

import contextlib

import dagster as dg
from pydantic import Field

from media_assets.defs.assets.files import media_file
from media_assets.defs.file_metadata import FileOutcome
from media_assets.defs.per_file import (FileBatch, blocking_check, check_result,
                                        per_file_asset)
from media_assets.defs.resources import CatalogResource, GpuResource
from media_assets.lib.files.store import FileRow, display_path
from media_assets.lib.models.roles import Role
from media_assets.lib.speech.store import store_transcript, timestamps_beyond_duration
from media_assets.lib.speech.transcribe import transcribe

AUDIO_GROUP = "audio"


class TranscriptConfig(dg.Config):
    """Whisper settings; editable in the launchpad."""

    language: str = Field(default="", description="Language code; empty: detect per file, "
                                                   "among MEDIA_ASSETS_LANGUAGES.")
    word_timestamps: bool = Field(default=True, description="Also store each word's times.")
    pause_seconds: float = Field(default=1.0, description="Split a segment where the speech "
                                                          "pauses this long (0: never).")
    beam_size: int = Field(default=5, description="Beam width of the decoder.")
    batch_size: int = Field(
        default=8, description=">1: faster-whisper's batched pipeline (faster and more "
                               "accurate here, ~650 MB RSS); 1: sequential.")
    chunk_minutes: float = Field(default=10.0, description="Audio decoded per chunk.")


def has_audio(row: FileRow) -> bool:
    return any(s.get("type") == "audio" for s in row.details.get("streams", []))


TIMESTAMPS_CHECK = "timestamps_within_duration"


@per_file_asset(group_name=AUDIO_GROUP, file_kinds=("audio", "video"), deps=[media_file],
                model=Role.WHISPER, kinds={"pytorch", "postgres"},
                check_specs=[blocking_check("transcripts", TIMESTAMPS_CHECK,
                                            "No segment ends after the audio does.")])
def transcripts(context: dg.AssetExecutionContext, config: TranscriptConfig,
                catalog: CatalogResource, gpu: GpuResource) -> FileOutcome:
    """Transcripts of the batch's audio files and video soundtracks: the language (detected
    among MEDIA_ASSETS_LANGUAGES) with its probability and the candidates weighed, segments
    split where the speech pauses and timed by their words, stored with a full-text index.
    The VAD filter keeps silence and music from producing invented text; long files are
    decoded and transcribed in chunks, with progress in the run log."""
    batch = FileBatch(context, catalog, gpu, accept=has_audio,
                      columns=["language", "segments", "text"])
    audio_s = 0.0
    with gpu.manager.use(Role.WHISPER) if len(batch) else contextlib.nullcontext() as model:
        for item in batch:
            with batch.each(item):
                t = transcribe(
                    model, item.path, language=config.language or None,
                    beam_size=config.beam_size, word_timestamps=config.word_timestamps,
                    chunk_seconds=config.chunk_minutes * 60, batch_size=config.batch_size,
                    languages=catalog.settings().languages,
                    pause_s=config.pause_seconds or None,
                    on_progress=lambda d, total, p=display_path(item.path): context.log.info(
                        f"{p}: {d:.0f} / {total or 0:.0f} s transcribed"))
                store_transcript(batch.engine, item.key, t,
                                 gpu.manager.spec(Role.WHISPER).model_id, config.word_timestamps)
                batch.ok(item, f"{t.language} ({(t.language_probability or 0):.2f})",
                         len(t.segments), t.text[:120])
                audio_s += t.duration_s
    metadata = {"audio_seconds": dg.MetadataValue.float(round(audio_s, 1))}
    if batch.done:
        metadata["real_time_factor"] = dg.MetadataValue.float(
            round(batch.elapsed / audio_s, 3) if audio_s else 0.0)
        metadata.update(gpu.report(Role.WHISPER))
    late = timestamps_beyond_duration(batch.engine, batch.done)
    return batch.result(metadata, check_results=[check_result(TIMESTAMPS_CHECK, late)])
