"""Running probes by kind on a context, and building a context from a loaded run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from lipgan.analysis.base import PROBES, write_json
from lipgan.analysis.context import ProbeContext
from lipgan.errors import ConfigError

ALL_KINDS = "all"


def applicable_probes(ctx: ProbeContext) -> list[str]:
    """The probe kinds that make sense for this context (what ``--kind all`` runs)."""
    return [kind for kind in PROBES if PROBES.get(kind).applies(ctx)]


def run_probe(kind: str, ctx: ProbeContext) -> dict:
    """Run one probe, write ``<out_dir>/<kind>.json`` (its plot goes to ``<out_dir>/plots/<kind>.png``) and
    return its record. Raises ConfigError for an unknown kind or one that does not apply to the run."""
    probe = PROBES.get(kind)
    if not probe.applies(ctx):
        raise ConfigError(
            f"probe {kind!r} does not apply to this run; applicable: {', '.join(applicable_probes(ctx))}"
        )
    record = probe(ctx)
    write_json(Path(ctx.out_dir) / f"{kind}.json", {"kind": kind, "figure": probe.figure, **record})
    return record


def run_probe_kinds(kinds: str | list[str], ctx: ProbeContext) -> dict[str, dict]:
    """Run one kind, a list of kinds, or ``"all"`` that apply, in order; ``{kind: record}``."""
    if kinds == ALL_KINDS:
        selected = applicable_probes(ctx)
    else:
        selected = [kinds] if isinstance(kinds, str) else list(kinds)
    for kind in selected:
        PROBES.get(kind)  # fail on an unknown kind before any work
    return {kind: run_probe(kind, ctx) for kind in selected}


def draw_samples(run, n_samples: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_samples`` reals drawn without replacement from the run's dataset and as many fakes from its
    (EMA) generator, both seeded by ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    n = min(n_samples, len(run.dataset))
    indices = torch.randperm(len(run.dataset), generator=generator)[:n]
    real = torch.stack([torch.as_tensor(run.dataset[int(i)][0]) for i in indices]).to(run.device)
    with torch.no_grad():
        z = run.G.sample_z(n, generator=generator, device=torch.device("cpu")).to(run.device)
        fake = run.G(z)
    parameter = next(run.D.parameters())
    return real.to(parameter.dtype), fake.to(parameter.dtype)


def context_from_run(run, out_dir: str | Path, n_samples: int = 256, seed: int = 0) -> ProbeContext:
    """A context from ``lipgan.training.load_run(...)``'s result: its D, critic, loss, generator and config,
    ``n_samples`` reals and fakes, and the run's ``metrics.jsonl``."""
    from lipgan.nets.base import class_count
    from lipgan.training.build import arch_kwargs

    if class_count(run.G):  # every probe calls D(x); a conditional D needs each sample's label too
        raise ConfigError(f"{run.run_dir} is a class-conditional run; the analyses take unconditional ones")
    real, fake = draw_samples(run, n_samples, seed)
    return ProbeContext(
        D=run.D,
        critic=run.critic,
        real=real,
        fake=fake,
        loss=run.loss,
        out_dir=Path(out_dir),
        G=run.G,
        arch=run.cfg.model.arch,
        arch_kwargs=arch_kwargs(run.cfg, run.dataset),
        constraint=dataclasses.asdict(run.cfg.constraint),
        metrics_path=Path(run.run_dir) / "metrics.jsonl",
        is_points=run.dataset.kind == "points",
        step=run.step,
    )
