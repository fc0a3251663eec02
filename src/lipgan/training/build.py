"""From a config to the objects a run needs: device, dataset, G and the constrained D, optimizers."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lipgan.constraints.spectral import OutputScale, apply_spectral_norm
from lipgan.data import get_dataset
from lipgan.errors import ConfigError, MissingFileError
from lipgan.nets import GanPair, build_gan, count_parameters
from lipgan.training.config import Config


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device={name} but CUDA is not available here; use device=cpu")
        if name == "cuda":
            name = f"cuda:{local_rank}"
    return torch.device(name)


def build_dataset(cfg: Config, split: str | None = None):
    d = cfg.data
    return get_dataset(
        d.name, root=d.root, resolution=d.resolution, split=split or d.split, download=d.download, **d.options
    )


def arch_kwargs(cfg: Config, dataset) -> dict:
    """Architecture keyword arguments: the dataset's shape plus `model.options`."""
    kwargs = dict(cfg.model.options)
    if dataset.kind == "image":
        kwargs.setdefault("resolution", dataset.resolution)
        kwargs.setdefault("channels", dataset.channels)
    return kwargs


def build_pair(cfg: Config, dataset) -> GanPair:
    """The unconstrained G and D of `model.arch`, shaped for `dataset`, on the current default device."""
    return build_gan(cfg.model.arch, **arch_kwargs(cfg, dataset))


@dataclass
class Models:
    G: nn.Module
    D: nn.Module  # the network whose output is f: spectral parametrizations and output scale included


def constrain_discriminator(D: nn.Module, cfg: Config, example_input: torch.Tensor) -> nn.Module:
    """Apply the per-layer constraints of the config to D: a spectral variant with its scale and γ, then
    GraN's output scale K (SN†). Gradient normalization acts on the whole output and lives in the critic."""
    c = cfg.constraint
    if c.spectral is not None:
        D = apply_spectral_norm(
            D,
            variant=c.spectral,
            scale=c.spectral_scale,
            example_input=example_input,
            n_power_iterations=c.n_power_iterations,
            gamma=c.spectral_gamma,
        )
    if c.output_scale != 1.0:
        D = OutputScale(D, c.output_scale)
    return D


def build_models(cfg: Config, dataset, device: torch.device) -> Models:
    """G and the constrained D, initialised from `cfg.seed` (the same on every rank)."""
    torch.manual_seed(cfg.seed)
    pair = build_pair(cfg, dataset)
    example = torch.stack([dataset[i][0] for i in range(2)])
    D = constrain_discriminator(pair.D, cfg, example)
    return Models(pair.G.to(device), D.to(device))


def count_architecture_parameters(cfg: Config) -> tuple[int, int] | None:
    """Build G and D on the meta device (no memory, no weights) so that bad `model.*` options fail now;
    their parameter counts, or None when the dataset's files are missing and its shape is unknown."""
    try:
        dataset = build_dataset(cfg)
    except MissingFileError:
        return None
    with torch.device("meta"):
        pair = build_pair(cfg, dataset)
    return count_parameters(pair.G), count_parameters(pair.D)


def build_optimizer(params, lr: float, cfg: Config) -> torch.optim.Optimizer:
    o = cfg.optim
    if o.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=o.rmsprop_alpha, eps=o.eps)
    return torch.optim.Adam(params, lr=lr, betas=tuple(o.betas), eps=o.eps)


def lr_factor(cfg: Config, step: int) -> float:
    """Linear decay to 0 at `train.steps` generator updates (GN, GraN), or constant."""
    if cfg.optim.lr_decay == "linear":
        return max(0.0, 1.0 - step / cfg.train.steps)
    return 1.0


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr
