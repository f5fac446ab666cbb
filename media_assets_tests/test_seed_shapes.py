"""The seed's response shapes exactly (docs/contracts.md "Seed field → our field"), the
richer data beside them, request validation in words, and OpenAPI documenting each
response and error status. Against the session's API catalogue (conftest.py)."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from media_assets.api.app import create_app
from media_assets.lib.clusters.seed import folder_part, seed_folder_path, seed_hierarchy, seed_tags
from media_assets.lib.settings import Settings

SEED_FOLDER = re.compile(r"^/([a-z0-9]+(_[a-z0-9]+)*/)+$")
HEX = re.compile(r"^#[0-9a-f]{6}$")


@pytest.fixture(scope="module")
def client(api_library):
    mp = pytest.MonkeyPatch()
    for k, v in api_library[2].items():
        mp.setenv(k, v)
    with TestClient(create_app(Settings.from_env()), base_url="http://127.0.0.1") as c:
        yield c, api_library[1]
    mp.undo()


def b64(path: Path) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode()


def test_analyze_image_colours_are_the_seeds_hex_list_with_shares_beside(client):
    c, root = client
    r = c.post("/analyze-image", json={"image": b64(root / "inbox" / "more" / "red.jpg"),
                                       "tasks": ["colors"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["dominant_colors"] and all(isinstance(h, str) and HEX.match(h)
                                           for h in body["dominant_colors"]), body
    detail = body["dominant_colors_detail"]
    assert [d["hex"] for d in detail] == body["dominant_colors"]
    assert abs(sum(d["proportion"] for d in detail) - 1) < 0.02
    # A red picture: its largest colour is red.
    top = body["dominant_colors"][0]
    assert int(top[1:3], 16) > 150 > int(top[3:5], 16), body


def test_json_schema_indexes_are_field_names_with_the_design_beside(client):
    c, _ = client
    samples = [{"order_id": i, "customer_name": f"c{i % 3}", "status": ["new", "paid"][i % 2],
                "order_date": f"2024-01-{i % 28 + 1:02d}"} for i in range(20)]
    r = c.post("/analyze-json-schema", json={"json_samples": samples,
                                             "user_comment": "orders"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["indexes"] and all(isinstance(x, str) for x in body["indexes"]), body
    assert "order_date" in body["indexes"] and "order_id" in body["indexes"], body
    assert len(body["indexes"]) == len(set(body["indexes"]))
    design = body["index_design"]
    assert {c for ix in design for c in ix["columns"]} == set(body["indexes"])
    assert all(set(ix) >= {"columns", "type", "unique", "reason"} for ix in design)
    assert isinstance(body["fields"], dict) and "customer_name" in body["fields"]


@pytest.mark.parametrize("name,description,captions", [
    ("Black Cats", "Photos of black cats indoors", ["A black cat on a table"]),
    ("../../etc/passwd", "", []),
    ("x", "", []),
    ("Ünïcode Café / Straße", "cafés", ["a café"]),
])
def test_enrich_cluster_answers_in_the_seeds_form(client, name, description, captions):
    c, _ = client
    r = c.post("/enrich-cluster", json={"cluster_name": name, "description": description,
                                        "sample_captions": captions})
    assert r.status_code == 200, r.text
    e = r.json()
    assert SEED_FOLDER.match(e["folder_path"]), e["folder_path"]
    assert 10 <= len(e["extended_tags"]) <= 20, e["extended_tags"]
    assert len(set(e["extended_tags"])) == len(e["extended_tags"])
    assert all(re.fullmatch(r"[A-Za-z0-9 ]+", h) for h in e["hierarchy"]), e["hierarchy"]
    assert "." not in e["folder_path"] and ".." not in "".join(e["hierarchy"])
    assert isinstance(e["relationships"]["similar_to"], list)
    assert e["search_description"] and e["folder_display"]
    if name == "Black Cats":
        assert e["folder_path"].endswith("/black_cats/"), e
        assert e["hierarchy"][-1] == "Black Cats", e
    if name.startswith(".."):
        assert e["hierarchy"][-1] == "etc passwd" and "etc_passwd" in e["folder_path"], e


def test_seed_form_helpers():
    assert folder_part("Black Cats") == "black_cats"
    assert folder_part("../../etc/passwd") == "etc_passwd"
    assert seed_folder_path(["Personal", "Pets", "Cats", "Black Cats"]) == \
        "/personal/pets/cats/black_cats/"
    assert seed_folder_path(["..", "/"]) == "/unsorted/"
    assert seed_hierarchy(["Places", "../x"]) == ["Places", "x"]
    tags = seed_tags(["cat", "cat", "pet"], ["Personal", "Pets"])
    assert 10 <= len(tags) <= 20 and tags[:2] == ["cat", "pet"]
    assert len(seed_tags([f"t{i}" for i in range(40)], [])) == 20


@pytest.mark.parametrize("url,words", [
    ("/search?q=cat&kind=bogus", "kind"),
    ("/search?q=cat&lang=english", "lang"),
    ("/search?q=cat&after=2024-05-01&before=2024-01-01", "earlier"),
    ("/search?q=cat&after=yesterday", "after"),
    ("/search?q=cat&min_duration=10&max_duration=5", "min_duration"),
    ("/search?q=cat&min_duration=-1", "min_duration"),
    ("/search?q=", "empty query"),
    ("/search?q=%20%20%20", "empty query"),
    ("/library?kind=bogus", "kind"),
    ("/library?after=2024-05-01&before=2024-01-01", "earlier"),
    ("/library?cursor=not-a-cursor", "cursor"),
])
def test_a_value_the_api_cannot_use_is_a_422_in_words(client, url, words):
    c, _ = client
    r = c.get(url)
    assert r.status_code == 422, (url, r.status_code, r.text)
    detail = r.json()["detail"]
    assert isinstance(detail, str) and words in detail, (url, detail)
    assert "{" not in detail, detail  # words, not a JSON dump


def test_a_frame_past_the_end_of_a_video_is_a_422(client):
    c, _ = client
    key = next(i["key"] for i in c.get("/library", params={"kind": "video"}).json()["items"])
    r = c.get(f"/files/{key}/frame", params={"t": 999})
    assert r.status_code == 422 and "past the end" in r.json()["detail"], r.text


def test_openapi_names_every_response_model_and_error_status(client):
    c, _ = client
    spec = c.get("/openapi.json").json()
    seed = {"/analyze-image": "AnalyzeImageResponse", "/label-cluster": "LabelClusterResponse",
            "/transcribe": "TranscribeResponse", "/generate": "GenerateResponse",
            "/analyze-json-schema": "JsonSchemaResponse",
            "/enrich-cluster": "EnrichClusterResponse"}
    for path, model in seed.items():
        responses = spec["paths"][path]["post"]["responses"]
        assert {"200", "400", "401", "413", "415", "422", "503"} <= set(responses), path
        ok = responses["200"]["content"]["application/json"]["schema"]
        assert ok.get("$ref", "").endswith("/" + model), (path, ok)
        for status in ("400", "422", "503"):
            bad = responses[status]["content"]["application/json"]["schema"]
            assert bad["$ref"].endswith("/Problem"), (path, status)
    schemas = spec["components"]["schemas"]
    assert schemas["AnalyzeImageResponse"]["properties"]["dominant_colors"]["anyOf"][0][
        "items"]["type"] == "string"
    assert schemas["JsonSchemaResponse"]["properties"]["indexes"]["items"]["type"] == "string"
    for path in ("/files/{key}", "/files/{key}/frame", "/files/{key}/content"):
        assert {"404", "410", "422"} <= set(spec["paths"][path]["get"]["responses"]), path
    for path in ("/search", "/library", "/library/facets"):
        responses = spec["paths"][path]["get"]["responses"]
        assert "$ref" in responses["200"]["content"]["application/json"]["schema"], path
        assert "422" in responses, path
