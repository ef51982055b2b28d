"""The dependency rules of ARCHITECTURE.md, enforced: which package of ``consentry`` may import which.

Imports are read from the source (every ``import``/``from`` at any depth, lazy ones included), so a
stage reaching into another stage's internals, or a shared layer reaching up into a stage, fails here.
"""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "consentry"

SHARED = {"core", "clients", "catalog", "faceindex", "faces", "imaging"}
#: package -> the packages of ours it may import (besides itself and the top-level ``consentry``)
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "imaging": {"core"},
    "clients": {"core"},
    "catalog": {"core", "clients"},
    "faceindex": {"core", "clients"},
    "faces": {"core", "imaging"},
    "crawler": {"core", "clients", "catalog"},
    "ingest": {"core", "clients", "catalog", "faceindex", "faces", "imaging"},
    "indexer": {"core", "clients", "catalog", "faceindex", "faces", "imaging"},
    "infra": {"core", "clients"},
    "wiring": SHARED | {"crawler", "ingest", "indexer", "infra"},
    "demo": {"core", "infra", "wiring"},
    "cli": SHARED | {"crawler", "ingest", "indexer", "infra", "demo", "wiring"},
}


def _imports(path: Path) -> set[str]:
    """The top-level packages of ours that ``path`` imports."""
    rel = path.relative_to(PKG.parent).with_suffix("").parts  # ('consentry', 'ingest', 'worker')
    package = list(rel[:-1])  # the module's package (an __init__ is its own package's module)
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[list[str]] = []
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - (node.level - 1)]
            if node.module:
                names.append(base + node.module.split("."))
            else:
                names += [base + [a.name] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module.split("."))
        elif isinstance(node, ast.Import):
            names += [a.name.split(".") for a in node.names]
        out |= {n[1] for n in names if len(n) >= 2 and n[0] == "consentry"}
    return out


def _package(path: Path) -> str:
    return path.relative_to(PKG).with_suffix("").parts[0]


def test_every_package_has_a_rule():
    packages = {_package(p) for p in PKG.rglob("*.py") if p.name != "__init__.py" or p.parent != PKG}
    assert packages - {"__main__"} <= set(ALLOWED), sorted(packages - set(ALLOWED))


def test_imports_follow_the_dependency_rules():
    broken = []
    for path in sorted(PKG.rglob("*.py")):
        if path.parent == PKG and path.name == "__init__.py":
            continue
        src = _package(path)
        for dst in _imports(path) - {src, "__version__"}:
            if dst not in ALLOWED[src]:
                broken.append(f"{path.relative_to(PKG.parent)} imports consentry.{dst} ({src} may import "
                              f"{', '.join(sorted(ALLOWED[src])) or 'nothing of ours'})")
    assert not broken, "\n".join(broken)


def test_production_code_never_imports_the_tests():
    """The fakes (tests/fakes.py) and every other test module stay out of the product."""
    offenders = []
    for path in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            offenders += [f"{path.relative_to(PKG.parent)}: {m}" for m in mods if m.split(".")[0] == "tests"]
    assert not offenders, offenders
