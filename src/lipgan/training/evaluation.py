"""Evaluation of a generator with the metrics its data calls for, during training and by `lipgan eval`.

Each evaluation appends one line to `eval.jsonl` naming its checkpoint. During training the `best` checkpoint
follows the best FID (or `digits_fid`), PGN's protocol. Evaluation runs under a forked RNG so that it never
changes the training trajectory.
"""

from __future__ import annotations

from pathlib import Path

import torch

from lipgan.metrics import EVALUATORS, evaluator_kind
from lipgan.nets.base import class_count
from lipgan.training.build import build_dataset
from lipgan.training.config import Config
from lipgan.training.logs import plot_training_curves
from lipgan.training.run_dir import append_jsonl, read_jsonl

EVAL_SEED_OFFSET = 3_000_017


def evaluation_seed(cfg: Config) -> int:
    """The seed of z for a run's evaluations, kept apart from the training stream's seed."""
    return cfg.seed + EVAL_SEED_OFFSET


def evaluate_generator(G: torch.nn.Module, cfg: Config, dataset, device: torch.device, seed: int) -> dict:
    """Metrics of `G` on the config's data, with z drawn from `seed`; G samples in `eval.generator_mode`
    (eval by default) and is left as it was."""
    from lipgan.errors import TrainingDivergedError
    from lipgan.training.guard import module_is_finite

    if not module_is_finite(G):  # metrics of NaN images are meaningless, and an SVD on them crashes
        raise TrainingDivergedError("the generator holds NaN or inf weights; there is nothing to evaluate")
    spec = EVALUATORS.get(evaluator_kind(dataset))
    n_samples = cfg.eval.n_samples or spec.default_samples
    options = spec.options(cfg.eval, cfg.data.name, dataset, device, lambda split: build_dataset(cfg, split))
    was_training = G.training
    # in train mode batch norm updates its running statistics: they are put back, so that an evaluation
    # never changes the generator that training (and the EMA) continue from
    buffers = [b.detach().clone() for b in G.buffers()]
    G.train(cfg.eval.generator_mode == "train")
    z_gen = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def sample_fn(n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        z = G.sample_z(n, generator=z_gen, device="cpu").to(device)
        if not class_count(G):
            return G(z).float()
        # uniform labels after z from the same seeded stream, unless the metric asks for its own
        labels = G.sample_y(n, generator=z_gen, device="cpu") if labels is None else labels
        return G(z, labels.to(device)).float()

    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            if class_count(G) and spec.conditional is not None:
                # the same metrics on class-balanced samples, plus the per-class ones (docs/methods.md §9.8)
                metrics = spec.conditional(sample_fn, dataset, n_samples, class_count(G), **options)
            else:
                metrics = spec(sample_fn, dataset, n_samples, **options)
    finally:
        with torch.no_grad():
            for saved, b in zip(buffers, G.buffers()):
                b.copy_(saved)
        G.train(was_training)
    return metrics


class Evaluator:
    """Evaluation during training (rank 0 only). It measures and records; the trainer decides what is best.

    `evaluate(G, step, checkpoint)` returns the record of one evaluation (step, checkpoint, metrics);
    `improves(record, best)` says whether its primary metric beats `best`; `write(record)` appends it to
    eval.jsonl."""

    def __init__(self, cfg: Config, dataset, device: torch.device, run_dir: Path):
        self.cfg, self.dataset, self.device, self.run_dir = cfg, dataset, device, run_dir
        self.spec = EVALUATORS.get(evaluator_kind(dataset))
        self.last_record: dict | None = None  # the newest eval.jsonl line this session wrote

    def evaluate(self, G: torch.nn.Module, step: int, checkpoint: Path) -> dict:
        metrics = evaluate_generator(G, self.cfg, self.dataset, self.device, evaluation_seed(self.cfg))
        return {"step": step, "checkpoint": str(checkpoint.relative_to(self.run_dir)), **metrics}

    def primary_value(self, record: dict) -> float | None:
        return self.spec.primary_value(record)

    def improves(self, record: dict, best: float | None) -> bool:
        value = self.primary_value(record)
        return value is not None and self.spec.improves(value, best)

    def write(self, record: dict) -> dict:
        append_jsonl(self.run_dir / "eval.jsonl", record)
        self.last_record = record
        return record

    def record_at(self, step: int) -> dict | None:
        """The training-time evaluation of `step` (this session's, or one in eval.jsonl), if there is one."""
        if self.last_record is not None and self.last_record["step"] == step:
            return self.last_record
        records = read_jsonl(self.run_dir / "eval.jsonl")
        done = [r for r in records if r.get("step") == step and "source" not in r]
        return done[-1] if done else None


TRAINING_CURVES = [
    "d_loss",
    "g_loss",
    "grad_norm_real_mean",
    "grad_norm_fake_mean",
    "d_out_min",
    "d_out_max",
]
EVAL_CURVES = [
    "fid",
    "is_mean",
    "kid_mean",
    "digits_is",
    "digits_fid",
    "digits_cond_acc",
    "digits_intra_fid",
    "intra_fid",
    "modes_covered",
    "hq_fraction",
    "mode_kl",
]


def plot_run_curves(run_dir: Path, name: str) -> list[Path]:
    """`plots/training_curves.png` from metrics.jsonl and `plots/eval_metrics.png` from eval.jsonl."""
    written = []
    for source, keys, target, title in (
        ("metrics.jsonl", TRAINING_CURVES, "training_curves.png", f"{name}: training"),
        ("eval.jsonl", EVAL_CURVES, "eval_metrics.png", f"{name}: evaluation"),
    ):
        path = plot_training_curves(read_jsonl(run_dir / source), run_dir / "plots" / target, keys, title)
        if path is not None:
            written.append(path)
    return written
