"""`lipgan bench`: the wall time of the D step, the G step and the whole iteration of each method.

One iteration is what `training/trainer.py:train_one_step` runs between its learning-rate update and its
NaN guard (docs/methods.md §6.1): `n_dis` times a fake batch from G without gradient and
`steps.discriminator_step` on `[reals; fakes]`, then `steps.generator_step` on fresh latents in the critic
mode of §2.8. Each method is a config (`bench_methods.py`); its nets, critic, regularizers and optimizers
come from `load_config`, `build.build_models` and `session.make_step_parts`, the same functions a training
run is assembled with. The reals are random tensors of the shape G makes, so no dataset is read.

The guard, the EMA update, logging and the data loader are outside the timed region (the guard's cost is
`benchmarks/nan_guard_overhead.py`). Each repetition runs every method once, in an order rotated by one
between repetitions, after `warmup` untimed rounds, so that a drift in machine speed hits every method
alike; the report takes medians and minima over repetitions (`bench_report.py`).

`--precision bf16|fp16` runs the iteration as `train.precision` does: under `torch.autocast`, and at fp16
with the training steps' GradScalers, whose cost the times include. `--precision fp32 bf16` times every
method at both in the same interleaved repetitions, so that the speed-up of a precision over the first one
is measured side by side (`BenchSettings.also_precisions`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from lipgan.errors import ConfigError
from lipgan.experiments.bench_device import MEMORY_PROBES, synchronize
from lipgan.experiments.bench_methods import BENCH_METHODS, DEFAULT_METHODS
from lipgan.experiments.bench_report import summarize
from lipgan.nets import ARCHS, build_gan
from lipgan.training.build import build_models, resolve_device
from lipgan.training.config import Config, load_config, parse_overrides
from lipgan.training.ddp import DistInfo
from lipgan.training.precision import PRECISIONS, Precision
from lipgan.training.run_dir import environment_record, write_json
from lipgan.training.session import make_step_parts
from lipgan.training.steps import StepParts, discriminator_step, generator_step

# --- settings --------------------------------------------------------------------------------------------


@dataclass
class BenchSettings:
    arch: str = "sngan-cnn"
    batch: int = 64
    n_dis: int = 1
    methods: tuple[str, ...] = DEFAULT_METHODS
    precision: str = "fp32"  # the tables' ratios are within one precision; the speed-ups are over this one
    also_precisions: tuple[str, ...] = ()  # timed in the same repetitions as `precision`
    device: str = "auto"
    repeats: int = 10
    warmup: int = 2  # untimed rounds of every method before the first repetition
    overrides: tuple[str, ...] = ()  # key=value config settings for every method (e.g. model.options)
    seed: int = 0


def _at_least(flag: str, value: int, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{flag} must be an integer of at least {low}, not {value!r}")


# config keys the bench sets from its own flags; an override of one would contradict the flag
FLAG_KEYS = {
    "model.arch": "--arch",
    "data.batch_size": "--batch",
    "optim.n_dis": "--n-dis",
    "device": "--device",
}


def _check_overrides(overrides: tuple[str, ...]) -> None:
    parse_overrides(list(overrides))  # the form key=value, one line on a mistake
    method_keys = {item.split("=", 1)[0] for m in BENCH_METHODS for item in BENCH_METHODS.get(m).overrides}
    for item in overrides:
        key = item.split("=", 1)[0]
        if key in FLAG_KEYS:
            raise ConfigError(
                f"override {item!r}: the bench sets {key} from {FLAG_KEYS[key]}; give that flag"
            )
        if key in method_keys:
            raise ConfigError(
                f"override {item!r}: {key} is set by each method; choose methods with --methods"
            )


def check_settings(s: BenchSettings) -> torch.device:
    """Every flag and every method's config, before anything is built; returns the device."""
    _at_least("--batch", s.batch, 2)  # BatchNorm in G needs two samples, as data.batch_size does
    _at_least("--n-dis", s.n_dis, 1)
    _at_least("--repeats", s.repeats, 1)
    _at_least("--warmup", s.warmup, 0)
    if s.arch not in ARCHS:
        raise ConfigError(f"--arch {s.arch!r} is not an architecture; valid: {', '.join(ARCHS.names())}")
    if not s.methods:
        raise ConfigError(f"--methods needs at least one of {', '.join(DEFAULT_METHODS)}")
    for name in s.methods:
        if name not in BENCH_METHODS:
            raise ConfigError(
                f"--methods: unknown method {name!r}; valid: {', '.join(BENCH_METHODS.names())}"
            )
    if len(set(s.methods)) != len(s.methods):
        raise ConfigError(f"--methods names a method twice: {' '.join(s.methods)}")
    precisions = (s.precision, *s.also_precisions)
    for precision in precisions:
        if precision not in PRECISIONS:
            raise ConfigError(
                f"--precision must be one of {', '.join(PRECISIONS.names())}, not {precision!r}"
            )
    if len(set(precisions)) != len(precisions):
        raise ConfigError(f"--precision names a precision twice: {' '.join(precisions)}")
    device = resolve_device(s.device, key="--device")
    for precision in precisions:
        PRECISIONS.get(precision).check(device)
    _check_overrides(s.overrides)
    for method in s.methods:  # a bad override value fails here, for every method, not after minutes
        sample_shape(method_config(method, s))
    return device


def at_precision(s: BenchSettings, precision: str) -> BenchSettings:
    """The settings of one precision of a run: `precision` alone."""
    return replace(s, precision=precision, also_precisions=())


def method_config(method: str, s: BenchSettings) -> Config:
    """The training config of one method: the flags (and the hinge loss), the user's overrides, then the
    method's own constraint and penalty settings."""
    flags = [
        f"model.arch={s.arch}",
        f"data.batch_size={s.batch}",
        f"optim.n_dis={s.n_dis}",
        "loss.name=hinge",  # an override may change it
        f"device={s.device}",
        f"seed={s.seed}",
        # the steps' own autocast (and fp16's GradScaler) at the benched precision: the config's default,
        # auto, would otherwise run the steps in bf16 on a CPU that computes it, whatever --precision says
        f"train.precision={s.precision}",
    ]
    return load_config(None, [*flags, *s.overrides, *BENCH_METHODS.get(method).overrides])


# --- one method's nets and data --------------------------------------------------------------------------


class RandomData:
    """Stands in for the dataset where the training code reads one (build_models reads its kind, shape
    and two samples): uniform noise in [−1, 1] shaped like G's samples, `[C, H, W]` or `[2]`."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape = tuple(shape)
        self.kind = "image" if len(self.shape) == 3 else "points"
        self.channels, self.resolution = self.shape[0], self.shape[-1]

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.batch(1, torch.Generator().manual_seed(index))[0], -1

    def batch(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.rand((n, *self.shape), generator=generator) * 2 - 1  # [n, *shape]


def sample_shape(cfg: Config) -> tuple[int, ...]:
    """The shape of one of G's samples for the arch and its options, built on the meta device (no memory)."""
    with torch.device("meta"):
        return build_gan(cfg.model.arch, **cfg.model.options).G.out_shape


@dataclass
class Case:
    """One method ready to step: its training parts, a fixed real batch and the step's two RNGs."""

    method: str
    cfg: Config
    parts: StepParts
    real: torch.Tensor  # [B, ...] on the device
    z_gen: torch.Generator = field(default_factory=lambda: torch.Generator().manual_seed(1))
    aux_gen: torch.Generator = field(default_factory=lambda: torch.Generator().manual_seed(2))


def build_case(method: str, s: BenchSettings, device: torch.device) -> Case:
    cfg = method_config(method, s)
    data = RandomData(sample_shape(cfg))
    models = build_models(cfg, data, device)  # seeded by cfg.seed: every method starts from the same nets
    parts = make_step_parts(cfg, models, DistInfo(), device)  # one process: no DDP wrapper
    real = data.batch(s.batch, torch.Generator().manual_seed(s.seed)).to(device)
    return Case(method, cfg, parts, real)


# --- timing ----------------------------------------------------------------------------------------------


@dataclass
class IterationTimes:
    d_steps: list[float]  # seconds, one per D step
    g_step: float
    iteration: float  # the whole iteration, from before the first D step to after the G step
    peak_bytes: int = 0


def run_iteration(case: Case, device: torch.device, precision: Precision) -> IterationTimes:
    """`n_dis` D steps and one G step as the trainer runs them (docs/methods.md §6.1), timed."""
    p, n = case.parts, case.real.shape[0]
    G = p.G  # unwrapped: make_step_parts wraps nothing in one process
    d_times = []
    synchronize(device)
    begin = time.perf_counter()
    with precision.context(device):
        for _ in range(case.cfg.optim.n_dis):
            start = time.perf_counter()
            with torch.no_grad():
                fake = G(G.sample_z(n, generator=case.z_gen, device="cpu").to(device))
            discriminator_step(p, case.real, fake, case.aux_gen)
            synchronize(device)
            d_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        generator_step(p, G.sample_z(n, generator=case.z_gen, device="cpu").to(device))
        synchronize(device)
        end = time.perf_counter()
    return IterationTimes(d_times, end - start, end - begin)


@dataclass
class BenchResult:
    settings: BenchSettings
    device: torch.device
    memory_measures: str  # what peak_bytes means on this device
    times: dict[str, list[IterationTimes]]  # method -> one entry per repetition, at settings.precision
    # precision -> method -> entries, for each of settings.also_precisions (same repetitions)
    other_times: dict[str, dict[str, list[IterationTimes]]] = field(default_factory=dict)


def rotated(items: list, shift: int) -> list:
    shift %= len(items)
    return items[shift:] + items[:shift]


def run_bench(s: BenchSettings, progress: Callable[[str], None] | None = None) -> BenchResult:
    """Build every method, warm up, then `repeats` interleaved repetitions; each iteration is timed and its
    peak memory measured (`MEMORY_PROBES`)."""
    device = check_settings(s)  # cheap; the API may call run_bench without bench()
    precisions = (s.precision, *s.also_precisions)
    # every (precision, method) is one case of the same rotation, so a drift of machine speed falls on the
    # precisions alike too
    cases = [
        (name, build_case(method, at_precision(s, name), device))
        for name in precisions
        for method in s.methods
    ]
    probe = MEMORY_PROBES.get(device.type)(device)
    for round_index in range(s.warmup):
        for name, case in rotated(cases, round_index):
            run_iteration(case, device, PRECISIONS.get(name))
    times: dict[str, dict[str, list[IterationTimes]]] = {
        name: {m: [] for m in s.methods} for name in precisions
    }
    for repeat in range(s.repeats):
        for name, case in rotated(cases, repeat):  # each case leads once in every len(cases) repetitions
            probe.start()
            result = run_iteration(case, device, PRECISIONS.get(name))
            result.peak_bytes = probe.stop()
            times[name][case.method].append(result)
        if progress is not None:
            progress(f"repetition {repeat + 1}/{s.repeats} done")
    others = {name: times[name] for name in s.also_precisions}
    return BenchResult(s, device, probe.measures, times[s.precision], others)


# --- the command -----------------------------------------------------------------------------------------


def check_json_path(path: str | None) -> None:
    """--json: a file to write in a folder that exists, checked before minutes of timing."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"--json {path} is a directory; give a file name, e.g. {target / 'bench.json'}")
    if not target.parent.is_dir():
        raise ConfigError(f"--json {path}: {target.parent} is not an existing folder")


def cpu_model() -> str | None:
    """The CPU's model name from /proc/cpuinfo (Linux), None elsewhere."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def bench(
    s: BenchSettings, json_path: str | None = None, progress: Callable[[str], None] | None = None
) -> dict:
    """Check the settings, time every method and return the summary (`bench_report.summarize`), also
    written to `json_path` when given."""
    check_json_path(json_path)
    result = run_bench(s, progress)
    environment = environment_record(s.seed, result.device, world_size=1)
    environment["cpu"] = cpu_model()
    summary = summarize(result, environment)
    if json_path is not None:
        write_json(Path(json_path), summary)
    return summary
