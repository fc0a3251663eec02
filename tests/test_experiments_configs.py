"""The shipped grid files: each loads (every cell's config validates) and is headed by its paper."""

from __future__ import annotations

import re

import pytest
import yaml

from lipgan.experiments.grid import load_grid
from lipgan.training.config import SHIPPED_CONFIGS

SWEEPS = SHIPPED_CONFIGS / "sweeps"
GRIDS = sorted(p for p in SWEEPS.rglob("*.yaml") if "seeds" in (yaml.safe_load(p.read_text()) or {}))
PAPER = re.compile(r"# .*(GraN|GN|PGN|BSSN|LipReg)")


@pytest.mark.parametrize("path", GRIDS, ids=[str(p.relative_to(SWEEPS)) for p in GRIDS])
def test_grid_loads_and_names_its_paper(path):
    grid = load_grid(path)
    assert PAPER.match(path.read_text().splitlines()[0]), path
    assert len(grid.runs()) == len(grid.cells()) * len(grid.seeds) >= 2


def test_every_paper_table_has_a_full_scale_grid():
    names = {p.stem for p in GRIDS if p.parent == SWEEPS}
    for stem in (
        "lipreg_table2",
        "lipreg_table5a",
        "gran_table6",
        "gran_table7",
        "gran_table8",
        "bssn_scale",
    ):
        assert any(name.startswith(stem) for name in names), stem
    assert any(name.startswith("gn_pgn") for name in names)


@pytest.mark.parametrize(
    ("name", "cells", "seeds", "steps"),
    [("lipreg_table2", 20, 2, 2000), ("lipreg_table5a", 20, 2, 2000), ("gran_table8", 15, 3, 800)],
)
def test_embedded_reproductions_are_the_documented_size(name, cells, seeds, steps):
    grid = load_grid(SWEEPS / "embedded" / f"{name}.yaml")
    assert (len(grid.cells()), len(grid.seeds)) == (cells, seeds)
    assert grid.base["data"]["name"] == "digits" and grid.base["train"]["steps"] == steps
    assert grid.metric == "digits_fid" and str(grid.diverged) == "digits_fid >= 40"
