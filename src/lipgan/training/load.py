"""Loading a finished or running run for `lipgan sample`, `lipgan eval` and `lipgan probe`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from lipgan.constraints.critic import CriticOutput, build_critic, input_grad_norm
from lipgan.losses import Loss, get_loss
from lipgan.training.build import build_dataset, build_models, resolve_device
from lipgan.training.checkpoint import load_checkpoint, load_state
from lipgan.training.config import Config, load_config
from lipgan.training.run_dir import require_run_dir


@dataclass
class LoadedRun:
    run_dir: Path
    cfg: Config
    G: nn.Module  # the EMA generator when the run has one, in eval mode
    G_raw: nn.Module  # the trained generator itself
    D: nn.Module  # the constrained network whose output is f, in eval mode (power iteration frozen)
    loss: Loss
    dataset: object
    step: int
    device: torch.device

    def critic(self, x: torch.Tensor, mode: str = "full") -> CriticOutput:
        """The constrained output, f, and `||∇ₓ f||` per sample (computed here when the constraint does
        not compute it)."""
        scores = build_critic(self.D, self.cfg.constraint)(x, mode=mode)
        if scores.grad_norm is None:
            scores.grad_norm = input_grad_norm(self.D, x)
        return scores


def load_run(run_dir: str | Path, which: str = "last", device: str | torch.device = "cpu") -> LoadedRun:
    run_dir = require_run_dir(run_dir)
    cfg = load_config(run_dir / "config.yaml")
    device = resolve_device(str(device))
    path = run_dir / "checkpoints" / f"{which}.pt"
    state = load_checkpoint(path, device)
    dataset = build_dataset(cfg)
    models = build_models(cfg, dataset, device)
    load_state(models.G, state["G"], "G", path)
    load_state(models.D, state["D"], "D", path)
    G = models.G
    if state.get("ema") is not None:
        import copy

        G = copy.deepcopy(models.G)
        load_state(G, state["ema"], "the EMA generator", path)
    return LoadedRun(
        run_dir=run_dir,
        cfg=cfg,
        G=G.eval(),
        G_raw=models.G.eval(),
        D=models.D.eval(),
        loss=get_loss(cfg.loss.name, cfg.loss.domain_scale),
        dataset=dataset,
        step=int(state["step"]),
        device=device,
    )
