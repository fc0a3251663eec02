"""The training loop: a thin loop over the typed config.

Each generator step runs `n_dis` discriminator updates (steps.py), one generator update, the NaN guard after
each, the EMA update, then logging, samples, checkpoints and evaluation at their intervals. The run's state
and its checkpoints live in session.py; SIGINT and SIGTERM stop the loop between steps (interrupt.py).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from lipgan.constraints.critic import input_grad_norm, to_fp32, with_labels
from lipgan.errors import TrainingDivergedError
from lipgan.training import ddp
from lipgan.training.build import lr_factor, set_lr
from lipgan.training.checkpoint import copy_checkpoint
from lipgan.training.config import Config, load_config
from lipgan.training.evaluation import Evaluator, plot_run_curves
from lipgan.training.guard import all_finite, first_nonfinite, state_tensors
from lipgan.training.interrupt import GracefulStop
from lipgan.training.logs import MetricsLogger, summarize_step
from lipgan.training.probes import cheap_probe_scalars
from lipgan.training.session import (
    Session,
    kept_checkpoint,
    local_batch,
    open_session,
    sample_generator,
    save,
    write_samples,
)
from lipgan.training.steps import discriminator_step, generator_step


def _guard(
    s: Session, net: torch.nn.Module, losses: dict[str, torch.Tensor], what: str, skipped: bool = False
) -> None:
    """The NaN guard after one update: the losses and the updated net, in one fused check. An update that
    fp16's GradScaler skipped (its gradients overflowed, the scale is halved) may have non-finite losses
    and left the weights as they were; only the weights are checked then."""
    if all_finite(state_tensors(net), [] if skipped else losses.values()):
        return
    bad = first_nonfinite(losses) or f"{what}'s weights"
    raise TrainingDivergedError(
        f"step {s.step + 1}: {bad} became non-finite in {what}'s update; training stopped, "
        f"{kept_checkpoint(s)}"
    )


def train_one_step(s: Session) -> dict[str, torch.Tensor]:
    """`n_dis` D updates and one G update (one generator step)."""
    cfg, p = s.cfg, s.parts
    factor = lr_factor(cfg, s.step)
    set_lr(p.opt_g, cfg.optim.lr_g * factor)
    set_lr(p.opt_d, cfg.optim.lr_d * factor)
    local = local_batch(cfg, s.info)
    G_plain = ddp.unwrap(p.G)
    for _ in range(cfg.optim.n_dis):
        batch = next(s.stream)
        real = batch[0].to(s.device)
        y_fake = _fake_labels(s, local)
        y_real = None if y_fake is None else batch[1].to(s.device)  # a conditional run's real labels
        # at the training precision, as the G step makes its fakes; the D step gets them in float32
        with torch.no_grad(), p.autocast():
            z = G_plain.sample_z(local, generator=s.z_gen, device="cpu").to(s.device)
            fake = to_fp32(G_plain(z) if y_fake is None else G_plain(z, y_fake))
        stats = discriminator_step(p, real, fake, s.aux_gen, y_real, y_fake)
        skipped = stats.pop("d_skipped")
        _guard(s, p.D, {"d_loss": stats["d_loss"], "d_total": stats["d_total"]}, "D", skipped)
    stats["real"], stats["fake"] = real, fake
    stats["y_real"], stats["y_fake"] = y_real, y_fake
    z = G_plain.sample_z(local, generator=s.z_gen, device="cpu").to(s.device)
    stats.update(generator_step(p, z, s.aux_gen, _fake_labels(s, local)))
    _guard(s, G_plain, {"g_loss": stats["g_loss"]}, "G", stats.pop("g_skipped"))
    s.step += 1
    if s.ema is not None:
        s.ema.update(G_plain, s.step)
    return stats


def _fake_labels(s: Session, n: int) -> torch.Tensor | None:
    """`n` uniform fake labels on the device from the run's label stream (saved in checkpoints), or None
    for an unconditional run."""
    if s.label_gen is None:
        return None
    return ddp.unwrap(s.parts.G).sample_y(n, generator=s.label_gen, device="cpu").to(s.device)


def _due(every: int, step: int, total: int) -> bool:
    return every > 0 and (step % every == 0 or step == total)


def evaluate_and_track(s: Session, evaluator: Evaluator) -> dict:
    """Evaluate the sampling generator at this step and keep `best`: when the primary metric improves,
    `last.pt` records the new value, then `best.pt` becomes a copy of it (PGN's protocol)."""
    checkpoint = save(s)
    record = evaluator.evaluate(sample_generator(s), s.step, checkpoint)
    if evaluator.improves(record, s.best):
        s.best = evaluator.primary_value(record)
        save(s)
        copy_checkpoint(checkpoint, checkpoint.with_name("best.pt"))
        record["best"] = True
    return evaluator.write(record)


def _eval_skipped(s: Session, evaluator: Evaluator) -> bool:
    """An evaluation was due at the resumed step (before the last one) but eval.jsonl has none."""
    every = s.cfg.train.eval_every
    due = every > 0 and 0 < s.step < s.cfg.train.steps and s.step % every == 0
    return due and evaluator.record_at(s.step) is None


def run_training(
    s: Session, stop_after: int | None = None, progress: bool = True, stop: GracefulStop | None = None
) -> dict:
    """Train until `train.steps` generator steps (or `stop_after` more), saving `last` on the way.

    `stop` (entered by the caller) is read between steps: a SIGINT or SIGTERM ends the loop after the
    step in progress, with a checkpoint of it."""
    cfg = s.cfg
    stop = stop if stop is not None else GracefulStop()
    purge_step = s.step + 1 if s.resumed else None
    logger = MetricsLogger(s.run_dir, purge_step) if s.info.is_main else None
    evaluator = Evaluator(cfg, s.dataset, s.device, s.run_dir) if s.info.is_main else None
    target = cfg.train.steps if stop_after is None else min(cfg.train.steps, s.step + stop_after)
    show = progress and s.info.is_main
    bar = tqdm(total=cfg.train.steps, initial=s.step, desc=cfg.name, disable=not show, unit="step")
    started, first_step = time.perf_counter(), s.step
    try:  # the bar is closed before any message, so an error never shares its line
        if evaluator is not None and s.resumed and _eval_skipped(s, evaluator):
            evaluate_and_track(s, evaluator)  # the interruption came between the checkpoint and this eval
        while s.step < target and not ddp.any_rank(stop.requested, s.info, s.device):
            stats = train_one_step(s)
            real, fake = stats.pop("real"), stats.pop("fake")
            y_real, y_fake = stats.pop("y_real"), stats.pop("y_fake")
            bar.update(1)
            if logger is not None and _due(cfg.train.log_every, s.step, cfg.train.steps):
                if "n_real" not in stats:
                    stats["n_real"], stats["n_fake"] = _logged_grad_norms(s, real, fake, y_real, y_fake)
                scalars = summarize_step(
                    stats, s.parts.opt_g.param_groups[0]["lr"], s.parts.opt_d.param_groups[0]["lr"]
                )
                scalars["sec_per_step"] = (time.perf_counter() - started) / max(1, s.step - first_step)
                logger.log(s.step, scalars)
                bar.set_postfix(d_loss=f"{scalars['d_loss']:.3g}", g_loss=f"{scalars['g_loss']:.3g}")
            if logger is not None and cfg.train.probe_every and s.step % cfg.train.probe_every == 0:
                probes = cheap_probe_scalars(
                    s.parts.D, s.parts.g_critic, s.parts.loss, real, fake, y_real, y_fake
                )
                logger.log(s.step, probes)
            if s.info.is_main and _due(cfg.train.sample_every, s.step, cfg.train.steps):
                write_samples(s)
            if _due(cfg.train.ckpt_every, s.step, cfg.train.steps):
                save(s)
            if evaluator is not None and cfg.train.eval_every and s.step % cfg.train.eval_every == 0:
                evaluate_and_track(s, evaluator)
    finally:
        bar.close()
        if logger is not None:
            logger.close()
    save(s)
    if stop.requested:
        if s.info.is_main:
            print(
                f"{stop.name} at step {s.step}: stopped after the step, checkpoint saved. "
                f"Resume with: lipgan train --resume {s.run_dir}",
                file=sys.stderr,
            )
        ddp.barrier(s.info)
        return {"interrupted": True, "step": s.step, "exit_code": stop.exit_code}
    result = {"interrupted": False, "step": s.step}
    if s.info.is_main:
        write_samples(s)
        finished = s.step >= cfg.train.steps
        if evaluator is not None and finished and cfg.train.eval_at_end:
            # an eval_every that divides steps has already evaluated the final generator
            result["eval"] = evaluator.record_at(s.step) or evaluate_and_track(s, evaluator)
        if cfg.train.plots:
            plot_run_curves(s.run_dir, cfg.name)
    ddp.barrier(s.info)
    return result


def _logged_grad_norms(
    s: Session,
    real: torch.Tensor,
    fake: torch.Tensor,
    y_real: torch.Tensor | None = None,
    y_fake: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`||∇ₓ f||` at the last D batch for constraints that do not compute it. D runs in eval mode so that
    logging never advances the spectral power iteration (the trajectory does not depend on log_every)."""
    D = s.parts.D
    was_training = D.training
    D.eval()
    labels = None if y_real is None else torch.cat([y_real, y_fake])
    n = input_grad_norm(with_labels(D, labels), torch.cat([real, fake]))
    D.train(was_training)
    return n[: real.shape[0]], n[real.shape[0] :]


def train(
    config_path: str | None = None,
    overrides: list[str] | None = None,
    resume: str | Path | None = None,
    stop_after: int | None = None,
    *,
    cfg: Config | None = None,
    run_dir: str | Path | None = None,
    progress: bool = True,
) -> tuple[Path, dict]:
    """The whole of `lipgan train`: returns the run directory and the final result.

    A sweep passes the resolved `cfg` and the `run_dir` to create (instead of the next free one under
    `out_dir`), and turns the per-run progress bar off."""
    if resume is not None:
        run_dir = Path(resume)
        cfg = load_config(run_dir / "config.yaml", overrides)
        session = open_session(cfg, run_dir, resume=True)
    else:
        cfg = cfg if cfg is not None else load_config(config_path, overrides)
        run_dir = Path(run_dir) if run_dir is not None else None
        session = open_session(cfg, run_dir, resume=False, create=run_dir is not None)
    try:
        with GracefulStop() as stop:
            result = run_training(session, stop_after, progress, stop)
        result["is_main"] = session.info.is_main
    finally:
        ddp.shutdown(session.info)
    return session.run_dir, result
