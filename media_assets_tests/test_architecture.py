"""The structure docs/architecture.md describes: imports only go down, lib/ never imports
Dagster, and every per-file asset uses the one helper."""

import ast
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "media_assets" / "lib"
# Lower ranks sit below: a module may import its own domain or a lower rank only.
RANK = {"samples": 0, "imaging": 0, "stop": 0, "models": 1, "settings": 2, "db": 3, "files": 4, "images": 5,
        "speech": 5, "video": 6, "json_docs": 6, "search": 7,
        "clusters": 7}


def _domain(module: str) -> str | None:
    parts = module.split(".")
    if parts[:2] != ["media_assets", "lib"] or len(parts) < 3:
        return None
    return parts[2]


def _package(path: Path) -> list[str]:
    """The dotted package a module sits in, e.g. ['media_assets', 'lib', 'files']."""
    rel = path.resolve().relative_to(LIB.parents[1])
    return list(rel.parts[:-1])


def _imports(path: Path, source: str | None = None) -> list[str]:
    """Every module a file imports, relative imports resolved against its package."""
    out = []
    package = _package(path)
    for node in ast.walk(ast.parse(source if source is not None else path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                if node.module:
                    out.append(".".join(base + [node.module]))
                else:
                    out += [".".join(base + [a.name]) for a in node.names]
            elif node.module:
                out.append(node.module)
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names]
    return out


def test_relative_imports_are_resolved():
    """The import check sees `from ..search import x` in lib/files as a domain import."""
    source = "from ..search import legs\nfrom . import store\nfrom .results import x\n"
    got = _imports(LIB / "files" / "store.py", source)
    assert got == ["media_assets.lib.search", "media_assets.lib.files.store",
                   "media_assets.lib.files.results"]
    # ... so an upward relative import would fail test_imports_only_go_down.
    assert RANK[_domain(got[0])] > RANK["files"]


MODULES = sorted(LIB.rglob("*.py"))


def test_every_lib_folder_has_a_rank():
    folders = {p.relative_to(LIB).parts[0].removesuffix(".py") for p in MODULES} - {"__init__"}
    assert folders <= set(RANK), folders - set(RANK)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(LIB)))
def test_imports_only_go_down(path):
    own = path.relative_to(LIB).parts[0].removesuffix(".py")
    for module in _imports(path):
        assert not module.startswith(("dagster", "media_assets.defs", "media_assets.cli")), (
            f"lib/ must not import {module}")
        target = _domain(module)
        if target is None or target == own:
            continue
        assert RANK[target] < RANK[own], f"{path.name} ({own}) imports {module} ({target})"


def _calls(fn: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Call):
            f = node.func
            names.add(f.id if isinstance(f, ast.Name) else f.attr if isinstance(
                f, ast.Attribute) else "")
    return names


def test_every_per_file_asset_uses_the_helper():
    """Every asset the Definitions hold with the per-file metadata loops with FileBatch."""
    from media_assets.defs.jobs import PER_FILE_ASSETS

    assets = Path(__file__).resolve().parents[1] / "media_assets" / "defs" / "assets"
    decorated = {}
    for path in assets.glob("*.py"):
        for fn in ast.walk(ast.parse(path.read_text())):
            if isinstance(fn, ast.FunctionDef) and any(
                    "per_file_asset" in _calls(d) or (isinstance(d, ast.Name)
                                                      and d.id == "per_file_asset")
                    for d in fn.decorator_list):
                decorated[fn.name] = fn
    # Not vacuous: every per-file asset of the job is found by this scan.
    names = {a.key.path[-1] for a in PER_FILE_ASSETS}
    assert names <= set(decorated), names - set(decorated)
    for name, fn in decorated.items():
        calls = _calls(fn)
        assert "FileBatch" in calls or name == "media_file", name
        assert "paths_of" not in calls, f"{name}: use FileBatch for paths"
