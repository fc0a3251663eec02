"""The training loop's schedule (docs/methods.md §6.1): `n_dis` discriminator updates, then one generator
update, per generator step, counted both as calls and as optimizer steps."""

from __future__ import annotations

import pytest
import torch

from conftest import toy_overrides
from lipgan.training import steps as steps_module
from lipgan.training.trainer import train

STEPS = 2


@pytest.mark.parametrize("n_dis", [1, 2, 3])
def test_each_generator_step_takes_n_dis_discriminator_updates(tmp_path, monkeypatch, n_dis):
    calls: list[str] = []

    def d_step(*args, **kwargs):
        calls.append("D")
        return steps_module.discriminator_step(*args, **kwargs)

    def g_step(*args, **kwargs):
        calls.append("G")
        return steps_module.generator_step(*args, **kwargs)

    monkeypatch.setattr("lipgan.training.trainer.discriminator_step", d_step)
    monkeypatch.setattr("lipgan.training.trainer.generator_step", g_step)
    run_dir, result = train(None, toy_overrides(tmp_path, STEPS, **{"optim.n_dis": n_dis}))
    assert result["step"] == STEPS
    assert calls == (["D"] * n_dis + ["G"]) * STEPS
    # and the optimizers did step that often: Adam counts its steps per parameter
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    d_counts = {float(s["step"]) for s in state["opt_d"]["state"].values()}
    g_counts = {float(s["step"]) for s in state["opt_g"]["state"].values()}
    assert d_counts == {float(n_dis * STEPS)} and g_counts == {float(STEPS)}
