"""Mixed precision (`train.precision`, docs/methods.md §2.9): bf16 autocast keeps the norm, the formula and
the losses in float32, agrees with fp32 within what bf16's rounding allows, resumes exactly; fp16 is
refused."""

from __future__ import annotations

import dataclasses
import math

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


def _one_d_loss(session) -> float:
    """The D loss of one step of `session` on its first real batch and a fixed fake one; the critic's
    outputs and the loss are float32 at every precision."""
    real = next(session.stream)[0]
    fake = torch.randn(real.shape, generator=torch.Generator().manual_seed(2)).clamp(-1, 1)
    stats = discriminator_step(session.parts, real, fake, session.aux_gen)
    assert stats["d_loss"].dtype == stats["raw_real"].dtype == torch.float32
    return float(stats["d_loss"])


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
        losses[precision] = _one_d_loss(open_session(cfg, None, resume=False))
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


@pytest.mark.skipif(torch.cuda.is_available(), reason="auto would be CUDA here")
def test_fp16_is_one_line_before_any_compute(tmp_path, capsys):
    for device in ("cpu", "auto"):  # auto is the CPU on this machine, which has no CUDA
        args = ["train", f"out_dir={tmp_path}", "train.precision=fp16", f"device={device}", "--dry-run"]
        assert main(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [
            f"lipgan train: error: train.precision=fp16 needs CUDA; device={device} is the CPU: "
            "use bf16 or fp32"
        ]
    assert list(tmp_path.iterdir()) == []


def test_the_raw_critic_returns_float32_under_autocast():
    D = digits_d()
    with autocast_for("bf16", torch.device("cpu"))():
        scores = build_critic(D, {"gradnorm": None})(torch.randn(4, 1, 16, 16))
    assert scores.out.dtype == torch.float32


# --- fp16 and the GradScaler ---------------------------------------------------------------------------
# Training refuses fp16 without CUDA. These tests run the same steps on the CPU, whose autocast and
# GradScaler also do fp16, by letting the fp16 check pass: the code under test is the step, not the device.

FP16_UNIT_ROUNDOFF = 2.0**-11  # fp16 keeps 11 significant bits


@pytest.fixture
def fp16_on_cpu(monkeypatch):
    from lipgan.training import precision

    fp16 = precision.PRECISIONS.get("fp16")
    monkeypatch.setitem(precision.PRECISIONS._items, "fp16", dataclasses.replace(fp16, check=lambda d: None))
    monkeypatch.setattr("lipgan.training.validate._may_be_cuda", lambda device: True)
    return fp16


def _session_at(tmp_path, precision, extra=None, overrides=digits_overrides):
    items = {"train.precision": precision, "constraint.gradnorm": "gn", **(extra or {})}
    return open_session(load_config(None, overrides(tmp_path / precision, 1, **items)), None, resume=False)


def _scaled(session, scale):
    """The session's scalers replaced by active ones at `scale` (fp32 arithmetic, so nothing is rounded)."""
    for name in ("scaler_d", "scaler_g"):
        setattr(session.parts, name, torch.amp.GradScaler("cpu", init_scale=scale, enabled=True))
    return session


def _params(net):
    return [p.detach().clone() for p in net.parameters()]


@pytest.mark.parametrize("fast_path", [True, False])
def test_the_g_step_under_a_grad_scaler_equals_the_unscaled_one(tmp_path, fast_path):
    """The loss is scaled by 2^16 before backward and the gradients unscaled before Adam: both are exact
    powers of two in float32, so G's update must equal the unscaled step's. The fast path's input
    gradient of D is taken of f itself, not of the scaled loss: a normalization that saw the scaled
    gradient would change G's update by far more than the tolerance."""
    from lipgan.training.steps import generator_step

    extra = {"constraint.generator_fast_path": str(fast_path).lower()}
    after = {}
    for label, scale in (("plain", None), ("scaled", 2.0**16)):
        session = _session_at(tmp_path / label, "fp32", extra)
        if scale is not None:
            _scaled(session, scale)
        z = session.parts.G.sample_z(8, generator=torch.Generator().manual_seed(4))
        generator_step(session.parts, z, session.aux_gen)
        after[label] = _params(session.parts.G)
        if scale is not None:
            assert session.parts.scaler_g.get_scale() == scale  # no inf: the scale stays (grows after 2000)
    for plain, scaled in zip(after["plain"], after["scaled"]):
        torch.testing.assert_close(scaled, plain, rtol=1e-6, atol=1e-9)


def test_the_d_step_and_its_penalty_under_a_grad_scaler_equal_the_unscaled_one(tmp_path):
    """WGAN-GP's input gradient is taken of the scaled output and unscaled before the norm (PyTorch's
    AMP recipe for penalties); without the unscaling the penalty would be 2^32 times too large."""
    extra = {"constraint.gradnorm": "null", "penalty.weight": 10.0, "loss.name": "wgan"}
    after, terms = {}, {}
    for label, scale in (("plain", None), ("scaled", 2.0**16)):
        session = _session_at(tmp_path / label, "fp32", extra)
        if scale is not None:
            _scaled(session, scale)
        real = next(session.stream)[0]
        fake = torch.randn(real.shape, generator=torch.Generator().manual_seed(2)).clamp(-1, 1)
        stats = discriminator_step(session.parts, real, fake, torch.Generator().manual_seed(3))
        after[label], terms[label] = _params(session.parts.D), float(stats["d_penalty"])
    torch.testing.assert_close(terms["scaled"], terms["plain"], rtol=1e-6, atol=0)
    for plain, scaled in zip(after["plain"], after["scaled"]):
        torch.testing.assert_close(scaled, plain, rtol=1e-6, atol=1e-9)


def test_an_fp16_d_step_agrees_with_fp32_within_fp16_rounding(tmp_path, fp16_on_cpu):
    """As the bf16 test above, with fp16's 11 significant bits: through the digits D's 4 weighted layers the
    errors of f add up to about 4 · 2 · 2^-11 ≈ 0.4% of |f|, so 1% of the loss bounds the difference."""
    losses = {}
    for precision in ("fp32", "fp16"):
        session = _session_at(tmp_path, precision)
        assert session.parts.scaler_d.is_enabled() == (precision == "fp16")
        losses[precision] = _one_d_loss(session)
    difference = abs(losses["fp16"] - losses["fp32"])
    assert 0.0 < difference < 0.01 * abs(losses["fp32"])
    assert 4 * 2 * FP16_UNIT_ROUNDOFF < 0.01


def test_fp16_checkpoints_keep_the_loss_scale_and_resume_bit_for_bit(tmp_path, fp16_on_cpu):
    from conftest import toy_overrides

    extra = {"train.precision": "fp16", "constraint.gradnorm": "gn", "penalty.weight": 1.0}
    full_dir, _ = train(None, toy_overrides(tmp_path / "full", 4, **extra))
    part_dir, _ = train(None, toy_overrides(tmp_path / "part", 4, **extra), stop_after=2)
    state = torch.load(part_dir / "checkpoints" / "last.pt", weights_only=True)
    for name in ("scaler_d", "scaler_g"):  # the scale starts at 2^16 and halves on every overflow
        scale = state[name]["scale"]
        assert 1.0 <= scale <= 2.0**16 and math.log2(scale).is_integer(), (name, scale)
    assert state["scaler_d"]["scale"] < 2.0**16  # fp16 overflowed in D's first steps here: it backed off
    train(None, [], resume=part_dir)
    full = torch.load(full_dir / "checkpoints" / "last.pt", weights_only=True)
    resumed = torch.load(part_dir / "checkpoints" / "last.pt", weights_only=True)
    for key in ("G", "D", "scaler_d", "scaler_g"):
        for name in full[key]:
            a, b = full[key][name], resumed[key][name]
            assert torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b, f"{key}.{name}"


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
