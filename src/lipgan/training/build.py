"""From a config to the objects a run needs: device, dataset, G and the constrained D, optimizers."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lipgan.constraints.spectral import OutputScale, apply_spectral_norm
from lipgan.data import get_dataset
from lipgan.errors import ConfigError, MissingFileError
from lipgan.nets import GanPair, arch_options, build_gan, count_parameters
from lipgan.training.config import Config
from lipgan.training.optim import LR_SCHEDULES, OPTIMIZERS
from lipgan.training.validate import check_device


def resolve_device(name: str, local_rank: int = 0, key: str = "device") -> torch.device:
    """The torch device of `name` (auto, cpu, cuda, cuda:N), which must exist here; `key` names the
    config key or CLI flag in the error."""
    check_device(name, key)
    setting = f"{key} {name}" if key.startswith("--") else f"{key}={name}"
    cpu = f"{key} cpu" if key.startswith("--") else f"{key}=cpu"
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"{setting} but CUDA is not available here; use {cpu}")
        if name == "cuda":
            name = f"cuda:{local_rank}"
        count = torch.cuda.device_count()
        if int(name.split(":")[1]) >= count:
            raise ConfigError(
                f"{setting} but this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}"
            )
    return torch.device(name)


def build_dataset(cfg: Config, split: str | None = None):
    d = cfg.data
    return get_dataset(
        d.name, root=d.root, resolution=d.resolution, split=split or d.split, download=d.download, **d.options
    )


def is_conditional_arch(arch: str) -> bool:
    """A class-conditional architecture is one whose factory takes `num_classes` (docs/methods.md §7.8)."""
    return "num_classes" in arch_options(arch)


def dataset_classes(cfg: Config, dataset) -> int:
    """The class count a conditional arch is built for: the dataset's; a ConfigError when it has no labels
    or `model.options.num_classes` disagrees with it."""
    classes = getattr(dataset, "num_classes", None)
    if not classes:
        raise ConfigError(
            f"model.arch={cfg.model.arch} is class-conditional but data.name={cfg.data.name} "
            f"(split {cfg.data.split or 'default'}) has no class labels; use an unconditional arch"
        )
    given = cfg.model.options.get("num_classes", classes)
    if given != classes:
        raise ConfigError(f"model.options.num_classes={given} but data.name={cfg.data.name} has {classes}")
    return int(classes)


def arch_kwargs(cfg: Config, dataset) -> dict:
    """Architecture keyword arguments: the dataset's shape (and class count, for a conditional arch) plus
    `model.options`."""
    kwargs = dict(cfg.model.options)
    if dataset.kind == "image":
        kwargs.setdefault("resolution", dataset.resolution)
        kwargs.setdefault("channels", dataset.channels)
    if is_conditional_arch(cfg.model.arch):
        kwargs["num_classes"] = dataset_classes(cfg, dataset)
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
    GraN's output scale K (SN†). Gradient normalization acts on the whole output and lives in the critic.
    A class-conditional D (`D.num_classes > 0`) given images alone is run on them with labels 0, 1, ...
    to record its layers' input shapes; `constraint.spectral_embedding` decides whether its class
    embedding is normalized too (docs/methods.md §7.8)."""
    c = cfg.constraint
    if getattr(D, "num_classes", 0) and isinstance(example_input, torch.Tensor):
        example_input = (example_input, example_labels(D, example_input.shape[0], example_input.device))
    if c.spectral is not None:
        D = apply_spectral_norm(
            D,
            variant=c.spectral,
            scale=c.spectral_scale,
            example_input=example_input,
            n_power_iterations=c.n_power_iterations,
            gamma=c.spectral_gamma,
            gamma_on_bias=c.spectral_gamma_bias,
            embedding=c.spectral_embedding,
        )
    if c.output_scale != 1.0:
        D = OutputScale(D, c.output_scale)
    return D


def example_labels(net: nn.Module, n: int, device=None) -> torch.Tensor:
    """Labels `0, 1, ..., n−1` modulo `net.num_classes`, int64 [n]: for shape checks of conditional nets."""
    return torch.arange(n, device=device) % net.num_classes


def build_models(cfg: Config, dataset, device: torch.device) -> Models:
    """G and the constrained D, initialised from `cfg.seed` (the same on every rank)."""
    torch.manual_seed(cfg.seed)
    pair = build_pair(cfg, dataset)
    example = torch.stack([dataset[i][0] for i in range(2)])
    D = constrain_discriminator(pair.D, cfg, example)
    return Models(pair.G.to(device), D.to(device))


FORWARD_ERRORS = (RuntimeError, ValueError, TypeError, IndexError)  # what a layer raises on a wrong shape


def check_model_fits_data(cfg: Config, dataset) -> GanPair:
    """Build G and D on the meta device (no memory, no weights), run G on 2 latents and D on 2 samples
    shaped like the dataset's: an arch that does not fit the data fails here in one line, not in the first
    step. Returns the meta pair."""
    sample_shape = list(dataset[0][0].shape)  # [C, H, W] or [2]
    where = f"model.arch={cfg.model.arch} does not fit data.name={cfg.data.name} (samples {sample_shape})"
    try:
        with torch.device("meta"):
            pair = build_pair(cfg, dataset)
            labels = (example_labels(pair.G, 2),) if pair.G.conditional else ()  # G(z, y) and D(x, y)
            fake = pair.G(pair.G.sample_z(2), *labels)
            if list(fake.shape[1:]) != sample_shape:
                raise ConfigError(f"{where}: G makes samples {list(fake.shape[1:])}")
            scores = pair.D(torch.empty(2, *sample_shape), *labels)
    except FORWARD_ERRORS as err:
        detail = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise ConfigError(f"{where}: {detail}") from None
    if list(scores.shape) != [2]:
        raise ConfigError(f"{where}: D gives {list(scores.shape)} for 2 samples, not one score per sample")
    return pair


def check_eval_fits_data(cfg: Config, dataset, key: str = "eval.protocol") -> None:
    """Only image data is scored with Inception: a named protocol on points or the digits (which have
    their own metrics and ignore it) is a mistake. A given Inception weights file must exist now, not at
    the end of training. `key` names the config key or CLI flag of the protocol in the error."""
    from lipgan.metrics import evaluator_kind, resolve_inception_weights

    kind = evaluator_kind(dataset)
    if kind != "image":
        if cfg.eval.protocol != "auto":
            raise ConfigError(
                f"{key} {cfg.eval.protocol!r} is an Inception protocol for image data; {cfg.data.name} is "
                f"scored with its own {kind} metrics: use auto"
            )
        return
    evaluates = cfg.train.eval_at_end or cfg.train.eval_every > 0
    if evaluates and cfg.eval.inception_weights:
        resolve_inception_weights(cfg.eval.inception_weights)


def check_fits_data(cfg: Config, dataset) -> None:
    """The checks of a config against its dataset, before any compute (the model, then the evaluation)."""
    check_model_fits_data(cfg, dataset)
    check_eval_fits_data(cfg, dataset)
    check_augment_fits_data(cfg, dataset)


def check_augment_fits_data(cfg: Config, dataset) -> None:
    """Augmentations act on images; a mirroring one never on the digits, which are not mirror-symmetric."""
    from lipgan.training.augmentation import AUGMENTS

    augment = AUGMENTS.get(cfg.data.augment)
    if augment.name != "none" and dataset.kind != "image":
        raise ConfigError(f"data.augment={augment.name} needs images; data.name={cfg.data.name} is points")
    if augment.mirrors and cfg.data.name == "digits":
        raise ConfigError("data.augment=flip on the digits: a mirrored digit is not a digit; use none")


def count_architecture_parameters(cfg: Config) -> tuple[int, int] | None:
    """Check the config against its dataset (`check_fits_data`) so that bad `model.*` options and an arch
    that does not fit fail now; the parameter counts of G and D, or None when the dataset's files are
    missing and its shape is unknown."""
    try:
        dataset = build_dataset(cfg)
    except MissingFileError:
        return None
    pair = check_model_fits_data(cfg, dataset)
    check_eval_fits_data(cfg, dataset)
    check_augment_fits_data(cfg, dataset)
    return count_parameters(pair.G), count_parameters(pair.D)


def build_optimizer(params, lr: float, cfg: Config) -> torch.optim.Optimizer:
    """The optimizer `optim.name` of `OPTIMIZERS` at learning rate `lr` (docs/methods.md §6.4)."""
    return OPTIMIZERS.get(cfg.optim.name)(params, lr, cfg.optim)


def lr_factor(cfg: Config, step: int) -> float:
    """The factor of the schedule `optim.lr_decay` of `LR_SCHEDULES` after `step` of `train.steps`
    generator steps (docs/methods.md §6.4)."""
    return LR_SCHEDULES.get(cfg.optim.lr_decay)(step, cfg.train.steps)


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr
