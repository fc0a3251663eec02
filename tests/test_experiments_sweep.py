"""`lipgan sweep` end to end on tiny grids: runs, skip and resume, crashing cells, Ray, Ctrl-C, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from lipgan.cli import main
from lipgan.experiments.grid import load_grid
from lipgan.experiments.sweep import SweepOptions, SweepState, open_sweep_dir, plan, run_sweep
from lipgan.training.load import load_run
from lipgan.training.run_dir import read_jsonl
from lipgan.training.trainer import train

TOY_BASE = {
    "name": "toy",
    "data": {"name": "ring8", "options": {"n": 512}, "batch_size": 16},
    "model": {"arch": "mlp2d", "options": {"width": 0.03125}},
    "optim": {"n_dis": 2, "ema": 0.0},
    "train": {"steps": 6, "log_every": 1, "sample_every": 0, "ckpt_every": 2, "plots": False},
    "eval": {"n_samples": 256},
}


def write_grid(tmp_path, base=None, **grid):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base or TOY_BASE))
    values = {
        "name": "tiny",
        "base": "base.yaml",
        "axes": {"loss.name": ["ns", "hinge"]},
        "seeds": [0, 1],
        "metric": {"name": "mode_kl", "goal": "min"},
        "diverged": "hq_fraction < 0",
        "table": {"rows": [], "columns": "loss.name"},
    }
    values.update(grid)
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in values.items() if v is not None}, sort_keys=False))
    return path


def _sweep(grid_path, tmp_path, **options):
    options.setdefault("sweeps_dir", str(tmp_path / "sweeps"))
    return run_sweep(grid_path, [], SweepOptions(**options))


def _weights(run_dir):
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    return {**{f"G.{k}": v for k, v in state["G"].items()}, **{f"D.{k}": v for k, v in state["D"].items()}}


def _assert_same_weights(a_dir, b_dir):
    a, b = _weights(a_dir), _weights(b_dir)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_local_sweep_runs_every_cell_as_an_ordinary_run_then_skips_them(tmp_path):
    grid_path = write_grid(tmp_path)
    sweep_dir, counts = _sweep(grid_path, tmp_path, workers=2)
    assert sweep_dir == tmp_path / "sweeps" / "00000-tiny"
    assert (counts["ok"], counts["failed"], counts["done"], counts["threads"]) == (4, 0, 0, 1)
    rows = read_jsonl(sweep_dir / "cells.jsonl")
    assert [(r["run_index"], r["axes"], r["seed"], r["status"]) for r in rows] == [
        (0, {"loss.name": "ns"}, 0, "ok"),
        (1, {"loss.name": "ns"}, 1, "ok"),
        (2, {"loss.name": "hinge"}, 0, "ok"),
        (3, {"loss.name": "hinge"}, 1, "ok"),
    ]
    # each run is an ordinary run directory whose final evaluation is the row's metrics
    grid = load_grid(grid_path)
    for row, run in zip(rows, grid.runs()):
        run_dir = sweep_dir / row["run_dir"]
        final = read_jsonl(run_dir / "eval.jsonl")[-1]
        assert final["step"] == 6 and {k: final[k] for k in row["metrics"]} == row["metrics"]
        assert load_run(run_dir).cfg == grid.run_config(run, sweep_dir)
        assert row["wall_s"] > 0
    # the same config trained directly gives the same metrics: the sweep adds nothing to a run
    direct_dir, direct = train(cfg=grid.run_config(grid.runs()[2], tmp_path / "direct"))
    assert {k: direct["eval"][k] for k in rows[2]["metrics"]} == rows[2]["metrics"]
    _assert_same_weights(direct_dir, sweep_dir / rows[2]["run_dir"])
    assert (sweep_dir / "table.md").is_file() and (sweep_dir / "plots" / "mode_kl_vs_loss.name.png").is_file()
    # running it again trains nothing
    before = {p: p.stat().st_mtime_ns for p in sweep_dir.rglob("last.pt")}
    again_dir, again = _sweep(grid_path, tmp_path, workers=2)
    assert again_dir == sweep_dir and (again["done"], again["ok"]) == (4, 0)
    assert {p: p.stat().st_mtime_ns for p in sweep_dir.rglob("last.pt")} == before
    assert read_jsonl(sweep_dir / "cells.jsonl") == rows


def test_a_run_stopped_mid_way_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path):
    grid_path = write_grid(tmp_path, axes={"loss.name": ["ns"]}, seeds=[3])
    full_dir, full = _sweep(grid_path, tmp_path, sweep_dir=str(tmp_path / "full"))
    assert full["ok"] == 1
    grid = load_grid(grid_path)
    (run,) = grid.runs()
    part_dir = open_sweep_dir(grid, tmp_path / "sweeps", tmp_path / "part", create=True)
    # what a kill leaves behind: the run directory with a checkpoint at step 2 of 6, no row in cells.jsonl
    train(cfg=grid.run_config(run, part_dir), run_dir=part_dir / "runs" / run.dir_name, stop_after=2)
    assert [
        r.index for r in plan(grid, part_dir, SweepState.load(part_dir), retry_failed=False)["resume"]
    ] == [0]
    _, resumed = _sweep(grid_path, tmp_path, sweep_dir=str(part_dir))
    assert resumed["ok"] == 1
    _assert_same_weights(full_dir / "runs" / run.dir_name, part_dir / "runs" / run.dir_name)
    full_row, part_row = read_jsonl(full_dir / "cells.jsonl")[0], read_jsonl(part_dir / "cells.jsonl")[0]
    assert full_row["metrics"] == part_row["metrics"]


def _folder_with_a_broken_image(root):
    """Five readable 16² images and one that is not an image: a run on it fails when it draws that one."""
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(root / f"{i}.png")
    (root / "5_broken.png").write_bytes(b"not a png")
    return root


def test_a_crashing_cell_is_recorded_and_the_sweep_finishes(tmp_path):
    folder = _folder_with_a_broken_image(tmp_path / "images")
    data = {
        "labels": ["ring", "broken"],
        "values": {
            "data.name": ["ring8", "folder"],
            "data.root": ["data", str(folder)],
            "data.options": [{"n": 512}, {"channels": 1}],
            "data.resolution": [None, 16],
            "data.batch_size": [16, 4],
            "model.arch": ["mlp2d", "digits-cnn"],
            "model.options": [{"width": 0.03125}, {"width": 0.25}],
        },
    }
    grid_path = write_grid(tmp_path, axes=None, zip={"data": data}, table={"rows": [], "columns": "data"})
    sweep_dir, counts = _sweep(grid_path, tmp_path, workers=2)
    assert (counts["ok"], counts["failed"]) == (2, 2)
    rows = read_jsonl(sweep_dir / "cells.jsonl")
    assert [r["status"] for r in rows] == ["ok", "ok", "failed", "failed"]
    for row in rows[2:]:
        assert row["error"].startswith("cannot read image") and "5_broken.png" in row["error"]
        assert "\n" not in row["error"]
    assert "[2 failed]" in (sweep_dir / "table.md").read_text()
    # failed runs stay failed unless asked
    _, kept = _sweep(grid_path, tmp_path, workers=2)
    assert (kept["done"], kept["failed_kept"], kept["failed"]) == (2, 2, 0)
    _, retried = _sweep(grid_path, tmp_path, workers=2, retry_failed=True)
    assert (retried["done"], retried["failed_kept"], retried["failed"]) == (2, 0, 2)


def test_the_ray_backend_gives_the_metrics_of_the_local_one(tmp_path):
    import ray

    grid_path = write_grid(tmp_path)
    local_dir, _ = _sweep(grid_path, tmp_path, workers=2, sweep_dir=str(tmp_path / "local"))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        ray_dir, counts = _sweep(
            grid_path, tmp_path, workers=2, backend="ray", sweep_dir=str(tmp_path / "ray")
        )
    finally:
        ray.shutdown()
    assert counts["ok"] == 4
    local_rows, ray_rows = read_jsonl(local_dir / "cells.jsonl"), read_jsonl(ray_dir / "cells.jsonl")
    assert [r["metrics"] for r in ray_rows] == [r["metrics"] for r in local_rows]
    assert [r["status"] for r in ray_rows] == ["ok"] * 4
    for local_row, ray_row in zip(local_rows, ray_rows):
        _assert_same_weights(local_dir / local_row["run_dir"], ray_dir / ray_row["run_dir"])


def test_ctrl_c_stops_the_sweep_with_checkpoints_and_the_rerun_finishes_it(tmp_path):
    base = {**TOY_BASE, "train": {**TOY_BASE["train"], "steps": 20000, "ckpt_every": 20, "log_every": 1000}}
    grid_path = write_grid(tmp_path, base=base)
    command = [sys.executable, "-m", "lipgan", "sweep", str(grid_path), "--workers", "2"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, start_new_session=True, stderr=subprocess.PIPE)
    runs = tmp_path / "sweeps" / "00000-tiny" / "runs"
    deadline = time.monotonic() + 120
    while len(list(runs.glob("*/checkpoints/last.pt"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err.decode()
    assert "Traceback" not in err.decode()
    assert not (tmp_path / "sweeps" / "00000-tiny" / "cells.jsonl").exists()
    started = sorted(p.parent.parent.name for p in runs.glob("*/checkpoints/last.pt"))
    assert started == ["00000-ns_s0", "00001-ns_s1"]  # the queued runs never started
    for name in started:
        step = torch.load(runs / name / "checkpoints" / "last.pt", weights_only=True)["step"]
        assert 0 < step < 20000
    grid = load_grid(grid_path)
    sweep_dir = tmp_path / "sweeps" / "00000-tiny"
    fate = plan(grid, sweep_dir, SweepState.load(sweep_dir), retry_failed=False)
    assert ([r.index for r in fate["resume"]], [r.index for r in fate["start"]]) == ([0, 1], [2, 3])


def _bad_sweeps(tmp_path):
    good = write_grid(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    cases = {
        "unknown key": {"color": "red"},
        "wrong type": {"axes": {"loss.name": ["ns"], "optim.n_dis": ["five"]}},
        "empty axis": {"axes": {"loss.name": []}},
        "zip unequal": {
            "axes": None,
            "zip": {"s": {"labels": ["B", "C"], "values": {"optim.lr_d": [1.0e-3]}}},
            "table": {"rows": [], "columns": "s"},
        },
        "missing base": {"base": "missing.yaml"},
    }
    invocations = {}
    for label, change in cases.items():
        folder = tmp_path / label.replace(" ", "_")
        folder.mkdir()
        invocations[label] = ["sweep", str(write_grid(folder, **change))]
    # a directory written by another grid: `other` holds the sweep of a grid with other seeds
    write_grid(other, seeds=[5])
    assert main(["sweep", str(other / "grid.yaml"), "--dry-run", "--dir", str(other / "s")]) == 0
    open_sweep_dir(load_grid(other / "grid.yaml"), other, other / "s", create=True)
    invocations["directory of another grid"] = ["sweep", str(good), "--dir", str(other / "s")]
    invocations["workers 0"] = ["sweep", str(good), "--workers", "0"]
    invocations["threads 0"] = ["sweep", str(good), "--threads", "0"]
    invocations["unknown backend"] = ["sweep", str(good), "--backend", "slurm"]
    invocations["bad override"] = ["sweep", str(good), "optim.n_dis=0"]
    invocations["unknown override"] = ["sweep", str(good), "optim.lr=1"]
    invocations["missing grid"] = ["sweep", str(tmp_path / "nope.yaml")]
    invocations["no grid"] = ["sweep"]
    invocations["table of a non-sweep"] = ["sweep", "--table", str(tmp_path)]
    invocations["table with a grid"] = ["sweep", str(good), "--table", str(tmp_path)]
    invocations["unknown flag"] = ["sweep", str(good), "--fast"]
    return invocations


def test_bad_sweeps_stop_with_one_line_before_any_training(tmp_path, capsys):
    failures = []
    for label, argv in _bad_sweeps(tmp_path).items():
        capsys.readouterr()
        try:
            code = main(argv)
        except SystemExit as exit_info:
            code = exit_info.code
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        if code != 2 or len(lines) != 1 or "Traceback" in err or "error" not in lines[0]:
            failures.append((label, code, err))
    assert not failures, failures
    assert not list(tmp_path.rglob("checkpoints"))  # nothing trained, no run directory anywhere
    assert not (tmp_path / "sweeps").exists()


def test_ray_missing_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", str(write_grid(tmp_path)), "--backend", "ray"]) == 2
    assert capsys.readouterr().err == (
        "lipgan sweep: error: --backend ray needs Ray, an optional extra: pip install 'lipgan[ray]'\n"
    )
    assert not (tmp_path / "sweeps").exists()


def test_dry_run_lists_cells_and_trains_nothing(tmp_path, capsys):
    assert main(["sweep", str(write_grid(tmp_path)), "--dry-run", "--sweeps-dir", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "2 cells × 2 seeds [0, 1] = 4 runs" in out
    assert (
        "cell   0: loss.name=ns  [start start]" in out and "cell   1: loss.name=hinge  [start start]" in out
    )
    assert out.strip().endswith("0 done, 0 failed, 0 resume, 4 start; nothing trained (--dry-run)")
    assert not (tmp_path / "s").exists()


def test_sweep_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert all(flag in out for flag in ("--workers", "--backend", "--address", "--dry-run", "--retry-failed"))


def test_cells_rows_are_json_lines(tmp_path):
    sweep_dir, _ = _sweep(write_grid(tmp_path, axes={"loss.name": ["ns"]}, seeds=[0]), tmp_path)
    (line,) = (sweep_dir / "cells.jsonl").read_text().splitlines()
    row = json.loads(line)
    assert set(row) == {"run_index", "cell_index", "axes", "seed", "status", "metrics", "wall_s", "run_dir"}
