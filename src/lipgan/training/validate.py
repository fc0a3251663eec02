"""The checks of a training config, run by `validate(cfg)` before any compute.

Every leaf field of the config has one rule in `RULES` (a test keeps the table complete); a rule checks the
type and range of one value and raises a one-line `ConfigError` naming the key, the bad value and what is
allowed. Checks that combine several fields follow the table in `validate`. The CLI reuses `check_device`,
`check_seed` and `check_protocol` for its flags.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import re
from collections.abc import Callable
from typing import Any

from lipgan.errors import ConfigError

Rule = Callable[[str, Any], None]  # rule(key, value) raises ConfigError or returns None

SEED_LIMIT = 2**31  # a non-negative int32: every RNG we seed (torch, numpy, random) takes it
NAME_LIMIT = 200  # a run directory is <index>-<name>; file systems stop at 255 bytes
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")


def _fail(key: str, value: Any, allowed: str) -> None:
    raise ConfigError(f"{key} must be {allowed}, not {value!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # True is an int to Python, not to us


def _is_finite(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return isinstance(value, int) or math.isfinite(value)  # math.isfinite overflows on huge ints


def _listed(choices: list[str]) -> str:
    """`["a", "b", "c"]` -> "a, b or c"."""
    return ", ".join(choices[:-1]) + " or " + choices[-1] if len(choices) > 1 else choices[0]


# --- rules ---------------------------------------------------------------------------------------------


def int_at_least(low: int) -> Rule:
    def rule(key: str, value: Any) -> None:
        if not _is_int(value):
            _fail(key, value, f"an integer of at least {low}")
        if value < low:
            _fail(key, value, f"at least {low}")

    return rule


def zero_or_at_least(low: int, zero_means: str) -> Rule:
    def rule(key: str, value: Any) -> None:
        if not _is_int(value) or (value != 0 and value < low):
            _fail(key, value, f"0 ({zero_means}) or an integer of at least {low}")

    return rule


def check_seed(value: Any, key: str = "seed") -> None:
    if not _is_int(value) or not 0 <= value < SEED_LIMIT:
        _fail(key, value, "an integer in [0, 2**31)")


def positive(key: str, value: Any) -> None:
    if not _is_finite(value) or value <= 0:
        _fail(key, value, "a finite number > 0")


def non_negative(key: str, value: Any) -> None:
    if not _is_finite(value) or value < 0:
        _fail(key, value, "a finite number >= 0")


def unit_interval(key: str, value: Any) -> None:
    """[0, 1): decay rates and fractions (1 would freeze an average or shift a whole image)."""
    if not _is_finite(value) or not 0 <= value < 1:
        _fail(key, value, "a number in [0, 1)")


def boolean(key: str, value: Any) -> None:
    if not isinstance(value, bool):
        _fail(key, value, "true or false")


def text(key: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        _fail(key, value, "a non-empty string")


def mapping(key: str, value: Any) -> None:
    # keyword options: a non-string key would reach **kwargs as a TypeError
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        _fail(key, value, "a mapping with string keys")


def optional(rule: Rule) -> Rule:
    def check(key: str, value: Any) -> None:
        if value is not None:
            rule(key, value)

    return check


def one_of(*choices: str | None) -> Rule:
    def rule(key: str, value: Any) -> None:
        if value not in choices:
            _fail(key, value, _listed(["null" if c is None else c for c in choices]))

    return rule


def registered(module: str, name: str) -> Rule:
    """A name in the registry `module.name`, imported on first use (the registries import the nets)."""

    def rule(key: str, value: Any) -> None:
        registry = getattr(importlib.import_module(module), name)
        if not isinstance(value, str):
            _fail(key, value, f"a {registry.kind} name")
        try:
            registry.get(value)
        except ConfigError as err:
            raise ConfigError(f"{key}: {err}") from None

    return rule


def check_protocol(value: Any, key: str = "eval.protocol") -> None:
    from lipgan.metrics.protocols import PROTOCOLS

    if value != "auto" and not (isinstance(value, str) and value in PROTOCOLS):
        _fail(key, value, f"auto or an evaluation protocol ({', '.join(PROTOCOLS.names())})")


def check_precision(value: Any, key: str = "train.precision") -> None:
    """auto or a name in `PRECISIONS` (training/precision.py)."""
    from lipgan.training.precision import AUTO, PRECISIONS

    if value != AUTO and not (isinstance(value, str) and value in PRECISIONS):
        _fail(key, value, f"{AUTO} or a precision ({', '.join(PRECISIONS.names())})")


def check_device(value: Any, key: str = "device") -> None:
    """auto, cpu, cuda or cuda:N with N a non-negative integer (whether it exists is resolve_device's)."""
    if not isinstance(value, str) or not DEVICE_PATTERN.fullmatch(value):
        _fail(key, value, "auto, cpu, cuda or cuda:N (N an integer >= 0)")


def run_name(key: str, value: Any) -> None:
    plain = isinstance(value, str) and value.replace("-", "").replace("_", "").replace(".", "").isalnum()
    if not plain or len(value) > NAME_LIMIT:
        raise ConfigError(
            f"name may hold letters, digits, - _ . (at most {NAME_LIMIT} characters), not {value!r}"
        )


def betas(key: str, value: Any) -> None:
    if not (isinstance(value, list) and len(value) == 2 and all(_is_finite(b) and 0 <= b < 1 for b in value)):
        _fail(key, value, "two numbers in [0, 1)")


RULES: dict[str, Rule] = {
    "name": run_name,
    "seed": lambda key, value: check_seed(value, key),
    "device": lambda key, value: check_device(value, key),
    "out_dir": text,
    "data.name": registered("lipgan.data", "DATASETS"),
    "data.root": text,
    "data.resolution": optional(int_at_least(1)),  # the dataset lists the ones it has
    "data.split": optional(text),  # likewise
    "data.download": boolean,
    "data.batch_size": int_at_least(2),  # BatchNorm in training mode needs two samples per batch
    "data.num_workers": int_at_least(0),
    "data.augment": registered("lipgan.training.augmentation", "AUGMENTS"),
    "data.options": mapping,
    "model.arch": registered("lipgan.nets", "ARCHS"),
    "model.options": mapping,
    "constraint.gradnorm": optional(registered("lipgan.constraints.gradnorm", "GRADNORM_METHODS")),
    "constraint.tau": positive,
    "constraint.eps": non_negative,
    "constraint.spectral": optional(registered("lipgan.constraints.spectral", "SPECTRAL_VARIANTS")),
    "constraint.spectral_scale": positive,
    "constraint.spectral_gamma": one_of(None, "same", "diff"),
    "constraint.spectral_gamma_bias": boolean,
    "constraint.spectral_embedding": boolean,
    "constraint.n_power_iterations": int_at_least(1),
    "constraint.output_scale": positive,
    "constraint.generator_fast_path": boolean,
    "constraint.dstep": registered("lipgan.constraints.gradnorm_dstep", "DSTEPS"),
    "penalty.weight": non_negative,
    "penalty.center": non_negative,  # a gradient norm is never negative
    "penalty.at": registered("lipgan.constraints.penalty", "PENALTY_SITES"),
    "loss.name": registered("lipgan.losses", "LOSSES"),
    "loss.domain_scale": positive,
    "cr.weight": non_negative,
    "cr.max_shift": unit_interval,
    "cr.flip": boolean,
    "optim.name": registered("lipgan.training.optim", "OPTIMIZERS"),
    "optim.lr_g": positive,
    "optim.lr_d": positive,
    "optim.betas": betas,
    "optim.eps": positive,
    "optim.rmsprop_alpha": unit_interval,
    "optim.n_dis": int_at_least(1),
    "optim.lr_decay": registered("lipgan.training.optim", "LR_SCHEDULES"),
    "optim.ema": unit_interval,
    "optim.ema_start": int_at_least(0),
    "train.steps": int_at_least(1),
    "train.log_every": int_at_least(0),  # 0 disables each of these intervals
    "train.sample_every": int_at_least(0),
    "train.ckpt_every": int_at_least(0),
    "train.eval_every": int_at_least(0),
    "train.eval_at_end": boolean,
    "train.probe_every": int_at_least(0),
    "train.grid_size": int_at_least(1),
    "train.plots": boolean,
    "train.precision": lambda key, value: check_precision(value, key),
    "eval.protocol": lambda key, value: check_protocol(value, key),
    "eval.n_samples": zero_or_at_least(2, "the protocol's default"),  # FID needs a covariance: 2 samples
    "eval.inception_weights": optional(text),
    "eval.batch_size": int_at_least(1),
    "eval.generator_mode": one_of("eval", "train"),
}


def leaves(node: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """`(dotted key, value)` of every non-dataclass field under the dataclass `node`."""
    items = []
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if dataclasses.is_dataclass(value):
            items += leaves(value, f"{prefix}{f.name}.")
        else:
            items.append((prefix + f.name, value))
    return items


def _may_be_cuda(device: str) -> bool:
    """Whether `device` can name a CUDA device here (`auto` does only where CUDA is available)."""
    if device != "auto":
        return device.startswith("cuda")
    import torch  # only for this check: validating a config otherwise needs no torch

    return torch.cuda.is_available()


def validate(cfg: Any) -> None:
    """Every field's rule, then the checks across fields; the first failure raises `ConfigError`."""
    for key, value in leaves(cfg):
        RULES[key](key, value)
    if cfg.train.precision == "fp16" and not _may_be_cuda(cfg.device):  # before any compute, --dry-run too
        raise ConfigError(
            f"train.precision=fp16 needs CUDA; device={cfg.device} is the CPU: use bf16 or fp32"
        )
    if cfg.constraint.spectral_gamma is not None and cfg.constraint.spectral is None:
        raise ConfigError("constraint.spectral_gamma needs constraint.spectral (sn, sn-strict or bsn)")
