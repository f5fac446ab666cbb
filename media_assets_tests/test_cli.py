"""The `media-assets` command as a user runs it: ingest a folder, re-run it, read the status."""

import json

from click.testing import CliRunner

from media_assets.cli import main


def test_ingest_then_status(settings, sample_folder):
    folder, expected = sample_folder
    runner = CliRunner()
    first = runner.invoke(main, ["ingest", "-q", "--json", str(folder)])
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    assert summary["total"] == len(expected)
    want: dict[str, dict[str, int]] = {}
    for v in expected.values():
        kind, status = v.split("/")
        want.setdefault(kind, {}).setdefault(status, 0)
        want[kind][status] += 1
    assert summary["by_kind"] == want
    assert summary["aliases"] == 1
    failed_names = {f["path"].rsplit("/", 1)[-1] for f in summary["failures"]}
    assert failed_names == {k for k, v in expected.items() if not v.endswith("/ok")}

    # Re-running is safe: nothing new, nothing written twice.
    second = runner.invoke(main, ["ingest", "-q", "--json", str(folder)])
    again = json.loads(second.stdout)
    assert again["new"] == 0 and again["by_kind"] == want

    status = runner.invoke(main, ["status"])
    assert status.exit_code == 0
    assert "image" in status.output and "refused" in status.output
    assert "outside the inbox" in status.output
    assert "broken, bad\\nreport.json" in status.output  # a newline cannot break a line


def test_ingest_missing_folder_says_so(settings, tmp_path):
    result = CliRunner().invoke(main, ["ingest", str(tmp_path / "nope")])
    assert result.exit_code != 0
    assert "no such file or folder" in result.output
