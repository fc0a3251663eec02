"""Shared fixtures: tiny configs that train in well under a second per step on 2 CPU cores."""

from __future__ import annotations

import pytest
import torch

# pytest-xdist runs one worker per core; more threads per worker only contend (a 256×256 SVD went from
# 0.01 s to 0.6 s under contention).
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    yield


def toy_overrides(out_dir, steps: int = 3, **extra) -> list[str]:
    """A 2-D ring of 8 with tiny MLPs; `extra` maps dotted keys to values."""
    items = {
        "out_dir": str(out_dir),
        "data.name": "ring8",
        "data.options": "{n: 512}",
        "data.batch_size": 16,
        "model.arch": "mlp2d",
        "model.options": "{width: 0.03125}",  # 16 hidden units
        "train.steps": steps,
        "train.log_every": 1,
        "train.sample_every": 0,
        "train.ckpt_every": 0,
        "train.eval_at_end": "false",
        "train.plots": "false",
        "optim.n_dis": 2,
    }
    items.update(extra)
    return [f"{k}={v}" for k, v in items.items()]


def digits_overrides(out_dir, steps: int = 3, **extra) -> list[str]:
    """The digits at 16² with quarter-width nets."""
    items = {
        "out_dir": str(out_dir),
        "data.batch_size": 8,
        "model.options": "{width: 0.25}",
        "train.steps": steps,
        "train.log_every": 1,
        "train.sample_every": 0,
        "train.ckpt_every": 0,
        "train.eval_at_end": "false",
        "train.plots": "false",
    }
    items.update(extra)
    return [f"{k}={v}" for k, v in items.items()]
