"""The typed training config: one source of defaults for YAML files and `key=value` overrides.

The dataclass defaults are the embedded default run (GraND on the digits, the shipped `digits_grand.yaml`).

A config is a tree of dataclasses. `load_config` reads a YAML file, applies dotted overrides such as
`optim.lr_d=4e-4`, converts every value to its field's type, and runs `validate` (training/validate.py: one
rule per field, then the cross-option checks). Every mistake raises `ConfigError` with a one-line message
naming the valid keys or choices, before any compute starts.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lipgan.constraints.defaults import DEFAULT_DSTEP, DEFAULT_EPS, DEFAULT_TAU
from lipgan.errors import ConfigError, MissingFileError
from lipgan.training.validate import validate


@dataclass
class DataConfig:
    name: str = "digits"
    root: str = "data"
    resolution: int | None = None  # None: the dataset's default (digits 16, STL-10 48, ...)
    split: str | None = None  # None: the dataset's own default (STL-10 unlabeled, CelebA all, ...)
    download: bool = False
    batch_size: int = 64  # global batch, split across DDP ranks
    num_workers: int = 0
    augment: str = "none"  # none | flip | diffaug: what D sees (training/augmentation.py)
    options: dict = field(default_factory=dict)  # dataset-specific keyword arguments


@dataclass
class ModelConfig:
    arch: str = "digits-cnn"
    options: dict = field(default_factory=dict)  # architecture keyword arguments (z_dim, init, pooling, ...)


@dataclass
class ConstraintConfig:
    gradnorm: str | None = "gran"  # a method of lipgan.constraints.gradnorm, or null
    tau: float = DEFAULT_TAU  # GraN: K = 1/tau ≈ 0.83 (GraN App. A writes K = 1/τ = 0.83)
    eps: float = DEFAULT_EPS
    spectral: str | None = None  # sn | sn-strict | bsn, or null
    spectral_scale: float = 1.0  # SSN / BSSN scale s, LipReg's k_SN
    spectral_gamma: str | None = None  # "same" | "diff" (Miyato App. E), or null
    spectral_gamma_bias: bool = True  # γ scales the biases too, as the official BSN code does
    # the spectral variant also normalizes D's nn.Embedding (a projection D's class embedding), as
    # SNGAN-projection and Mimicry's SNEmbedding do (docs/methods.md §7.8)
    spectral_embedding: bool = True
    n_power_iterations: int = 1
    output_scale: float = 1.0  # GraN's SN†: multiply D's output by K
    generator_fast_path: bool = True  # G step without double backward where the method allows it
    dstep: str = DEFAULT_DSTEP  # how mode "full" differentiates the norm: tangent | double-backward (§2.11)


@dataclass
class PenaltyConfig:
    weight: float = 0.0  # lambda; 0 disables
    center: float = 1.0  # 1: WGAN-GP, K: GP†, 0: R1 / zero-centred
    at: str = "interpolates"


@dataclass
class LossConfig:
    name: str = "ns"
    domain_scale: float = 1.0  # LipReg's alpha


@dataclass
class ConsistencyConfig:
    weight: float = 0.0  # lambda of CR; 0 disables
    max_shift: float = 0.2  # fraction of the image size
    flip: bool = True


@dataclass
class OptimConfig:
    name: str = "adam"  # a name in training/optim.py OPTIMIZERS: adam | rmsprop
    lr_g: float = 5e-4
    lr_d: float = 5e-4
    betas: list = field(default_factory=lambda: [0.5, 0.999])
    eps: float = 1e-8  # Adam's epsilon matters for GraN (App. J)
    rmsprop_alpha: float = 0.99
    n_dis: int = 1
    lr_decay: str = "none"  # in LR_SCHEDULES there: none | linear (to 0 at train.steps)
    ema: float = 0.999  # decay of the generator EMA; 0 disables
    ema_start: int = 0  # generator step at which the EMA starts


@dataclass
class TrainConfig:
    steps: int = 10000  # generator updates
    log_every: int = 50
    sample_every: int = 1000
    ckpt_every: int = 1000
    eval_every: int = 0  # 0: evaluate only at the end
    eval_at_end: bool = True
    probe_every: int = 0  # cheap probes into metrics.jsonl; 0 disables
    grid_size: int = 64
    plots: bool = True  # training/eval curve PNGs at the end of a run
    # auto | fp32 | bf16 | fp16 (autocast; the norms and losses stay fp32; fp16 on CUDA with GradScalers);
    # auto: bf16 on a CPU that computes bf16 natively, else fp32 (training/precision.py)
    precision: str = "auto"


@dataclass
class EvalConfig:
    protocol: str = "auto"  # auto: the dataset's own metrics (toy, digits) or "quick" Inception metrics
    n_samples: int = 0  # 0: the protocol's default
    inception_weights: str | None = None
    batch_size: int = 100
    # G's mode while sampling for metrics: eval (running batch-norm statistics, our default) or train (batch
    # statistics, as the official GN and PGN codes sample); docs/methods.md §9.4
    generator_mode: str = "eval"


@dataclass
class Config:
    name: str = "digits_grand"
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    out_dir: str = "runs"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    constraint: ConstraintConfig = field(default_factory=ConstraintConfig)
    penalty: PenaltyConfig = field(default_factory=PenaltyConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    cr: ConsistencyConfig = field(default_factory=ConsistencyConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _convert(value: Any, hint: Any, key: str) -> Any:
    """Convert `value` to the field type `hint`, or raise a one-line ConfigError."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        is_null = value is None or (isinstance(value, str) and value.lower() in ("null", "none", "~"))
        if is_null and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: cannot read {value!r} as {hint}")
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping of {hint.__name__} keys, got {value!r}")
        return _build(hint, value, key + ".")
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value  # exact: float() would round or overflow a large one
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"{key}: expected an integer, got {value!r}") from None
        if not number.is_integer():
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return int(number)
    if hint is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if hint is str:
        if isinstance(value, dict | list):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return str(value)
    if hint is list or origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return list(value)
    if hint is dict or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    raise TypeError(f"unsupported config type {hint} for {key}")


def _build(cls: type, values: dict, prefix: str = "") -> Any:
    hints = _hints(cls)
    unknown = sorted((key for key in values if key not in hints), key=str)  # YAML keys may be numbers
    if unknown:
        where = prefix.rstrip(".") or "the top level"
        raise ConfigError(f"unknown key {prefix}{unknown[0]} in {where}; valid keys: {', '.join(hints)}")
    kwargs = {name: _convert(value, hints[name], prefix + name) for name, value in values.items()}
    return cls(**kwargs)


def config_to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def parse_overrides(overrides: list[str]) -> dict:
    """`["optim.lr_d=4e-4", "data.name=ring8"]` -> nested dict with YAML-parsed values."""
    nested: dict = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value (e.g. optim.lr_d=4e-4)")
        key, raw = item.split("=", 1)
        if not key:
            raise ConfigError(f"override {item!r} has an empty key")
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except (yaml.YAMLError, ValueError):  # ValueError: YAML cannot build it (2020-13-45); keep the text
            value = raw
        node = nested
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r} conflicts with another override of {part}")
        node[parts[-1]] = value
    return nested


def _merge(base: dict, update: dict) -> dict:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key not in ("options",):
            merged[key] = _merge(merged[key], value)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config {path} is a directory, not a YAML file")
    if not path.is_file():
        raise MissingFileError(f"config file {path} does not exist (`lipgan configs` lists the shipped ones)")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read config {path} as text: {err}") from None
    except ValueError as err:  # a value YAML parses but cannot build: a date 2020-13-45, a 5000-digit int
        raise ConfigError(f"{path}: YAML cannot read a value ({err})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path} is not valid YAML{where}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path} must hold a mapping of config keys, not {type(values).__name__}")
    return values


# The configs ship inside the package (src/lipgan/configs/; `configs` at the repository root links there).
# lipgan is always installed as files on disk (as torch is), so this is an ordinary directory.
SHIPPED_CONFIGS = Path(importlib.resources.files("lipgan") / "configs")


def find_config(name: str | Path) -> Path:
    """A config given as a path if that file exists; else a shipped config named by its path under
    `SHIPPED_CONFIGS` (`gran/cifar10_grand`, with or without `.yaml`, as `lipgan configs` lists them); else
    `name` as given, for the caller to report missing."""
    path = Path(name)
    if path.is_file():
        return path
    for candidate in (SHIPPED_CONFIGS / path, SHIPPED_CONFIGS / f"{path}.yaml"):
        if candidate.is_file():
            return candidate
    return path


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """The resolved config: defaults, then the YAML file, then `key=value` overrides; validated."""
    values = read_yaml(path) if path is not None else {}
    values = _merge(values, parse_overrides(overrides or []))
    cfg = _build(Config, values)
    validate(cfg)
    return cfg


def config_from_dict(values: dict) -> Config:
    cfg = _build(Config, values)
    validate(cfg)
    return cfg


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
