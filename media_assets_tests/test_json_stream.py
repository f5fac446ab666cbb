"""Large JSON documents are probed and loaded in a stream (ijson) with the same result as
the in-memory path; the stream threshold is lowered here so small files take that path."""

import json

import pytest

from media_assets.lib.files import probe
from media_assets.lib.json_docs import load
from media_assets.lib.json_docs.schema import infer_schema

RECORDS = [{"id": i, "name": f"n{i}", "price": i * 1.25, "tags": ["a"] * (i % 3)}
           for i in range(300)]


@pytest.mark.parametrize("doc,path", [(RECORDS, None), ({"meta": {"v": 1}, "data": RECORDS},
                                                        "data")])
def test_streamed_and_in_memory_agree(tmp_path, monkeypatch, doc, path):
    f = tmp_path / "big.json"
    f.write_text(json.dumps(doc, indent=1))
    whole = probe.probe_file(f).details
    monkeypatch.setattr(probe, "STREAM_BYTES", 1024)
    monkeypatch.setattr(load, "STREAM_BYTES", 1024)
    streamed = probe.probe_file(f).details
    assert streamed["records"] == whole["records"] == 300
    assert streamed.get("records_path") == whole.get("records_path") == path
    records = list(load.iter_records(f, streamed))
    assert records == RECORDS  # floats stay floats, order kept
    design = infer_schema(load.sample_records(f, streamed, 50), "big", total=300)
    assert design.record_count == 300 and {x.name for x in design.fields} >= {"id", "price"}


def test_ndjson_is_read_line_by_line_with_bad_lines_as_rejects(tmp_path):
    f = tmp_path / "events.ndjson"
    f.write_text("\ufeff" + "\n".join(json.dumps(r) for r in RECORDS[:5]) + "\n{oops\n"
                 + json.dumps({"id": 99, "text": "line\u2028separator inside"}) + "\n")
    details = probe.probe_file(f).details
    assert details["format"] == "ndjson" and details["records"] == 6
    assert details["invalid_lines"] == [6]
    items = list(load.iter_records(f, details))
    rejects = [i for i in items if isinstance(i, load.Reject)]
    assert len(items) == 7 and [r.line for r in rejects] == [6]
    assert items[-1]["text"] == "line\u2028separator inside"  # not split at U+2028
