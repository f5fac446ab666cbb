"""Hostile input meets a bound: memory that stays flat whatever the nesting or the pixel
count, wide JSON that still loads, values PostgreSQL would take but that are not true
(NaN, latitude 4000°), and file names that only differ in bytes. Each test is named after
the behaviour it checks."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from media_assets.lib.files.json_depth import MAX_JSON_DEPTH, json_depth
from media_assets.lib.files.probe import ProbeError, probe_file


def _child(code: str, timeout: int = 120) -> dict:
    """Run `code` in a fresh interpreter whose address space is capped 1.5 GB above what
    its imports take (so a regression fails with MemoryError, not by taking the machine);
    it prints one JSON object, with `rss_growth_mb` from ru_maxrss."""
    prelude = textwrap.dedent("""
        import json, resource, sys
        from media_assets.lib.files.probe import probe_file, ProbeError, Limits
        from media_assets.lib import imaging
        def vm_kb():
            for line in open("/proc/self/status"):
                if line.startswith("VmSize:"):
                    return int(line.split()[1])
        cap = (vm_kb() + 1536 * 1024) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        def done(**kw):
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            print(json.dumps({**kw, "rss_growth_mb": (peak - base) / 1024}))
    """)
    out = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- JSON nesting ----------------------------------------------------------------------------
def test_a_32mb_json_nesting_100k_levels_is_refused_in_flat_memory(tmp_path):
    path = tmp_path / "deep.json"
    with open(path, "w") as fh:
        fh.write('{"pad": "' + "x" * (33 * 2**20) + '", "deep": ')
        fh.write("[" * 100_000 + "]" * 100_000 + "}")
    got = _child(f"""
        try:
            probe_file({str(path)!r})
            done(error=None)
        except ProbeError as exc:
            done(error=str(exc), status=exc.status)
    """)
    assert got["status"] == "refused" and "nested more than 512 levels" in got["error"], got
    assert got["rss_growth_mb"] < 64, got


@pytest.mark.parametrize("depth,refused", [(100_000, True), (MAX_JSON_DEPTH + 1, True),
                                           (MAX_JSON_DEPTH, False), (40, False)])
def test_json_nested_past_the_depth_limit_is_refused_with_a_reason(tmp_path, depth, refused):
    path = tmp_path / "nest.json"
    path.write_text('{"a": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}")
    if refused:
        with pytest.raises(ProbeError, match=f"nested more than {MAX_JSON_DEPTH} levels"):
            probe_file(path)
    else:
        assert probe_file(path).kind == "json"


def test_brackets_and_escaped_quotes_inside_strings_do_not_count_as_depth(tmp_path):
    doc = [{"s": "[[[[{{{{" * 200, "q": 'a\\"[[[' * 300, "b": "\\\\", "n": [[["x"]]]}]
    path = tmp_path / "strings.json"
    path.write_text(json.dumps(doc))
    assert json_depth(path) == 5  # list, object, and three lists under "n"
    assert probe_file(path).details["records"] == 1
