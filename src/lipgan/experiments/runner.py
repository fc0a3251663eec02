"""One run of a sweep, as a worker process (local pool or Ray task) executes it.

A worker gets a picklable `RunJob`, trains (or resumes) the ordinary run directory it names with a fixed
number of torch threads, and returns what `cells.jsonl` records: status, final metrics, wall time and a
one-line error. A crash never escapes: it becomes status `failed`, and its traceback goes to the run's
`error.txt`. The NaN guard's stop (`TrainingDivergedError`) is status `diverged`, a result like any other.
"""

from __future__ import annotations

import signal
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch

from lipgan.errors import LipganError, TrainingDivergedError
from lipgan.training.config import config_from_dict
from lipgan.training.run_dir import read_jsonl

OK, DIVERGED, FAILED, INTERRUPTED, SKIPPED = "ok", "diverged", "failed", "interrupted", "skipped"
FINISHED = (OK, DIVERGED)  # statuses a rerun of the sweep skips


@dataclass(frozen=True)
class RunJob:
    """What a worker needs to execute one run."""

    index: int
    run_dir: str
    config: dict  # the resolved config, as `config_to_dict` writes it
    threads: int
    resume: bool  # continue from `run_dir/checkpoints/last.pt`


def final_record(run_dir: Path, total_steps: int) -> dict | None:
    """The evaluation of the last step in `eval.jsonl`, if the run got that far."""
    records = [r for r in read_jsonl(run_dir / "eval.jsonl") if r.get("step") == total_steps]
    return records[-1] if records else None


def _metrics(record: dict | None) -> dict:
    if record is None:
        return {}
    return {k: v for k, v in record.items() if k not in ("step", "checkpoint", "best", "source")}


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text if isinstance(err, LipganError) else f"{type(err).__name__}: {text}"


def train_job(job: RunJob) -> dict:
    """Train or resume the job's run; `status` is ok, diverged (NaN guard), failed or interrupted."""
    from lipgan.training.trainer import train

    run_dir = Path(job.run_dir)
    cfg = config_from_dict(job.config)
    total = cfg.train.steps
    if job.resume and (done := final_record(run_dir, total)) is not None:
        return {"status": OK, "metrics": _metrics(done), "wall_s": 0.0}  # finished, but never recorded
    torch.set_num_threads(job.threads)
    started = time.perf_counter()
    row: dict = {}
    try:
        if job.resume:
            _, result = train(resume=run_dir, progress=False)
        else:
            _, result = train(cfg=cfg, run_dir=run_dir, progress=False)
        if result.get("interrupted"):
            row = {"status": INTERRUPTED}
        else:
            record = result.get("eval") or final_record(run_dir, total)
            row = {"status": OK, "metrics": _metrics(record)}
    except KeyboardInterrupt:
        row = {"status": INTERRUPTED}
    except TrainingDivergedError as err:
        row = {"status": DIVERGED, "metrics": {}, "error": _one_line(err)}
    except Exception as err:  # a crashing run is recorded; the sweep goes on
        row = {"status": FAILED, "metrics": {}, "error": _one_line(err)}
        if run_dir.is_dir():
            (run_dir / "error.txt").write_text(traceback.format_exc())
    row["wall_s"] = round(time.perf_counter() - started, 3)
    return row


# The local pool's workers share one event: after Ctrl-C no queued run starts.
_STOP = None


def init_local_worker(stop_event) -> None:
    """Pool initializer: Ctrl-C reaches a worker only while it trains (the trainer then checkpoints)."""
    global _STOP
    _STOP = stop_event
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_local_job(job: RunJob) -> dict:
    if _STOP is not None and _STOP.is_set():
        return {"status": SKIPPED}
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        row = train_job(job)
    finally:
        signal.signal(signal.SIGINT, previous)
    if row.get("status") == INTERRUPTED and _STOP is not None:
        # the worker stops the queue itself: the parent, slow under load, may set the event only after
        # this worker has already taken the next job, which would then train on with nobody to stop it
        _STOP.set()
    return row
