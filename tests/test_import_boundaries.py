"""One-way imports: paper packages import vlzoo and third-party code only; vlzoo imports no paper."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAPERS = ["tokenpacker", "osprey", "ovml_query", "textonly_adapter", "apro_affinity"]
SOURCES = {"vlzoo": ROOT / "shared" / "src" / "vlzoo", **{p: ROOT / p / "src" / p for p in PAPERS}}


def imported_top_levels(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module", "__import__"
        ) and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            found.append((node.lineno, node.args[0].value.split(".")[0]))
    return found


def forbidden_for(owner: str) -> set[str]:
    if owner == "vlzoo":
        return set(PAPERS)
    return set(PAPERS) - {owner}


def violations(owner: str, folder: Path) -> list[str]:
    bad = forbidden_for(owner)
    out = []
    for path in sorted(folder.rglob("*.py")):
        for lineno, name in imported_top_levels(path):
            if name in bad:
                out.append(f"{path}:{lineno} imports {name}")
    return out


@pytest.mark.parametrize("owner", sorted(SOURCES))
def test_no_forbidden_imports(owner):
    assert SOURCES[owner].is_dir(), f"missing package folder {SOURCES[owner]}"
    assert violations(owner, SOURCES[owner]) == []


def test_checker_catches_violations(tmp_path):
    pkg = tmp_path / "tokenpacker"
    pkg.mkdir()
    (pkg / "a.py").write_text("import osprey.modeling\nfrom vlzoo import clip\n")
    (pkg / "b.py").write_text("from apro_affinity.ops import x\nimport importlib\nimportlib.import_module('osprey')\n")
    (pkg / "c.py").write_text("from . import sibling\nimport tokenpacker.hd\n")
    found = violations("tokenpacker", pkg)
    assert [f.split(" imports ")[1] for f in found] == ["osprey", "apro_affinity", "osprey"]
    vl = tmp_path / "vlzoo"
    vl.mkdir()
    (vl / "x.py").write_text("def f():\n    import tokenpacker\n")
    assert len(violations("vlzoo", vl)) == 1
