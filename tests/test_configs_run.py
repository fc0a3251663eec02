"""Every shipped YAML config (src/lipgan/configs/) trains for two generator steps on tiny fake datasets.

The datasets are written once per module (per xdist worker) by `fake_datasets.write_all`, in the real formats;
each config runs through `lipgan.training.trainer.train` exactly as `lipgan train <file>` would, with the
file's own architecture at full size, constraint, penalty, consistency regularization, loss, optimizer and
learning-rate schedule. Only these overrides apply, none of which changes what a training step computes:

- `data.root`: the fake datasets; `data.batch_size=2`: the smallest batch the config validation accepts;
  `data.num_workers=0`: no reader processes.
- `train.steps=2`, `optim.n_dis=1`: two generator steps with one D step each, for CPU time. n_dis only
  repeats the same D update; the papers' 5 (2 at 128x128) would make a run up to three times longer (a D
  step of the full-size ResNets, with its double backward for gradient normalization or a penalty, costs
  more than the G step) without exercising anything the first D step does not.
- `train.log_every=1`: both steps log `d_loss` and `g_loss` to `metrics.jsonl`, which must be finite.
- no intermediate samples or checkpoints, no evaluation (Inception) and no plots; `train.grid_size=4`: the
  sample grid written once at the end of a run holds 4 images, not 64 (at 128x128 the default grid took more
  than half of a run's time, and it is only a picture).

Every config runs in full, none is merely loaded: the 22 LSUN and CelebA configs at 128x128 dominate (one
such run takes about 9 s on one core, most of it the two steps of a 29M-parameter D and a 32M-parameter G
and their Adam updates; each also writes its 700 MB end-of-run checkpoint, deleted right after), and this
file takes about 4 minutes with `-n 2` on a loaded 2-core machine, within its share of `make test`.
Running only one config per (network, resolution, constraint, loss, penalty, CR) group at full length would
save about a minute (the CelebA and LSUN configs of one method differ only in data and LR decay) and was
left as the fallback should the suite need it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from fake_datasets import write_all
from lipgan.training.config import SHIPPED_CONFIGS
from lipgan.training.trainer import train

CONFIGS = SHIPPED_CONFIGS
ALL_CONFIGS = sorted(
    p for p in CONFIGS.rglob("*.yaml") if "sweeps" not in p.relative_to(CONFIGS).parts
)  # sweeps/ holds grid files (tests/test_experiments_configs.py)
STEPS = 2


@pytest.fixture(scope="module")
def fake_data_root(tmp_path_factory) -> Path:
    return write_all(tmp_path_factory.mktemp("fake_data"))


@pytest.fixture
def one_thread():
    """One intra-op thread per test: `make test` runs two xdist workers on two cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def short_run_overrides(data_root: Path, out_dir: Path) -> list[str]:
    """Two logged generator steps of one D step each on the fake data, with nothing else written."""
    items = {
        "data.root": str(data_root),
        "data.batch_size": 2,
        "data.num_workers": 0,
        "train.steps": STEPS,
        "optim.n_dis": 1,
        "train.log_every": 1,
        "train.sample_every": 0,
        "train.ckpt_every": 0,
        "train.eval_every": 0,
        "train.eval_at_end": "false",
        "train.plots": "false",
        "train.grid_size": 4,
        "out_dir": str(out_dir),
    }
    return [f"{key}={value}" for key, value in items.items()]


def config_case(path: Path):
    return pytest.param(path, id=str(path.relative_to(CONFIGS)))


@pytest.mark.slow
@pytest.mark.parametrize("path", [config_case(p) for p in ALL_CONFIGS])
def test_config_trains_two_steps_with_finite_losses(path, fake_data_root, tmp_path, one_thread):
    run_dir, result = train(str(path), short_run_overrides(fake_data_root, tmp_path))
    assert result["step"] == STEPS and not result["interrupted"]
    checkpoint = run_dir / "checkpoints" / "last.pt"
    assert checkpoint.is_file()
    checkpoint.unlink()  # up to 700 MB (G, D and both Adam states of a 128x128 ResNet pair)
    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in logged] == list(range(1, STEPS + 1))
    for entry in logged:
        for key in ("d_loss", "g_loss"):
            assert math.isfinite(entry[key]), f"step {entry['step']}: {key} = {entry[key]}"
