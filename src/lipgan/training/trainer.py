"""The training loop: a thin loop over the typed config.

Each generator step runs `n_dis` discriminator updates (steps.py), one generator update, the EMA update, then
logging, samples, checkpoints and evaluation at their intervals. Checkpoints carry every RNG state and the
data stream position, so `--resume` continues bit for bit on the same device.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from lipgan.constraints.critic import build_critic, input_grad_norm
from lipgan.data import BatchStream
from lipgan.errors import TrainingDivergedError
from lipgan.losses import get_loss
from lipgan.training import ddp
from lipgan.training.build import (
    build_dataset,
    build_models,
    build_optimizer,
    check_fits_data,
    lr_factor,
    resolve_device,
    set_lr,
)
from lipgan.training.checkpoint import (
    load_checkpoint,
    load_state,
    remove_stale_temporaries,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from lipgan.training.config import Config, dump_config, load_config
from lipgan.training.ema import GeneratorEMA
from lipgan.training.evaluation import Evaluator
from lipgan.training.guard import all_finite, first_nonfinite, module_is_finite, state_tensors
from lipgan.training.interrupt import GracefulStop
from lipgan.training.logs import SAMPLE_WRITERS, MetricsLogger, reference_points, summarize_step
from lipgan.training.probes import cheap_probe_scalars
from lipgan.training.run_dir import (
    create_run_dir,
    environment_record,
    new_run_dir,
    require_writable,
    truncate_jsonl,
    write_json,
)
from lipgan.training.steps import (
    StepParts,
    active_regularizers,
    discriminator_step,
    generator_step,
)

Z_SEED_OFFSET = 1_000_003  # separates the z stream of each rank from the data order and from the fixed grid z
AUX_SEED_OFFSET = 2_000_003


@dataclass
class Session:
    """Everything a running training holds."""

    cfg: Config
    run_dir: Path
    device: torch.device
    info: ddp.DistInfo
    dataset: object
    parts: StepParts
    ema: GeneratorEMA | None
    stream: BatchStream
    z_gen: torch.Generator
    aux_gen: torch.Generator
    fixed_z: torch.Tensor
    step: int = 0
    best: float | None = None
    saved_step: int | None = None  # the step of checkpoints/last.pt on disk (None: none written yet)
    resumed: bool = False


def _local_batch(cfg: Config, info: ddp.DistInfo) -> int:
    return cfg.data.batch_size // info.world_size


def make_step_parts(cfg: Config, models, info: ddp.DistInfo, device: torch.device) -> StepParts:
    """The two updates' pieces; under DDP, D's and G's gradients are averaged over ranks by the wrappers."""
    G_net = ddp.wrap(models.G, info, device)
    d_net = ddp.wrap(models.D, info, device)
    return StepParts(
        cfg=cfg,
        G=G_net,
        D=models.D,
        d_net=d_net,
        critic=build_critic(d_net, cfg.constraint),
        g_critic=build_critic(models.D, cfg.constraint),
        loss=get_loss(cfg.loss.name, cfg.loss.domain_scale),
        opt_d=build_optimizer(models.D.parameters(), cfg.optim.lr_d, cfg),
        opt_g=build_optimizer(models.G.parameters(), cfg.optim.lr_g, cfg),
        regularizers=active_regularizers(cfg),
    )


def open_session(cfg: Config, run_dir: Path | None, resume: bool, create: bool = False) -> Session:
    """Build a new run (or the run `run_dir` to resume) from the config.

    Everything that can fail on a user mistake (device, dataset, nets, the checkpoint) happens before a new
    run directory is made: `run_dir` itself when `create` is set (a sweep names it), else the next free one
    under `out_dir`."""
    info = ddp.init_distributed("cuda" if cfg.device.startswith("cuda") else "cpu")
    device = resolve_device(cfg.device, info.local_rank)
    if cfg.data.batch_size % info.world_size:
        from lipgan.errors import ConfigError

        raise ConfigError(f"data.batch_size={cfg.data.batch_size} must divide by the {info.world_size} ranks")
    dataset = build_dataset(cfg)
    check_fits_data(cfg, dataset)
    models = build_models(cfg, dataset, device)
    parts = make_step_parts(cfg, models, info, device)
    ema = GeneratorEMA(models.G, cfg.optim.ema, cfg.optim.ema_start) if cfg.optim.ema > 0 else None
    stream = BatchStream(
        dataset, cfg.data.batch_size, cfg.seed, info.rank, info.world_size, num_workers=cfg.data.num_workers
    )
    z_gen = torch.Generator().manual_seed(cfg.seed + Z_SEED_OFFSET * (info.rank + 1))
    aux_gen = torch.Generator().manual_seed(cfg.seed + AUX_SEED_OFFSET * (info.rank + 1))
    grid_gen = torch.Generator().manual_seed(cfg.seed)
    fixed_z = models.G.sample_z(cfg.train.grid_size, generator=grid_gen, device="cpu")
    if resume:
        session = Session(cfg, run_dir, device, info, dataset, parts, ema, stream, z_gen, aux_gen, fixed_z)
        torch.manual_seed(cfg.seed + info.rank)
        if info.is_main:
            require_writable(run_dir)
        remove_stale_temporaries(run_dir / "checkpoints")
        path = run_dir / "checkpoints" / "last.pt"
        restore(session, load_checkpoint(path, device), path)
        if info.is_main:  # the logs may run ahead of the checkpoint after a kill: no step appears twice
            truncate_jsonl(run_dir / "metrics.jsonl", session.step)
            truncate_jsonl(run_dir / "eval.jsonl", session.step)
        return session
    if info.is_main:
        run_dir = create_run_dir(Path(run_dir)) if create else new_run_dir(cfg.out_dir, cfg.name)
    run_dir = ddp.broadcast_object(run_dir, info)
    try:
        if info.is_main:
            (run_dir / "config.yaml").write_text(dump_config(cfg))
            write_json(run_dir / "env.json", environment_record(cfg.seed, device, info.world_size))
    except KeyboardInterrupt:  # Ctrl-C during start-up leaves no half-made run behind
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    session = Session(cfg, run_dir, device, info, dataset, parts, ema, stream, z_gen, aux_gen, fixed_z)
    torch.manual_seed(cfg.seed + info.rank)
    return session


def checkpoint_state(s: Session) -> dict:
    p = s.parts
    return {
        "step": s.step,
        "best": s.best,
        "G": ddp.unwrap(p.G).state_dict(),
        "D": p.D.state_dict(),
        "opt_g": p.opt_g.state_dict(),
        "opt_d": p.opt_d.state_dict(),
        "ema": s.ema.state_dict() if s.ema is not None else None,
        "stream": s.stream.state_dict(),
        "z_gen": s.z_gen.get_state(),
        "aux_gen": s.aux_gen.get_state(),
        "rng": rng_state(s.device),
    }


def restore(s: Session, state: dict, path: Path) -> None:
    p = s.parts
    load_state(ddp.unwrap(p.G), state["G"], "G", path)
    load_state(p.D, state["D"], "D", path)
    load_state(p.opt_g, state["opt_g"], "G's optimizer", path)
    load_state(p.opt_d, state["opt_d"], "D's optimizer", path)
    if s.ema is not None and state["ema"] is not None:
        load_state(s.ema, state["ema"], "the EMA", path)
    s.stream.load_state_dict(state["stream"])
    s.z_gen.set_state(state["z_gen"])
    s.aux_gen.set_state(state["aux_gen"])
    set_rng_state(state["rng"], s.device)
    s.step = int(state["step"])
    s.best = state["best"]
    s.saved_step = s.step
    s.resumed = True


def save(s: Session, name: str = "last") -> Path:
    """Write the checkpoint `name`; a state with a NaN or inf anywhere in the nets is never written."""
    path = s.run_dir / "checkpoints" / f"{name}.pt"
    nets = [ddp.unwrap(s.parts.G), s.parts.D] + ([s.ema.model] if s.ema is not None else [])
    if not all(module_is_finite(net) for net in nets):
        raise TrainingDivergedError(f"step {s.step}: the nets hold non-finite values; {_kept_checkpoint(s)}")
    if s.info.is_main:
        save_checkpoint(checkpoint_state(s), path)
        if name == "last":
            s.saved_step = s.step
    return path


def _kept_checkpoint(s: Session) -> str:
    if s.saved_step is None:
        return "no checkpoint had been saved yet"
    return f"the last good checkpoint is {s.run_dir / 'checkpoints' / 'last.pt'} (step {s.saved_step})"


def sample_generator(s: Session) -> torch.nn.Module:
    """The generator used for samples and evaluation: the EMA copy when there is one."""
    return s.ema.model if s.ema is not None else ddp.unwrap(s.parts.G)


def write_samples(s: Session) -> Path:
    G = sample_generator(s)
    was_training = G.training
    G.eval()
    with torch.no_grad():
        fake = G(s.fixed_z.to(s.device))
    G.train(was_training)
    path = s.run_dir / "samples" / f"step_{s.step:07d}"
    return SAMPLE_WRITERS.get(s.dataset.kind)(
        fake, reference_points(s.dataset), path, f"{s.cfg.name}, step {s.step}"
    )


def _guard(s: Session, net: torch.nn.Module, losses: dict[str, torch.Tensor], what: str) -> None:
    """The NaN guard after one update: the losses and the updated net, in one fused check."""
    if all_finite(state_tensors(net), losses.values()):
        return
    bad = first_nonfinite(losses) or f"{what}'s weights"
    raise TrainingDivergedError(
        f"step {s.step + 1}: {bad} became non-finite in {what}'s update; training stopped, "
        f"{_kept_checkpoint(s)}"
    )


def train_one_step(s: Session) -> dict[str, torch.Tensor]:
    """`n_dis` D updates and one G update (one generator step)."""
    cfg, p = s.cfg, s.parts
    factor = lr_factor(cfg, s.step)
    set_lr(p.opt_g, cfg.optim.lr_g * factor)
    set_lr(p.opt_d, cfg.optim.lr_d * factor)
    local = _local_batch(cfg, s.info)
    G_plain = ddp.unwrap(p.G)
    for _ in range(cfg.optim.n_dis):
        real = next(s.stream)[0].to(s.device)
        with torch.no_grad():
            fake = G_plain(G_plain.sample_z(local, generator=s.z_gen, device="cpu").to(s.device))
        stats = discriminator_step(p, real, fake, s.aux_gen)
        _guard(s, p.D, {"d_loss": stats["d_loss"], "d_total": stats["d_total"]}, "D")
    stats["real"], stats["fake"] = real, fake
    stats.update(generator_step(p, G_plain.sample_z(local, generator=s.z_gen, device="cpu").to(s.device)))
    _guard(s, G_plain, {"g_loss": stats["g_loss"]}, "G")
    s.step += 1
    if s.ema is not None:
        s.ema.update(G_plain, s.step)
    return stats


def _due(every: int, step: int, total: int) -> bool:
    return every > 0 and (step % every == 0 or step == total)


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
    evaluator = Evaluator(s) if s.info.is_main else None
    target = cfg.train.steps if stop_after is None else min(cfg.train.steps, s.step + stop_after)
    show = progress and s.info.is_main
    bar = tqdm(total=cfg.train.steps, initial=s.step, desc=cfg.name, disable=not show, unit="step")
    started, first_step = time.perf_counter(), s.step
    try:  # the bar is closed before any message, so an error never shares its line
        if evaluator is not None and s.resumed and _eval_skipped(s, evaluator):
            evaluator.evaluate_and_track()  # the interruption came between the checkpoint and this eval
        while s.step < target and not ddp.any_rank(stop.requested, s.info, s.device):
            stats = train_one_step(s)
            real, fake = stats.pop("real"), stats.pop("fake")
            bar.update(1)
            if logger is not None and _due(cfg.train.log_every, s.step, cfg.train.steps):
                if "n_real" not in stats:
                    stats["n_real"], stats["n_fake"] = _logged_grad_norms(s, real, fake)
                scalars = summarize_step(
                    stats, s.parts.opt_g.param_groups[0]["lr"], s.parts.opt_d.param_groups[0]["lr"]
                )
                scalars["sec_per_step"] = (time.perf_counter() - started) / max(1, s.step - first_step)
                logger.log(s.step, scalars)
                bar.set_postfix(d_loss=f"{scalars['d_loss']:.3g}", g_loss=f"{scalars['g_loss']:.3g}")
            if logger is not None and cfg.train.probe_every and s.step % cfg.train.probe_every == 0:
                logger.log(s.step, cheap_probe_scalars(s.parts.D, s.parts.g_critic, s.parts.loss, real, fake))
            if s.info.is_main and _due(cfg.train.sample_every, s.step, cfg.train.steps):
                write_samples(s)
            if _due(cfg.train.ckpt_every, s.step, cfg.train.steps):
                save(s)
            if evaluator is not None and cfg.train.eval_every and s.step % cfg.train.eval_every == 0:
                evaluator.evaluate_and_track()
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
            result["eval"] = evaluator.record_at(s.step) or evaluator.evaluate_and_track()
        if cfg.train.plots:
            evaluator.plot_curves()
    ddp.barrier(s.info)
    return result


def _logged_grad_norms(
    s: Session, real: torch.Tensor, fake: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """`||∇ₓ f||` at the last D batch for constraints that do not compute it. D runs in eval mode so that
    logging never advances the spectral power iteration (the trajectory does not depend on log_every)."""
    D = s.parts.D
    was_training = D.training
    D.eval()
    n = input_grad_norm(D, torch.cat([real, fake]))
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
