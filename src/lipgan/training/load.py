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

    def sample(self, n: int, seed: int, class_index: int | None = None) -> tuple[torch.Tensor, int | None]:
        """`(samples, per_row)` from the sampling generator with z drawn from `seed`: `n` unconditional
        samples; for a conditional run `n` of class `class_index`, or without it `max(1, n // C)` of each
        class, one row per class (`per_row` is then the row width)."""
        from lipgan.errors import ConfigError
        from lipgan.training.session import grid_labels

        classes = self.G.num_classes
        if class_index is not None and not classes:
            raise ConfigError(f"--class {class_index}: {self.run_dir} is an unconditional run")
        if class_index is not None and not 0 <= class_index < classes:
            raise ConfigError(f"--class {class_index}: the run has {classes} classes, 0 to {classes - 1}")
        gen = torch.Generator().manual_seed(seed)
        if not classes:
            with torch.no_grad():
                return self.G(self.G.sample_z(n, generator=gen, device="cpu").to(self.device)), None
        if class_index is None:
            labels, per_row = grid_labels(classes, n), max(1, n // classes)
        else:
            labels, per_row = torch.full((n,), class_index, dtype=torch.long), None
        z = self.G.sample_z(labels.shape[0], generator=gen, device="cpu").to(self.device)
        with torch.no_grad():
            return self.G(z, labels.to(self.device)), per_row


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
