"""Who speaks: `speakers show FILE`, `speakers name FILE S1 NAME`, and `transcript FILE`
(the transcript in speaker turns when the `speakers` asset has run for the file)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import click

from media_assets.cli.output import fail, get_settings, name_of, open_db

KEY = re.compile(r"^[0-9a-f]{16}$")


def _key_of(engine, file: str) -> str:
    """A catalogued file's content key; FILE is a path, or a key itself."""
    from media_assets.lib.files.store import FileStore, display_path

    if KEY.match(file) and not os.path.exists(file):
        if FileStore(engine).get([file]).get(file) is None:
            fail(f"no file with key {file} in the catalogue")
        return file
    entry = FileStore(engine).entry(display_path(os.path.abspath(Path(file).expanduser())))
    if entry is None or not entry["key"]:
        fail(f"{file} is not in the catalogue (run `media-assets ingest` on its folder)")
    return entry["key"]


def _at(seconds: float) -> str:
    m, s = divmod(max(0.0, float(seconds)), 60)
    return f"{int(m):02d}:{s:04.1f}"


def _who(label: str, name: str | None) -> str:
    return f"{name} ({label})" if name else label


def _speakers_or_fail(engine, key: str, file: str) -> dict:
    from media_assets.lib.speech.speaker_store import speakers_of

    found = speakers_of(engine, key)
    if found is None:
        fail(f"{file}: no speakers yet (the `speakers` asset runs after `transcripts` on "
             "audio and video; `media-assets where FILE` shows its state)")
    return found


@click.group()
def speakers():
    """Who speaks in a file, and names for voices."""


@speakers.command("show")
@click.argument("file")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show(file: str, as_json: bool):
    """FILE's speakers (S1, S2, ... in order of first speech; a name when given to that
    voice) with their talk time, and the turns."""
    engine = open_db(get_settings()).engine
    found = _speakers_or_fail(engine, _key_of(engine, file), file)
    if as_json:
        click.echo(json.dumps(found, indent=2, default=str, ensure_ascii=False))
        return
    click.echo(f"{found['speaker_count']} speakers, {found['speech_s']:.0f} s of speech"
               + (f" ({found['note']})" if found["note"] else ""))
    for s in found["speakers"]:
        click.echo(f"  {_who(s['label'], s['name']):<24} {s['talk_s']:6.1f} s  "
                   f"first at {_at(s['first_s'])}")
    _print_turns(found["turns"])


def _print_turns(turns: list[dict]) -> None:
    for t in turns:
        click.echo(f"[{_at(t['start'])}-{_at(t['end'])}] {_who(t['speaker'], t['name'])}: "
                   f"{t['text']}")


@speakers.command("name")
@click.argument("file")
@click.argument("label")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def name(file: str, label: str, name: str, as_json: bool):
    """Call FILE's speaker LABEL (S1, S2, ...) NAME. The name is kept with that voice and
    applies to every file whose speaker's voice is within cosine distance 0.1 of it (the
    nearest named voice wins; files ingested later too). Naming it again renames it."""
    from media_assets.lib.files.store import FileStore
    from media_assets.lib.speech.speaker_store import NAME_DISTANCE, name_speaker

    engine = open_db(get_settings()).engine
    key = _key_of(engine, file)
    found = _speakers_or_fail(engine, key, file)
    label = label.upper()
    if label not in {s["label"] for s in found["speakers"]}:
        fail(f"{file} has no speaker {label}; it has "
             f"{', '.join(s['label'] for s in found['speakers']) or 'none'}")
    try:
        carried = name_speaker(engine, key, label, name)
    except ValueError as exc:
        fail(str(exc), 2)
    rows = FileStore(engine).get(sorted({k for k, _ in carried}))
    out = [{"key": k, "label": lab, "path": rows[k].primary_path if k in rows else None}
           for k, lab in carried]
    if as_json:
        click.echo(json.dumps({"name": " ".join(name.split()), "distance": NAME_DISTANCE,
                               "speakers": out}, indent=2, ensure_ascii=False))
        return
    others = [o for o in out if o["key"] != key]
    click.echo(f"{label} of {name_of(rows[key].primary_path)} is now "
               f"{' '.join(name.split())!r}; the same voice (cosine distance <= "
               f"{NAME_DISTANCE}) in {len(others)} other file(s):")
    for o in others:
        click.echo(f"  {o['label']}  {name_of(o['path'] or o['key'])}  ({o['key']})")


@click.command()
@click.argument("file")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def transcript(file: str, as_json: bool):
    """FILE's transcript: in speaker turns (name or S1, S2, ...) when its speakers are
    known, else its timed segments."""
    from media_assets.lib.speech.speaker_store import segment_speakers, speakers_of
    from media_assets.lib.speech.store import transcript_of

    engine = open_db(get_settings()).engine
    key = _key_of(engine, file)
    t = transcript_of(engine, key)
    if t is None:
        fail(f"{file}: no transcript (audio and video only, after the `transcripts` asset)")
    found = speakers_of(engine, key)
    if as_json:
        by_idx = segment_speakers(engine, key)
        names = {s["label"]: s["name"] for s in (found or {}).get("speakers", [])}
        for i, s in enumerate(t["segments"]):
            s["speaker"] = by_idx.get(i)
            s["speaker_name"] = names.get(by_idx.get(i))
        click.echo(json.dumps({**t, "speakers": found}, indent=2, default=str,
                              ensure_ascii=False))
        return
    click.echo(f"language {t['language'] or 'unknown'}"
               + (f", {found['speaker_count']} speakers" if found else
                  ", speakers not known yet"))
    if found and found["turns"]:
        _print_turns(found["turns"])
        return
    for s in t["segments"]:
        click.echo(f"[{_at(s['start'])}-{_at(s['end'])}] {s['text'].strip()}")
