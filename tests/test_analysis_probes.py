"""Every probe on a tiny run-like context writes its PNG and strict JSON; registry, applicability, errors."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from conftest import digits_overrides, toy_overrides
from lipgan.analysis import (
    PROBES,
    applicable_probes,
    context_from_run,
    make_context,
    run_probe,
    run_probe_kinds,
    run_probes,
)
from lipgan.cli import main
from lipgan.constraints.spectral import apply_spectral_norm
from lipgan.errors import ConfigError
from lipgan.losses import get_loss
from lipgan.nets import build_gan
from lipgan.training.config import Config
from lipgan.training.trainer import train

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EXPECTED_KEYS = {
    "grad-norms": {"normalized", "raw", "gran_closed_form"},
    "finite-diff": {"deltas", "normalized", "raw"},
    "lipschitz-bound": {"bound", "factors", "bounds", "empirical_max_grad_norm"},
    "domain": {"omega", "omega_real", "omega_fake", "psi", "history"},
    "layer-grads": {"layers", "weight_kind", "grad_norm", "grad_norm_effective"},
    "eq2-ratio": {"layers", "grad_norm", "sigma_operator", "pairs_consecutive", "pairs_first"},
    "param-variance": {"variant", "scale", "layers"},
    "sn-ratio": {"layers"},
    "value-surface": {"extent", "grid_side", "normalized", "raw"},
}
GRAN = {"gradnorm": "gran", "tau": 1 / 0.83, "eps": 0.1}


def strict_json(path: Path) -> dict:
    def reject(constant: str):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(path.read_text(), parse_constant=reject)


def image_context(tmp_path: Path):
    torch.manual_seed(0)
    pair = build_gan("digits-cnn", resolution=16, width=0.25)
    real = 2 * torch.rand(12, 1, 16, 16) - 1
    with torch.no_grad():
        fake = pair.G.sample(12)
    D = apply_spectral_norm(pair.D, "bsn", 1.2, example_input=real[:2])
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text(
        "".join(json.dumps({"step": s, "d_out_min": -0.1 * s, "d_out_max": 0.1 * s}) + "\n" for s in (1, 2))
    )
    constraint = {**GRAN, "spectral": "bsn", "spectral_scale": 1.2}
    return make_context(
        D,
        real,
        fake,
        tmp_path / "probes",
        loss="ns",
        constraint=constraint,
        G=pair.G,
        arch="digits-cnn",
        metrics_path=metrics,
        step=2,
    )


def test_all_probes_write_png_and_strict_json(tmp_path):
    ctx = image_context(tmp_path)
    kinds = applicable_probes(ctx)
    assert set(kinds) == set(PROBES.names()) - {"value-surface"}
    records = run_probe_kinds("all", ctx)
    assert list(records) == kinds
    for kind in kinds:
        record = strict_json(ctx.out_dir / f"{kind}.json")
        assert record["kind"] == kind and record["figure"] == PROBES.get(kind).figure
        assert EXPECTED_KEYS[kind] <= set(record), kind
        png = ctx.out_dir / "plots" / f"{kind}.png"
        assert png.read_bytes()[:8] == PNG_MAGIC
    assert records["lipschitz-bound"]["bound"] == pytest.approx(1.2**3, rel=1e-12)
    assert records["param-variance"]["variant"] == "bsn" and records["param-variance"]["scale"] == 1.2
    assert records["domain"]["history"]["step"] == [1, 2]


def test_value_surface_only_applies_to_points(tmp_path):
    ctx = image_context(tmp_path)
    with pytest.raises(ConfigError, match="does not apply"):
        run_probe("value-surface", ctx)
    with pytest.raises(ConfigError, match="valid: domain, eq2-ratio"):
        run_probe("no-such-probe", ctx)
    torch.manual_seed(0)
    pair = build_gan("mlp2d", width=0.05)
    points = torch.randn(20, 2)
    points_ctx = make_context(
        pair.D, points, points + 1.0, tmp_path / "pts", loss="hinge", constraint={"gradnorm": "gn"}
    )
    assert points_ctx.is_points and "value-surface" in applicable_probes(points_ctx)
    assert "sn-ratio" not in applicable_probes(points_ctx)  # an MLP has no convolution
    record = run_probe("value-surface", points_ctx)
    assert strict_json(tmp_path / "pts" / "value-surface.json")["grid_side"] == record["grid_side"]


class PointsDataset:
    kind = "points"

    def __init__(self, n: int):
        self.points = torch.randn(n, 2, generator=torch.Generator().manual_seed(3))

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, i: int):
        return self.points[i], -1


def test_context_from_run_uses_the_run_config(tmp_path):
    cfg = Config()
    cfg.model.arch = "mlp2d"
    cfg.constraint.gradnorm = "gran"
    cfg.constraint.tau = 1.25
    pair = build_gan("mlp2d", width=0.05)
    run = SimpleNamespace(
        run_dir=tmp_path,
        cfg=cfg,
        G=pair.G,
        D=pair.D,
        loss=get_loss("ns"),
        dataset=PointsDataset(30),
        step=7,
        device=torch.device("cpu"),
        critic=lambda x, mode="full": (pair.D(x), pair.D(x), None),
    )
    ctx = context_from_run(run, tmp_path / "probes", n_samples=50)
    assert ctx.real.shape == (30, 2) and ctx.fake.shape == (30, 2)
    assert ctx.is_points and ctx.step == 7 and ctx.arch == "mlp2d"
    assert ctx.gradnorm_method == "gran" and ctx.setting("tau") == 1.25
    assert ctx.metrics_path == tmp_path / "metrics.jsonl"
    rows = {tuple(p.tolist()) for p in run.dataset.points}
    assert all(tuple(p.tolist()) in rows for p in ctx.real)


@pytest.mark.parametrize(
    ("overrides", "expected_kinds"),
    [
        (toy_overrides, set(EXPECTED_KEYS) - {"sn-ratio"}),
        (digits_overrides, set(EXPECTED_KEYS) - {"value-surface"}),
    ],
)
def test_lipgan_probe_command_on_a_trained_run(overrides, expected_kinds, tmp_path, capsys):
    """`lipgan probe RUN --kind all` on a freshly trained tiny run writes every applicable probe."""
    extra = {"constraint.gradnorm": "gran", "constraint.spectral": "bsn", "train.probe_every": 0}
    run_dir, _ = train(overrides=overrides(tmp_path, steps=2, **extra))
    assert main(["probe", str(run_dir), "--kind", "all", "--n", "24"]) == 0
    printed = capsys.readouterr().out
    for kind in expected_kinds:
        assert kind in printed
        record = strict_json(run_dir / "probes" / f"{kind}.json")
        assert EXPECTED_KEYS[kind] <= set(record)
        assert (run_dir / "probes" / "plots" / f"{kind}.png").read_bytes()[:8] == PNG_MAGIC
    written = {path.stem for path in (run_dir / "probes").glob("*.json")}
    assert written == expected_kinds
    results = run_probes(run_dir, "grad-norms,domain", n_samples=16)
    assert set(results) == {"grad-norms", "domain"}
    assert results["grad-norms"]["gran_closed_form_max_rel_deviation"] <= 1e-4
    with pytest.raises(ConfigError):
        run_probes(run_dir, "not-a-probe")
