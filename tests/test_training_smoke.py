"""Every constraint × loss combination trains a few steps on a tiny config with finite losses."""

from __future__ import annotations

import json
import math

import pytest

from conftest import digits_overrides, toy_overrides
from lipgan.constraints.gradnorm import GRADNORM_METHODS
from lipgan.losses import LOSSES
from lipgan.training.trainer import train

# Each method is a set of config overrides; GraN uses K = 0.83 (tau = 1/0.83), as GraN App. A.
METHODS = {f"gradnorm-{name}": {"constraint.gradnorm": name} for name in GRADNORM_METHODS}
METHODS["gran-k0.83"] = {"constraint.gradnorm": "gran", "constraint.tau": 1 / 0.83}
METHODS.update(
    {
        "none": {"constraint.gradnorm": "null"},
        "sn": {"constraint.gradnorm": "null", "constraint.spectral": "sn"},
        "ssn": {"constraint.gradnorm": "null", "constraint.spectral": "sn", "constraint.spectral_scale": 2.0},
        "sn-strict": {"constraint.gradnorm": "null", "constraint.spectral": "sn-strict"},
        "bssn": {
            "constraint.gradnorm": "null",
            "constraint.spectral": "bsn",
            "constraint.spectral_scale": 1.2,
        },
        "sn-dagger": {
            "constraint.gradnorm": "null",
            "constraint.spectral": "sn",
            "constraint.output_scale": 0.83,
        },
        "sn-same-gamma": {
            "constraint.gradnorm": "null",
            "constraint.spectral": "sn",
            "constraint.spectral_gamma": "same",
            "penalty.weight": 10,
        },
        "wgan-gp": {"constraint.gradnorm": "null", "penalty.weight": 10},
        "gp-dagger": {"constraint.gradnorm": "null", "penalty.weight": 10, "penalty.center": 0.83},
        "r1": {"constraint.gradnorm": "null", "penalty.weight": 5, "penalty.center": 0, "penalty.at": "real"},
        "gn-full-g-step": {"constraint.gradnorm": "gn", "constraint.generator_fast_path": "false"},
    }
)


def _assert_finite_log(run_dir, steps):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == list(range(1, steps + 1))
    for row in rows:
        for key in (
            "d_loss",
            "g_loss",
            "d_out_min",
            "d_out_max",
            "grad_norm_real_mean",
            "grad_norm_fake_max",
        ):
            assert math.isfinite(row[key]), (key, row)


@pytest.mark.parametrize("loss", LOSSES.names())
@pytest.mark.parametrize("method", sorted(METHODS))
def test_method_and_loss_train_on_points(tmp_path, method, loss):
    steps = 2
    run_dir, result = train(None, toy_overrides(tmp_path, steps, **{"loss.name": loss}, **METHODS[method]))
    assert result["step"] == steps
    _assert_finite_log(run_dir, steps)


@pytest.mark.parametrize("method", ["gradnorm-gn", "gradnorm-pgn", "sn-strict", "bssn", "wgan-gp"])
def test_method_trains_on_images_with_consistency(tmp_path, method):
    steps = 2
    overrides = digits_overrides(tmp_path, steps, **{"cr.weight": 5}, **METHODS[method])
    run_dir, result = train(None, overrides)
    assert result["step"] == steps
    _assert_finite_log(run_dir, steps)


def test_domain_scaling_at_1e25_trains(tmp_path):
    """LipReg's α = 1e-25 (Eq. 11) keeps losses finite in float32 for a whole training step."""
    overrides = toy_overrides(tmp_path, 2, **{"loss.name": "ns", "loss.domain_scale": 1e-25})
    run_dir, _ = train(None, overrides)
    _assert_finite_log(run_dir, 2)


def test_periodic_cheap_probes_are_logged_and_leave_training_unchanged(tmp_path):
    import torch

    base = {"constraint.spectral": "sn", "train.ckpt_every": 3}
    plain_dir, _ = train(None, toy_overrides(tmp_path / "plain", 3, **base))
    probed_dir, _ = train(None, toy_overrides(tmp_path / "probed", 3, **base, **{"train.probe_every": 1}))
    rows = [json.loads(line) for line in (probed_dir / "metrics.jsonl").read_text().splitlines()]
    probe_rows = [row for row in rows if "probe/grad_norm_real_mean" in row]
    assert [row["step"] for row in probe_rows] == [1, 2, 3]
    assert all(any(k.startswith("probe/layer_grad/") for k in row) for row in probe_rows)
    plain = torch.load(plain_dir / "checkpoints" / "last.pt", weights_only=True)["D"]
    probed = torch.load(probed_dir / "checkpoints" / "last.pt", weights_only=True)["D"]
    for key in plain:
        assert torch.equal(plain[key], probed[key]), key
