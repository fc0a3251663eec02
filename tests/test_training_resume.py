"""Exact resume: N steps, a stop, then N more equals 2N uninterrupted steps, bit for bit on CPU."""

from __future__ import annotations

import pytest
import torch

from conftest import digits_overrides, toy_overrides
from lipgan.training.trainer import train


def _load(run_dir):
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)


def _assert_identical(a, b, path="state"):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), f"{path} differs"
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), f"{path} keys differ"
        for key in a:
            _assert_identical(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_identical(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


CASES = {
    # GN + SN power iteration + GP interpolates (aux RNG) + EMA + linear LR decay, on points
    "toy": lambda tmp, steps: toy_overrides(
        tmp,
        steps,
        **{
            "constraint.spectral": "sn",
            "penalty.weight": 1.0,
            "optim.ema": 0.9,
            "optim.lr_decay": "linear",
        },
    ),
    # GraN + CR augmentation (aux RNG) + BN generator, on images
    "digits": lambda tmp, steps: digits_overrides(
        tmp, steps, **{"constraint.gradnorm": "gran", "cr.weight": 1.0, "train.ckpt_every": 2}
    ),
    # a class-conditional run: real labels, seeded fake labels (their own RNG), GN on D_y, GP with labels
    "toy_conditional": lambda tmp, steps: toy_overrides(
        tmp,
        steps,
        **{"model.arch": "mlp2d-cond", "constraint.gradnorm": "gn", "penalty.weight": 1.0, "optim.ema": 0.9},
    ),
    # GN + DiffAugment in both steps (aux RNG), on images
    "digits_diffaug": lambda tmp, steps: digits_overrides(
        tmp, steps, **{"constraint.gradnorm": "gn", "data.augment": "diffaug", "optim.n_dis": 2}
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_stop_and_resume_equals_uninterrupted(tmp_path, case):
    steps = 6
    full_dir, full = train(None, CASES[case](tmp_path / "full", steps))
    assert full["step"] == steps
    part_dir, part = train(None, CASES[case](tmp_path / "part", steps), stop_after=steps // 2)
    assert part["step"] == steps // 2
    assert _load(part_dir)["step"] == steps // 2
    resumed_dir, resumed = train(None, None, resume=part_dir)
    assert resumed_dir == part_dir and resumed["step"] == steps
    _assert_identical(_load(full_dir), _load(part_dir))


def test_different_seed_gives_different_parameters(tmp_path):
    """The check above can fail: a changed seed changes the final state."""
    a_dir, _ = train(None, toy_overrides(tmp_path / "a", 2))
    b_dir, _ = train(None, toy_overrides(tmp_path / "b", 2, seed=1))
    a, b = _load(a_dir)["D"], _load(b_dir)["D"]
    assert any(not torch.equal(a[k], b[k]) for k in a)
