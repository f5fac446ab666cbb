"""Speakers: who speaks when in audio files and video soundtracks."""

import contextlib

import dagster as dg

from media_assets.defs.assets.speech import AUDIO_GROUP, has_audio, transcripts
from media_assets.defs.file_metadata import FileOutcome
from media_assets.defs.per_file import FileBatch, per_file_asset
from media_assets.defs.resources import CatalogResource, GpuResource
from media_assets.lib.models.roles import Role
from media_assets.lib.speech.speaker_store import store_speakers
from media_assets.lib.speech.speakers import diarize
from media_assets.lib.speech.store import transcript_of


@per_file_asset(group_name=AUDIO_GROUP, file_kinds=("audio", "video"), deps=[transcripts],
                model=Role.SPEAKER, kinds={"pytorch", "postgres"})
def speakers(context: dg.AssetExecutionContext, catalog: CatalogResource,
             gpu: GpuResource) -> FileOutcome:
    """Who speaks when: each transcript segment (long ones in 2-s pieces) embedded with the
    GE2E voice encoder (Resemblyzer's weights), clustered into speakers whose number is not
    given (lib/speech/speakers.py), labelled S1, S2, ... in order of first speech; a label
    per segment part and word range, the speaker count and each speaker's talk time per
    file. Names given to a voice apply to every file where it is close enough. Silence and
    music (no transcript segments) give zero speakers and say why."""
    batch = FileBatch(context, catalog, gpu, accept=has_audio,
                      columns=["speakers", "talk time", "note"])
    audio_s = 0.0
    why = batch.model_missing() if len(batch) else None
    if why is not None:
        batch.fail_all(f"no speaker model: {why}")
        return batch.result()
    ref = batch.model_ref if len(batch) else ""
    with gpu.manager.use(Role.SPEAKER) if len(batch) else contextlib.nullcontext() as encoder:
        for item in batch:
            with batch.each(item):
                transcript = transcript_of(batch.engine, item.key)
                if transcript is None:  # Whisper missing, or its step failed for this file
                    batch.skip(item, "no transcript yet: speakers follow the transcripts")
                    continue
                d = diarize(encoder, item.path, transcript["segments"])
                store_speakers(batch.engine, item.key, d, ref)
                audio_s += d.speech_s
                batch.ok(item, len(d.speakers),
                         ", ".join(f"{s.label} {s.talk_s:.0f} s" for s in d.speakers),
                         d.note or "")
    metadata = {"speech_seconds": dg.MetadataValue.float(round(audio_s, 1))}
    if batch.done:
        metadata.update(gpu.report(Role.SPEAKER))
    # Versioned like transcripts (resume_plan knows CLIP and text spaces only); the model
    # ref is in the rows.
    return batch.result(metadata)
