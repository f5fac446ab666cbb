"""The structure docs/architecture.md describes: imports only go down, lib/ never imports
Dagster, and every per-file asset uses the one helper."""

import ast
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "media_assets" / "lib"
# Lower ranks sit below: a module may import its own domain or a lower rank only.
RANK = {"samples": 0, "imaging": 0, "models": 1, "settings": 2, "db": 3, "files": 4, "images": 5,
        "speech": 5, "video": 6, "json_docs": 6, "search": 7,
        "clusters": 7}


def _domain(module: str) -> str | None:
    parts = module.split(".")
    if parts[:2] != ["media_assets", "lib"] or len(parts) < 3:
        return None
    return parts[2]


def _imports(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names]
    return out


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


def test_every_per_file_asset_uses_the_helper():
    assets = Path(__file__).resolve().parents[1] / "media_assets" / "defs" / "assets"
    for path in assets.glob("*.py"):
        text = path.read_text()
        for fn in ast.walk(ast.parse(text)):
            if isinstance(fn, ast.FunctionDef) and any(
                    "per_file_asset" in ast.unparse(d) for d in fn.decorator_list):
                body = ast.unparse(fn)
                assert "FileBatch(" in body or fn.name == "media_file", fn.name
                assert "paths_of" not in body, f"{fn.name}: use FileBatch for paths"
