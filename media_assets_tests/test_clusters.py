"""Clusters: the method on a synthetic corpus with known truth, ids that hold across runs,
incremental assignment, LLM output parsing, safe folder paths, and the whole path from
photos to a browsable tree with the tiny models."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sklearn.metrics import adjusted_rand_score

from media_assets.cli import main
from media_assets.lib.clusters import organize as org
from media_assets.lib.clusters.hierarchy import (LabelView, enrich, heuristic, parse_answer,
                                                 sanitize_folder_path)
from media_assets.lib.clusters.labels import agreement, shared_phrase
from media_assets.lib.clusters.method import cluster_vectors, match_ids
from media_assets.lib.clusters.store import (assign_new, load_vectors, overview,
                                             save_full_run)
from media_assets.lib.clusters.synthetic import corpus
from media_assets.lib.db.vectors import to_pgvector
from media_assets.lib.samples import photo_groups

MODEL = "test-space"


def test_synthetic_clusters_are_found_and_noise_stays_unsorted():
    x, truth = corpus(3000, clusters=12, seed=3)
    found = cluster_vectors(x, min_cluster_size=10)
    assert adjusted_rand_score(truth, found.labels) >= 0.9
    noise = truth == -1
    assert (found.labels[noise] == -1).mean() >= 0.9  # noise is not a cluster
    assert (found.labels[~noise] == -1).mean() <= 0.1  # and members are not noise
    # Every true cluster of at least twice min_cluster_size is found whole, and alone.
    big = [c for c in range(12) if (truth == c).sum() >= 20]
    for c in big:
        labels, counts = np.unique(found.labels[truth == c], return_counts=True)
        assert labels[counts.argmax()] >= 0 and counts.max() == (truth == c).sum()
        assert not set(truth[found.labels == labels[counts.argmax()]]) & (set(big) - {c})


def test_too_few_vectors_are_all_unsorted():
    x, _ = corpus(6, clusters=1, noise=0)
    assert (cluster_vectors(x, min_cluster_size=5).labels == -1).all()


def test_ids_follow_member_overlap():
    old = {7: {"a", "b", "c", "d"}, 9: {"e", "f", "g"}}
    # 7 kept most of its members, 9 split: its larger part keeps the id; a new group is new.
    new = [{"a", "b", "c", "d", "x"}, {"e", "f"}, {"g", "h", "i"}]
    assert match_ids(old, new) == {0: 7, 1: 9}


def _add_vectors(engine, x: np.ndarray, prefix: str = "") -> list[str]:
    keys = []
    with engine.begin() as conn:
        for i, v in enumerate(x):
            digest = hashlib.sha256(f"{prefix}{i}".encode()).hexdigest()
            conn.execute(sa.text(
                "INSERT INTO media_files (key, sha256, size_bytes, primary_path, kind, status) "
                "VALUES (:k, :s, 1, :p, 'image', 'ok')"),
                {"k": digest[:16], "s": digest, "p": f"/photos/{prefix}{i}.jpg"})
            # A path on disk: search leaves out content whose every path is gone.
            conn.execute(sa.text(
                "INSERT INTO media_paths (path, key, status) VALUES (:p, :k, 'registered')"),
                {"k": digest[:16], "p": f"/photos/{prefix}{i}.jpg"})
            conn.execute(sa.text(
                "INSERT INTO image_embeddings (key, model_id, embedding) "
                "VALUES (:k, :m, CAST(:e AS vector))"),
                {"k": digest[:16], "m": MODEL, "e": to_pgvector(v)})
            keys.append(digest[:16])
    return keys


def _run(engine, size: int = 8):
    v = load_vectors(engine, MODEL)
    found = cluster_vectors(v.x, min_cluster_size=size)
    return save_full_run(engine, MODEL, v, found.labels, found.method, found.seconds, {})


def _memberships(engine) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    with engine.connect() as conn:
        for cid, key in conn.execute(sa.text("SELECT cluster_id, key FROM cluster_members")):
            out.setdefault(cid, set()).add(key)
    return out


def test_ids_hold_after_a_few_new_points_and_new_points_join_between_runs(catalog):
    engine = catalog.engine
    x, truth = corpus(400, clusters=6, seed=7)  # sizes 25-105
    keys = _add_vectors(engine, x)
    first = _run(engine)
    expected = sum(int((truth == c).sum() >= 16) for c in range(6))
    assert first.clusters == expected == 6 and first.kept_ids == 0
    before = _memberships(engine)
    with engine.connect() as conn:
        reps = dict(conn.execute(sa.text("SELECT id, representatives FROM clusters")).all())
    for cid, members in before.items():
        assert 1 <= len(reps[cid]) <= 5 and set(reps[cid]) <= members

    # Between runs: a point near a cluster's members joins it; an unrelated one does not.
    member = next(i for i, t in enumerate(truth) if t == 0)
    near = x[member] + 0.05 * np.random.default_rng(0).normal(size=512).astype(np.float32) / 22
    far = corpus(1, clusters=1, noise=1.0, seed=99)[0]
    new_keys = _add_vectors(engine, np.vstack([near / np.linalg.norm(near), far]), "new")
    assert assign_new(engine, MODEL, new_keys) == 1
    joined = _memberships(engine)
    home = next(cid for cid, m in before.items() if keys[member] in m)
    assert new_keys[0] in joined[home]
    assert not any(new_keys[1] in m for m in joined.values())
    assert assign_new(engine, MODEL, new_keys) == 0  # re-running writes nothing twice

    # A full run after a few more points keeps every id and its members.
    more = _add_vectors(engine, x[truth >= 0][:4] * 0.999, "more")
    second = _run(engine)
    assert second.kept_ids == expected and second.new_ids == 0 and second.dropped_ids == 0
    after = _memberships(engine)
    assert set(after) == set(before)
    for cid in before:
        assert before[cid] <= after[cid]
    assert all(any(k in m for m in after.values()) for k in more)
    view = overview(engine, MODEL)
    clustered = sum(len(m) for m in after.values())
    assert view["unsorted"] == 400 + 2 + 4 - clustered >= 0.9 * (truth == -1).sum()


@pytest.mark.parametrize("path,expected", [
    ("Personal/Pets/Cats", "Personal/Pets/Cats"),
    ("../../etc/passwd", "etc/passwd"),
    ("/absolute/path", "absolute/path"),
    ("C:\\Windows\\System32", "C/Windows/System32"),
    ("a/./b/../c", "a/b/c"),
    ("line\nbreak/tab\there/nul\x00", "linebreak/tabhere/nul"),
    ("...hidden/..../x", "hidden/x"),
    ("", "Unsorted"),
    ("../..", "Unsorted"),
    ("/".join(["deep"] * 20), "/".join(["deep"] * 6)),
    ("x" * 500, "x" * 40),
])
def test_folder_paths_never_escape(path, expected, tmp_path):
    safe = sanitize_folder_path(path)
    assert safe == expected
    dest = tmp_path / "tree"
    assert os.path.commonpath([dest, os.path.abspath(dest / safe)]) == str(dest)


LABEL = LabelView("Black Cat", "12 items; typically: a black cat on a sofa.",
                  ["cat", "black", "sofa"], "pets", ("a black cat on a sofa",),
                  ("cat", "sofa", "indoor", "kitten", "bed", "pillow", "dog", "chair",
                   "table", "window", "lamp", "book"))
VALID = json.dumps({
    "hierarchy": ["Personal", "Pets", "Cats", "Black Cats"],
    "folder_path": "Personal/Pets/Cats/Black Cats",
    "extended_tags": ["cat", "black cat", "pet", "feline", "kitten", "sofa", "indoor", "home",
                      "animal", "fur", "whiskers"],
    "search_description": "Photos of a black cat resting on a sofa at home."})


@pytest.mark.parametrize("answer,ok,note", [
    # Phi-3.5 often wraps its JSON in prose or a code fence.
    (f"Sure! Here it is:\n```json\n{VALID}\n```", True, "ok"),
    ('{"hierarchy": ["Personal", "Pets",}', False, "not valid JSON"),
    ("I cannot help with that.", False, "no JSON object"),
    (json.dumps({**json.loads(VALID), "hierarchy": "Personal > Pets"}), False, "hierarchy"),
    (json.dumps({**json.loads(VALID), "hierarchy": ["Only one"]}), False, "hierarchy"),
    (json.dumps({**json.loads(VALID), "extended_tags": ["cat"]}), False, "usable tags"),
    (json.dumps({**json.loads(VALID), "search_description": 42}), False, "search_description"),
    # Six tags are completed from the label: a repair, noted.
    (json.dumps({**json.loads(VALID), "extended_tags": ["a", "b", "c", "d", "e", "f"]}), True,
     "tags completed"),
    (json.dumps({**json.loads(VALID), "folder_path": "../../../../etc/cron.d/x"}), True,
     "folder path made safe"),
])
def test_llm_hierarchy_answers_are_validated(answer, ok, note):
    parsed, status = parse_answer(answer, LABEL)
    assert (parsed is not None) == ok
    assert note in status
    if ok:
        hierarchy, folder, tags, description = parsed
        assert 2 <= len(hierarchy) <= 6 and 10 <= len(tags) <= 20
        assert not folder.startswith("/") and ".." not in folder.split("/")
        assert description


def test_malicious_folder_path_from_the_llm_stays_inside():
    answer = json.dumps({**json.loads(VALID), "folder_path": "/../../root/.ssh"})
    (_, folder, _, _), _ = parse_answer(answer, LABEL)
    assert folder == "root/.ssh".replace(".ssh", "ssh")


def test_heuristic_hierarchy_from_the_label_alone():
    hierarchy, tags, description = heuristic(LABEL)
    assert hierarchy == ["Personal", "Pets", "Black Cat"]
    assert 10 <= len(tags) <= 20 and "cat" in tags and "pets" in tags
    e = enrich(None, LABEL, [{"cluster_id": 2, "name": "Dogs", "similarity": 0.8}])
    assert e.source == "heuristic" and e.source_reason == "no LLM"
    assert e.folder_path == "Personal/Pets/Black Cat"
    assert e.relationships == {"parent": "Pets", "similar_to": [
        {"cluster_id": 2, "name": "Dogs", "similarity": 0.8}]}


def test_names_come_from_what_the_captions_share():
    captions = ["a black cat sitting on a sofa", "a black cat lying on a bed",
                "black cat", "a cat on a chair", "a dog in the park"]
    name, share = shared_phrase(captions)
    assert name == "black cat" and share == 0.6
    assert shared_phrase(["portr portr portr"])[0] == "portr"  # a stutter is not a name
    assert agreement(["a red car", "a red car"]) == 1.0
    assert agreement(["a red car", "green trees"]) == 0.0


@pytest.mark.slow
def test_photos_to_named_clusters_and_a_tree(settings, tiny_models, monkeypatch, tmp_path):
    """From a folder of photos with the tiny models: ingest, `clusters`, `organize` and its
    re-run, through the CLI as a user runs it."""
    monkeypatch.setenv("MEDIA_ASSETS_MODEL_DIR", str(tiny_models))
    groups = photo_groups(settings.inbox / "photos", per_group=6,
                          sources=("astronaut", "coffee", "chelsea", "rocket"))
    runner = CliRunner()
    result = runner.invoke(main, ["ingest", "-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    view = json.loads(runner.invoke(main, ["clusters", "--json"]).output)
    assert view["last_run"]["files"] == 24
    assert view["unsorted"] + sum(c["size"] for c in view["clusters"]) >= 24
    for c in view["clusters"]:
        # Named by the real tiny BLIP-2 and placed by the heuristic: the tests' model folder
        # has no LLM (the real one's hierarchies are in test_llm_real.py).
        assert c["name"] and c["folder_path"] and c["hierarchy_source"] in ("llm", "heuristic")
        assert 0 <= c["confidence"] <= 1 and 1 <= len(c["representatives"]) <= 5
    with sa.create_engine(settings.database_url).connect() as conn:
        sources = conn.execute(sa.text(
            "SELECT source, source_reason, model_id FROM cluster_hierarchies")).all()
        assert all(s.source == "heuristic" and "not found" in s.source_reason
                   for s in sources)
    text = runner.invoke(main, ["clusters"]).output
    assert "files unsorted" in text

    inside = runner.invoke(main, ["organize", str(settings.inbox / "Tree")])
    assert inside.exit_code == 2 and "inside the inbox" in inside.output, inside.output
    assert not (settings.inbox / "Tree").exists()
    dest = tmp_path / "tree"
    first = runner.invoke(main, ["organize", str(dest), "--json"])
    assert first.exit_code == 0, first.output
    made = json.loads(first.output)
    assert made["created"] == 24 and not made["errors"]
    links = [p for p in dest.rglob("*") if p.is_symlink()]
    assert len(links) == 24 and all(p.resolve().is_file() for p in links)
    assert all(Path(os.readlink(p)).name == p.name for p in links)

    # Someone else's file in the tree is never touched; a re-run changes nothing.
    mine = next(dest.rglob("*.jpg")).parent / "my notes.txt"
    mine.write_text("mine")
    again = json.loads(runner.invoke(main, ["organize", str(dest), "--json"]).output)
    assert (again["created"], again["kept"], again["removed"]) == (0, 24, 0)

    # A photo replaced by other content: its old link goes, the new content gets one.
    replaced = groups["coffee"][0]
    photo_groups(tmp_path / "other", per_group=1, sources=("camera",))
    (tmp_path / "other" / "camera_00.jpg").replace(replaced)
    assert runner.invoke(main, ["ingest", "-q", "--no-clusters"]).exit_code == 0
    third = json.loads(runner.invoke(main, ["organize", str(dest), "--json"]).output)
    assert third["removed"] == 1 and third["created"] == 1
    manifest = json.loads((dest / org.MANIFEST).read_text())["entries"]
    with sa.create_engine(settings.database_url).connect() as conn:
        current = set(conn.execute(sa.text("SELECT key FROM media_files")).scalars())
    assert {e["key"] for e in manifest.values()} <= current
    assert mine.read_text() == "mine"

    # A photo renamed, another deleted: the link follows the new name, and the deleted
    # one's goes. Before, both old links were "kept", pointing at nothing.
    renamed, deleted = groups["rocket"][0], groups["rocket"][1]
    renamed.rename(renamed.with_name("launch day.jpg"))
    deleted.unlink()
    assert runner.invoke(main, ["ingest", "-q", "--no-clusters"]).exit_code == 0
    fourth = json.loads(runner.invoke(main, ["organize", str(dest), "--json"]).output)
    assert (fourth["created"], fourth["kept"], fourth["removed"]) == (1, 22, 2), fourth
    links = [p for p in dest.rglob("*") if p.is_symlink()]
    assert len(links) == 23 and all(p.resolve().is_file() for p in links)
    assert [p.name for p in links if p.name == "launch day.jpg"] == ["launch day.jpg"]


def test_tiny_phi3_enriches_through_the_real_loader_and_is_unloaded(tiny_models, monkeypatch):
    """Asked without the schema constraint, the tiny Phi-3 writes noise: it is asked twice,
    refused twice by the validation (the second line), the heuristic stands and says so;
    the LLM leaves the manager right after the batch."""
    from media_assets.lib.models.registry import build_manager
    from media_assets.lib.models.roles import Role
    from media_assets.lib.settings import Settings

    monkeypatch.setenv("MEDIA_ASSETS_MODEL_DIR", str(tiny_models))
    monkeypatch.setenv("MEDIA_ASSETS_LLM_MODEL", str(tiny_models / "tiny-phi3"))
    manager = build_manager(Settings.from_env().models)
    with manager.use(Role.LLM) as llm:
        assert Role.LLM in manager.loaded()
        e = enrich(llm, LABEL, [], "tiny-phi3", constrained=False)
    assert Role.LLM not in manager.loaded()
    assert e.source == "heuristic" and e.source_reason.startswith("LLM answer invalid twice")
    assert e.folder_path == "Personal/Pets/Black Cat"


def test_a_cluster_hierarchy_joins_search(catalog):
    """A query for "pets" finds the members of the cat cluster through its hierarchy, the
    most central first, though no caption or name says "pets"."""
    from media_assets.lib.clusters.store import store_hierarchy
    from media_assets.lib.search import legs

    engine = catalog.engine
    x, _ = corpus(60, clusters=2, noise=0.0, seed=7)
    _add_vectors(engine, x)
    _run(engine, size=5)
    with engine.connect() as conn:
        cid = conn.execute(sa.text("SELECT id FROM clusters ORDER BY id LIMIT 1")).scalar()
    store_hierarchy(engine, cid, enrich(None, LABEL, []), "d")
    hits = legs.clusters(engine, "pets", 100)
    with engine.connect() as conn:
        members = dict(conn.execute(sa.text(
            "SELECT key, similarity FROM cluster_members WHERE cluster_id = :c"),
            {"c": cid}).all())
    assert {h.key for h in hits} == set(members) and hits[0].text.startswith("Personal › Pets")
    assert hits[0].key == max(members, key=members.get)
    assert legs.clusters(engine, "volcano", 10) == []


def test_clusters_named_alike_keep_folders_of_their_own(catalog):
    """Two clusters the labeller named the same (both "Personal/Pets/Black Cat") were one
    folder in `organize`, their photos mixed; now the larger keeps the name and the other
    is "Black Cat (2)"."""
    from media_assets.lib.clusters.store import members_of, store_hierarchy

    engine = catalog.engine
    x, _ = corpus(60, clusters=2, noise=0.0, seed=7)
    _add_vectors(engine, x)
    _run(engine, size=5)
    with engine.connect() as conn:
        sizes = conn.execute(sa.text(
            "SELECT cluster_id, count(*) FROM cluster_members GROUP BY 1 ORDER BY 2 DESC, 1"
        )).all()
    assert len(sizes) == 2, sizes
    for cid, _n in sizes:
        store_hierarchy(engine, cid, enrich(None, LABEL, []), "d")
    folders = members_of(engine, MODEL)
    with engine.connect() as conn:
        members = {cid: {k for (k,) in conn.execute(sa.text(
            "SELECT key FROM cluster_members WHERE cluster_id = :c"), {"c": cid})}
            for cid, _n in sizes}
    assert {f: {k for k, _p in files} for f, files in folders.items()
            if f is not None} == {"Personal/Pets/Black Cat": members[sizes[0][0]],
                                  "Personal/Pets/Black Cat (2)": members[sizes[1][0]]}
