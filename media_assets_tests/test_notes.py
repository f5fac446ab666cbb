"""Notes as people write them, catalogued as text and found by their own words: a Markdown
task list (it opens with "[" as JSON does), a note in Latin-1, one with a stray NUL byte.
Before, the first failed as "invalid JSON", the second was stored as Windows-1250
("crčme brűlée") and the third was an "unsupported file type"."""

from __future__ import annotations

import json

from click.testing import CliRunner

from media_assets.cli import main

NOTES = {
    "todo.md": "[ ] water the orchids\n[x] pay the electricity bill\n".encode(),
    "recette.txt": "Réunion à la maison: crème brûlée pour l'anniversaire de grand-mère"
                   .encode("latin-1"),
    "budget.txt": b"Meeting notes about the quarterly budget\0 review with the finance team.",
}


def test_notes_as_people_write_them_are_text_and_found_by_their_words(settings):
    for name, data in NOTES.items():
        (settings.inbox / name).write_bytes(data)
    (settings.inbox / "broken.json").write_text("[ ] not an export after all\n")
    run = CliRunner().invoke(main, ["ingest", "-q", "--json", "--no-clusters",
                                    str(settings.inbox)])
    summary = json.loads(run.stdout)
    assert summary["by_kind"] == {"text": {"ok": 3}, "json": {"failed": 1}}, summary
    assert [f["path"].rsplit("/", 1)[-1] for f in summary["failures"]] == ["broken.json"]
    for query, name, shown in [("water the orchids", "todo.md", "[ ] water the orchids"),
                               ("crème brûlée", "recette.txt", "crème brûlée pour"),
                               ("quarterly budget review", "budget.txt", "finance team")]:
        out = CliRunner().invoke(main, ["search", query, "-k", "3"])
        assert out.exit_code == 0, out.output
        first = out.output[out.output.index("  1. "):]
        assert first.splitlines()[0].endswith(name) and shown in first, out.output
