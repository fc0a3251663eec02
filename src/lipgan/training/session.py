"""The state of one training run and its helpers: building it, checkpointing it, restoring it, sampling.

A `Session` holds everything the loop mutates (nets, optimizers, EMA, data stream, RNGs, step, best). Its
checkpoint carries every RNG state and the data stream position, so that `--resume` continues bit for bit
on the same device; nothing non-finite is ever written.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from lipgan.constraints.critic import build_critic
from lipgan.data import BatchStream
from lipgan.errors import ConfigError, TrainingDivergedError
from lipgan.losses import get_loss
from lipgan.training import ddp
from lipgan.training.augmentation import AUGMENTS
from lipgan.training.build import (
    build_dataset,
    build_models,
    build_optimizer,
    check_fits_data,
    resolve_device,
)
from lipgan.training.checkpoint import (
    load_checkpoint,
    load_state,
    remove_stale_temporaries,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from lipgan.training.config import Config, dump_config
from lipgan.training.ema import GeneratorEMA
from lipgan.training.guard import module_is_finite
from lipgan.training.logs import SAMPLE_WRITERS, reference_points
from lipgan.training.precision import PRECISIONS, autocast_for, resolve_precision
from lipgan.training.run_dir import (
    create_run_dir,
    environment_record,
    new_run_dir,
    require_writable,
    truncate_jsonl,
    write_json,
)
from lipgan.training.steps import StepParts, active_regularizers

Z_SEED_OFFSET = 1_000_003  # separates the z stream of each rank from the data order and from the fixed grid z
AUX_SEED_OFFSET = 2_000_003
LABEL_SEED_OFFSET = 4_000_037  # the fake labels of a conditional run: their own stream, so z is unchanged


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
    label_gen: torch.Generator | None = None  # fake labels of a conditional run (None when unconditional)
    fixed_y: torch.Tensor | None = None  # the grid's labels: one row per class
    step: int = 0
    best: float | None = None
    saved_step: int | None = None  # the step of checkpoints/last.pt on disk (None: none written yet)
    resumed: bool = False


def local_batch(cfg: Config, info: ddp.DistInfo) -> int:
    return cfg.data.batch_size // info.world_size


def make_step_parts(cfg: Config, models, info: ddp.DistInfo, device: torch.device) -> StepParts:
    """The two updates' pieces; under DDP, D's and G's gradients are averaged over ranks by the wrappers."""
    G_net = ddp.wrap(models.G, info, device)
    d_net = ddp.wrap(models.D, info, device)
    precision = training_precision(cfg, device)
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
        augment=AUGMENTS.get(cfg.data.augment),
        autocast=training_autocast(cfg.train.precision, device),
        scaler_d=precision.grad_scaler(device),
        scaler_g=precision.grad_scaler(device),
    )


def training_precision(cfg: Config, device: torch.device):
    """The `Precision` that `train.precision` (`auto` resolved) runs at on `device`."""
    return PRECISIONS.get(resolve_precision(cfg.train.precision, device))


def training_autocast(name: str, device: torch.device):
    """The autocast of `train.precision` on `device`, which must be able to run it."""
    try:
        return autocast_for(name, device)
    except ConfigError as err:
        raise ConfigError(f"train.precision: {str(err).removeprefix('--precision ')}") from None


def open_session(cfg: Config, run_dir: Path | None, resume: bool, create: bool = False) -> Session:
    """Build a new run (or the run `run_dir` to resume) from the config.

    Everything that can fail on a user mistake (device, dataset, nets, the checkpoint) happens before a new
    run directory is made: `run_dir` itself when `create` is set (a sweep names it), else the next free one
    under `out_dir`."""
    info = ddp.init_distributed("cuda" if cfg.device.startswith("cuda") else "cpu")
    device = resolve_device(cfg.device, info.local_rank)
    if cfg.data.batch_size % info.world_size:
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
    label_gen, fixed_y = None, None
    if models.G.conditional:
        label_gen = torch.Generator().manual_seed(cfg.seed + LABEL_SEED_OFFSET * (info.rank + 1))
        fixed_y = grid_labels(models.G.num_classes, cfg.train.grid_size)
    fixed_z = models.G.sample_z(
        cfg.train.grid_size if fixed_y is None else fixed_y.shape[0], generator=grid_gen, device="cpu"
    )
    labelled = {"label_gen": label_gen, "fixed_y": fixed_y}
    if resume:
        session = Session(
            cfg, run_dir, device, info, dataset, parts, ema, stream, z_gen, aux_gen, fixed_z, **labelled
        )
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
    session = Session(
        cfg, run_dir, device, info, dataset, parts, ema, stream, z_gen, aux_gen, fixed_z, **labelled
    )
    torch.manual_seed(cfg.seed + info.rank)
    return session


def grid_labels(num_classes: int, grid_size: int) -> torch.Tensor:
    """The fixed grid's labels of a conditional run: `grid_size // num_classes` (at least one) samples of
    each class in turn, so that the grid shows one row per class. int64 `[num_classes · per_class]`."""
    per_class = max(1, grid_size // num_classes)
    return torch.arange(num_classes).repeat_interleave(per_class)


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
        "label_gen": s.label_gen.get_state() if s.label_gen is not None else None,
        "scaler_d": p.scaler_d.state_dict(),  # empty when disabled (fp32, bf16)
        "scaler_g": p.scaler_g.state_dict(),
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
    for name in ("scaler_d", "scaler_g"):
        if getattr(p, name).is_enabled():
            if not state.get(name):
                raise ConfigError(f"{path} was not trained at fp16 and has no loss scale to resume")
            getattr(p, name).load_state_dict(state[name])
    s.stream.load_state_dict(state["stream"])
    s.z_gen.set_state(state["z_gen"])
    s.aux_gen.set_state(state["aux_gen"])
    if s.label_gen is not None:
        if state.get("label_gen") is None:
            raise ConfigError(f"{path} is the checkpoint of an unconditional run; this config is conditional")
        s.label_gen.set_state(state["label_gen"])
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
        raise TrainingDivergedError(f"step {s.step}: the nets hold non-finite values; {kept_checkpoint(s)}")
    if s.info.is_main:
        save_checkpoint(checkpoint_state(s), path)
        if name == "last":
            s.saved_step = s.step
    return path


def kept_checkpoint(s: Session) -> str:
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
        labels = () if s.fixed_y is None else (s.fixed_y.to(s.device),)
        fake = G(s.fixed_z.to(s.device), *labels)
    G.train(was_training)
    path = s.run_dir / "samples" / f"step_{s.step:07d}"
    return SAMPLE_WRITERS.get(s.dataset.kind)(
        fake, reference_points(s.dataset), path, f"{s.cfg.name}, step {s.step}", rows_of(s.fixed_y)
    )


def rows_of(labels: torch.Tensor | None) -> int | None:
    """The grid width that puts each class on its own row (labels sorted by class, equal counts), or None
    for an unconditional grid."""
    if labels is None:
        return None
    return int((labels == labels[0]).sum())
