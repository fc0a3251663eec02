"""Evaluation of a generator with the metrics its data calls for, during training and by `lipgan eval`.

Each evaluation appends one line to `eval.jsonl` naming its checkpoint. During training the `best` checkpoint
follows the best FID (or `digits_fid`), PGN's protocol. Evaluation runs under a forked RNG so that it never
changes the training trajectory.
"""

from __future__ import annotations

from pathlib import Path

import torch

from lipgan.metrics import EVALUATORS, evaluator_kind
from lipgan.training.checkpoint import copy_checkpoint
from lipgan.training.config import Config
from lipgan.training.logs import plot_training_curves
from lipgan.training.run_dir import append_jsonl, read_jsonl

EVAL_SEED_OFFSET = 3_000_017


def evaluation_seed(cfg: Config) -> int:
    """The seed of z for a run's evaluations, kept apart from the training stream's seed."""
    return cfg.seed + EVAL_SEED_OFFSET


# The metric that decides the `best` checkpoint, per evaluator, and whether lower is better.
PRIMARY_METRIC = {"image": ("fid", True), "digits": ("digits_fid", True), "points": ("mode_kl", True)}


# Generated samples per evaluation when `eval.n_samples` is 0 (the image protocols carry their own counts).
DEFAULT_SAMPLES = {"points": 5000, "digits": 2000, "image": None}


def image_evaluator_options(cfg: Config, dataset, device: torch.device) -> dict:
    """Protocol, Inception weights and the real-statistics cache key (dataset, resolution) for IS/FID/KID."""
    from lipgan.metrics import PROTOCOLS
    from lipgan.training.build import build_dataset

    protocol = "quick" if cfg.eval.protocol == "auto" else cfg.eval.protocol
    splits = PROTOCOLS.get(protocol).splits()
    real = {split: build_dataset(cfg, split) for split in splits} if len(splits) > 1 else dataset
    options = {
        "protocol": protocol,
        "real": real,
        "device": device,
        "batch_size": cfg.eval.batch_size,
        "dataset_name": f"{cfg.data.name}-{dataset.resolution}",
    }
    if cfg.eval.inception_weights:
        options["weights_path"] = cfg.eval.inception_weights
    return options


EVALUATOR_OPTIONS = {
    "points": lambda cfg, dataset, device: {},
    "digits": lambda cfg, dataset, device: {},
    "image": image_evaluator_options,
}


def evaluate_generator(G: torch.nn.Module, cfg: Config, dataset, device: torch.device, seed: int) -> dict:
    """Metrics of `G` (put in eval mode) on the config's data, with z drawn from `seed`."""
    from lipgan.errors import TrainingDivergedError
    from lipgan.training.guard import module_is_finite

    if not module_is_finite(G):  # metrics of NaN images are meaningless, and an SVD on them crashes
        raise TrainingDivergedError("the generator holds NaN or inf weights; there is nothing to evaluate")
    key = evaluator_kind(dataset)
    evaluate = EVALUATORS.get(key)
    n_samples = cfg.eval.n_samples or DEFAULT_SAMPLES[key]
    options = EVALUATOR_OPTIONS[key](cfg, dataset, device)
    was_training = G.training
    G.eval()
    z_gen = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def sample_fn(n: int) -> torch.Tensor:
        return G(G.sample_z(n, generator=z_gen, device="cpu").to(device)).float()

    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        metrics = evaluate(sample_fn, dataset, n_samples, **options)
    G.train(was_training)
    return metrics


class Evaluator:
    """Evaluation during training for one session (rank 0 only)."""

    def __init__(self, session):
        self.session = session
        self.key = evaluator_kind(session.dataset)
        self.last_record: dict | None = None  # the newest eval.jsonl line this session wrote

    def evaluate_and_track(self) -> dict:
        from lipgan.training.trainer import sample_generator, save

        s = self.session
        checkpoint = save(s)
        metrics = evaluate_generator(sample_generator(s), s.cfg, s.dataset, s.device, evaluation_seed(s.cfg))
        record = {"step": s.step, "checkpoint": str(checkpoint.relative_to(s.run_dir)), **metrics}
        primary, lower_is_better = PRIMARY_METRIC[self.key]
        # protocols with several real splits name them (fid_train, fid_test): the first one decides
        value = next((v for k, v in metrics.items() if k == primary or k.startswith(primary + "_")), None)
        if value is not None and (s.best is None or (value < s.best if lower_is_better else value > s.best)):
            s.best = value
            save(s)  # `last` records the new best value, then `best` is a copy of it
            copy_checkpoint(checkpoint, checkpoint.with_name("best.pt"))
            record["best"] = True
        append_jsonl(s.run_dir / "eval.jsonl", record)
        self.last_record = record
        return record

    def record_at(self, step: int) -> dict | None:
        """The training-time evaluation of `step` (this session's, or one in eval.jsonl), if there is one."""
        if self.last_record is not None and self.last_record["step"] == step:
            return self.last_record
        records = read_jsonl(self.session.run_dir / "eval.jsonl")
        done = [r for r in records if r.get("step") == step and "source" not in r]
        return done[-1] if done else None

    def plot_curves(self) -> None:
        plot_run_curves(self.session.run_dir, self.session.cfg.name)


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
