"""The dependency rule of docs/ARCHITECTURE.md, enforced by reading every module's imports.

Each top-level part of the package has a rank; a module imports only its own part and parts of lower rank,
and the four library parts (constraints, data, losses, nets) never import one another. So the
library never depends on the trainer, training never depends on the analyses, and nothing below the CLI
depends on the CLI.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "lipgan"
RANKS = {
    "errors": 0,
    "registry": 1,
    "constraints": 2,
    "data": 2,
    "losses": 2,
    "nets": 2,
    "metrics": 3,  # measures data, so it may read the data's own split and uint8 conversion
    "training": 4,
    "analysis": 5,
    "experiments": 6,
    "cli": 7,
    "__main__": 8,
}
LIBRARY_RANK = 2


def part_of(module: str) -> str:
    """`lipgan.training.trainer` -> `training`; the package itself (its `__version__`) is `lipgan`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "lipgan"


def imported_parts(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {part_of(name) for name in names if name == "lipgan" or name.startswith("lipgan.")}


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


def violations(own: str, imported: set[str]) -> list[str]:
    bad = []
    for other in sorted(imported - {own, "lipgan"}):
        if RANKS[other] > RANKS[own]:
            bad.append(f"{own} imports {other}, which ranks above it")
        elif RANKS[other] == RANKS[own] == LIBRARY_RANK:
            bad.append(f"library part {own} imports library part {other}")
    return bad


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(PACKAGE)) for p in MODULES])
def test_imports_follow_the_dependency_rule(path):
    own = part_of(".".join(("lipgan", *path.relative_to(PACKAGE).with_suffix("").parts)))
    assert own in RANKS, f"{own} has no rank: add it to docs/ARCHITECTURE.md and RANKS"
    assert violations(own, imported_parts(path)) == []


def test_every_part_of_the_package_has_a_rank():
    parts = {p.name.removesuffix(".py") for p in PACKAGE.iterdir() if p.suffix == ".py" or p.is_dir()}
    parts -= {"__init__", "__pycache__", "configs", "assets"}
    assert parts == set(RANKS)


def test_the_rule_catches_what_it_forbids():
    assert violations("training", {"analysis"}) == ["training imports analysis, which ranks above it"]
    assert violations("nets", {"constraints"}) == ["library part nets imports library part constraints"]
    assert violations("analysis", {"training", "constraints", "lipgan"}) == []
