"""Mixed precision (`train.precision`, docs/methods.md §2.9): bf16 autocast keeps the norm, the formula and
the losses in float32, agrees with fp32 within what bf16's rounding allows, resumes exactly; fp16 is
refused."""

from __future__ import annotations

import pytest
import torch

from conftest import digits_overrides
from lipgan.cli import main
from lipgan.constraints.critic import build_critic
from lipgan.constraints.gradnorm import gradient_normalize_with_raw
from lipgan.nets import build_gan
from lipgan.training.config import load_config
from lipgan.training.precision import autocast_for
from lipgan.training.session import open_session
from lipgan.training.steps import discriminator_step
from lipgan.training.trainer import train

BF16_UNIT_ROUNDOFF = 2.0**-8  # bf16 keeps 8 significant bits: each rounding is off by at most 2^-8 relative


def digits_d():
    torch.manual_seed(0)
    return build_gan("digits-cnn", resolution=16, channels=1, width=0.25).D


@pytest.mark.parametrize("method", ["gn", "gran", "pgn"])
def test_under_bf16_the_norm_and_the_formula_are_float32(method):
    D = digits_d()
    x = torch.randn(8, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    with autocast_for("bf16", torch.device("cpu"))():
        scored = gradient_normalize_with_raw(D, x, method=method, tau=1.2, eps=0.1)
    assert scored.out.dtype == scored.raw.dtype == scored.grad_norm.dtype == torch.float32


def test_a_bf16_d_step_agrees_with_fp32_within_bf16_rounding(tmp_path):
    """The D loss of one step from the same nets and batch. Autocast rounds the inputs and weights of every
    conv and linear layer to bf16 (2^-8 relative each) and accumulates in float32. Through the digits D's 4
    weighted layers the errors of f add up to about 4 · 2 · 2^-8 ≈ 3% of |f| at worst; the loss, a mean of
    softplus over 16 outputs whose slope is below 1, moves by less than that. So 5% of the loss bounds the
    difference, and a step that ran the normalization itself in bf16 (or forgot autocast) is still caught by
    the dtype test above and by the difference not being exactly zero here."""
    losses = {}
    for precision in ("fp32", "bf16"):
        cfg = load_config(None, digits_overrides(tmp_path / precision, 1, **{"train.precision": precision}))
        session = open_session(cfg, None, resume=False)
        real = next(session.stream)[0]
        fake = torch.randn(real.shape, generator=torch.Generator().manual_seed(2)).clamp(-1, 1)
        stats = discriminator_step(session.parts, real, fake, session.aux_gen)
        assert stats["d_loss"].dtype == stats["raw_real"].dtype == torch.float32
        losses[precision] = float(stats["d_loss"])
    difference = abs(losses["bf16"] - losses["fp32"])
    assert 0.0 < difference < 0.05 * abs(losses["fp32"])
    assert 4 * 2 * BF16_UNIT_ROUNDOFF < 0.05  # the bound above, as arithmetic


def test_bf16_resumes_bit_for_bit(tmp_path):
    extra = {"train.precision": "bf16", "constraint.gradnorm": "gn"}
    full_dir, _ = train(None, digits_overrides(tmp_path / "full", 4, **extra))
    part_dir, _ = train(None, digits_overrides(tmp_path / "part", 4, **extra), stop_after=2)
    train(None, None, resume=part_dir)
    a = torch.load(full_dir / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(part_dir / "checkpoints" / "last.pt", weights_only=True)
    for net in ("G", "D"):
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net])


def test_fp16_is_one_line_before_any_compute(tmp_path, capsys):
    assert main(["train", f"out_dir={tmp_path}", "train.precision=fp16", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "lipgan train: error: train.precision=fp16 needs a GradScaler, which training does not have yet; "
        "use bf16 or fp32"
    ]
    assert list(tmp_path.iterdir()) == []


def test_the_raw_critic_returns_float32_under_autocast():
    D = digits_d()
    with autocast_for("bf16", torch.device("cpu"))():
        scores = build_critic(D, {"gradnorm": None})(torch.randn(4, 1, 16, 16))
    assert scores.out.dtype == torch.float32


def test_auto_is_bf16_only_on_a_cpu_that_computes_it(monkeypatch):
    from lipgan.training import precision

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    for native, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(precision, "cpu_computes_bf16", lambda native=native: native)
        assert precision.resolve_precision("auto", cpu) == expected
        assert precision.resolve_precision("auto", cuda) == "fp32"  # CUDA keeps fp32 unless asked
        assert precision.resolve_precision("fp32", cpu) == "fp32"
    assert load_config(None).train.precision == "auto"  # the default


def test_an_unknown_precision_names_auto_and_the_precisions(tmp_path, capsys):
    assert main(["train", f"out_dir={tmp_path}", "train.precision=fp8", "--dry-run"]) == 2
    assert capsys.readouterr().err.strip() == (
        "lipgan train: error: train.precision must be auto or a precision (bf16, fp16, fp32), not 'fp8'"
    )
