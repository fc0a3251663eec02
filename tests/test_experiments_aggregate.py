"""Aggregation of a hand-written cells.jsonl: mean, sample std, k/n diverged; Markdown and CSV agree."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest
import yaml

from lipgan.experiments.aggregate import fmt, summarize, table_csv, table_markdown
from lipgan.experiments.grid import load_grid
from lipgan.experiments.sweep import retable


def _grid(tmp_path):
    (tmp_path / "base.yaml").write_text("data: {name: ring8}\nmodel: {arch: mlp2d}\n")
    grid = {
        "name": "hand",
        "base": "base.yaml",
        "zip": {"method": {"labels": ["A", "B"], "values": {"loss.name": ["ns", "wgan"]}}},
        "axes": {"optim.lr_d": [1.0e-4, 1.0e-3]},
        "seeds": [0, 1, 2],
        "metric": {"name": "fid", "goal": "min"},
        "diverged": "fid >= 40",
        "table": {"rows": ["method"], "columns": "optim.lr_d"},
    }
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    return load_grid(path)


def _row(cell, seed, status, fid=None):
    metrics = {} if fid is None else {"fid": fid, "is_mean": 1.0}
    return {
        "run_index": cell * 3 + seed,
        "cell_index": cell,
        "seed": seed,
        "status": status,
        "metrics": metrics,
    }


# cells: 0 = (lr 1e-4, A), 1 = (lr 1e-4, B), 2 = (lr 1e-3, A), 3 = (lr 1e-3, B)
ROWS = [
    _row(0, 0, "ok", 10.0),
    _row(0, 1, "ok", 12.0),
    _row(0, 2, "diverged", 50.0),  # over the threshold: counted, and in the mean
    _row(1, 0, "ok", 20.0),
    _row(1, 1, "diverged"),  # NaN guard: no metric
    _row(1, 2, "failed"),
    _row(2, 0, "ok", 7.5),
    # cell 3 has no rows yet
]


def test_mean_sample_std_and_divergence_counts(tmp_path):
    grid = _grid(tmp_path)
    assert [c.labels for c in grid.cells()] == [
        {"optim.lr_d": 1e-4, "method": "A"},
        {"optim.lr_d": 1e-4, "method": "B"},
        {"optim.lr_d": 1e-3, "method": "A"},
        {"optim.lr_d": 1e-3, "method": "B"},
    ]
    s = summarize(grid, ROWS)
    assert s[0].values == (10.0, 12.0, 50.0)
    assert s[0].mean == pytest.approx(24.0, rel=1e-15, abs=0)
    # sample std (n - 1): deviations -14, -12, 26 -> (196 + 144 + 676) / 2 = 508
    assert s[0].std == pytest.approx(math.sqrt(508.0), rel=1e-15, abs=0)
    assert (s[0].finished, s[0].diverged, s[0].failed, s[0].pending) == (3, 1, 0, 0)
    assert s[1].values == (20.0,) and s[1].std is None
    assert (s[1].finished, s[1].diverged, s[1].failed, s[1].pending) == (2, 1, 1, 0)
    assert (s[2].mean, s[2].finished, s[2].pending) == (7.5, 1, 2)
    assert (s[3].mean, s[3].finished, s[3].pending) == (None, 0, 3)


def test_markdown_cells_read_as_the_papers_print_them(tmp_path):
    grid = _grid(tmp_path)
    md = table_markdown(grid, summarize(grid, ROWS))
    lines = [line for line in md.splitlines() if line.startswith("|")]
    assert lines[0] == "| method | optim.lr_d=0.0001 | optim.lr_d=0.001 |"
    assert lines[2] == f"| A | 24 ± {fmt(math.sqrt(508))} (1/3) | 7.5 (0/1) [2 pending] |"
    assert lines[3] == "| B | 20 (1/2) [1 failed] | – [3 pending] |"
    assert "Runs: 6 finished (2 diverged), 1 failed, 5 pending." in md


def test_markdown_and_csv_hold_the_same_numbers(tmp_path):
    grid = _grid(tmp_path)
    summaries = summarize(grid, ROWS)
    records = list(csv.DictReader(io.StringIO(table_csv(grid, summaries))))
    assert [r["method"] for r in records] == ["A", "B", "A", "B"]
    md_rows = {
        line.split(" | ")[0].strip("| "): [c.strip(" |") for c in line.split(" | ")[1:]]
        for line in table_markdown(grid, summaries).splitlines()
        if line.startswith("| A") or line.startswith("| B")
    }
    for record in records:
        column = ["0.0001", "0.001"].index(f"{float(record['optim.lr_d']):g}")
        text = md_rows[record["method"]][column]
        mean = fmt(float(record["mean"])) if record["mean"] else "–"
        assert text.startswith(mean)
        if record["std"]:
            assert text.startswith(f"{mean} ± {fmt(float(record['std']))} ")
        if int(record["finished"]):
            assert f"({record['diverged']}/{record['finished']})" in text
        values = [float(v) for v in record["values"].split()]
        assert len(values) == int(record["n"])
        if values:
            assert float(record["mean"]) == sum(values) / len(values)


def test_table_rebuilds_from_the_sweep_directory(tmp_path):
    """`lipgan sweep --table DIR` gives the same table from grid.yaml and cells.jsonl alone."""
    from lipgan.experiments.sweep import open_sweep_dir

    grid = _grid(tmp_path)
    sweep_dir = open_sweep_dir(grid, tmp_path / "sweeps", None, create=True)
    (sweep_dir / "cells.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    (tmp_path / "base.yaml").unlink()  # the resolved base config lives in grid.yaml
    written = retable(sweep_dir)
    assert (sweep_dir / "table.md").read_text() == table_markdown(grid, summarize(grid, ROWS))
    assert (sweep_dir / "table.csv").read_text() == table_csv(grid, summarize(grid, ROWS))
    assert sorted(p.name for p in written) == [
        "diverged.png",
        "fid_vs_optim.lr_d.png",
        "table.csv",
        "table.md",
    ]
    assert all(p.stat().st_size > 0 for p in written)


def test_table_rebuilds_with_the_cells_in_the_grid_file_order(tmp_path):
    """Axes out of alphabetical order: grid.yaml keeps their order, so cell indices mean the same cells."""
    from lipgan.experiments.sweep import grid_from_record, open_sweep_dir, read_grid_record

    (tmp_path / "base.yaml").write_text("data: {name: ring8}\nmodel: {arch: mlp2d}\n")
    grid = {
        "name": "order",
        "base": "base.yaml",
        "axes": {"optim.lr_d": [1.0e-4, 1.0e-3], "loss.name": ["ns", "wgan"]},
        "zip": {"b": {"labels": ["x", "y"], "values": {"optim.n_dis": [1, 2]}}},
        "seeds": [0],
        "metric": {"name": "fid", "goal": "min"},
        "table": {"rows": ["optim.lr_d", "b"], "columns": "loss.name"},
    }
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump(grid, sort_keys=False))
    original = load_grid(tmp_path / "grid.yaml")
    sweep_dir = open_sweep_dir(original, tmp_path / "sweeps", None, create=True)
    rebuilt = grid_from_record(read_grid_record(sweep_dir), sweep_dir)
    assert [c.labels for c in rebuilt.cells()] == [c.labels for c in original.cells()]
    assert list(rebuilt.cells()[1].labels) == ["optim.lr_d", "loss.name", "b"]
    assert rebuilt.cells()[1].labels == {"optim.lr_d": 1e-4, "loss.name": "ns", "b": "y"}
