"""Where a sweep's runs execute: a local pool of worker processes, or tasks on a Ray cluster.

A backend is set up first (so that a missing Ray or an unreachable cluster is one line before any progress
bar), then its runner takes the list of `RunJob`s and calls `on_result(job, row)` in the parent as each run
ends, so that `cells.jsonl` grows as the sweep goes. A runner returns True when Ctrl-C stopped the sweep:
every run that was training got the interrupt, checkpointed and will resume on the next invocation; queued
runs never start.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, CancelledError, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from lipgan.errors import ConfigError
from lipgan.experiments.runner import FAILED, INTERRUPTED, RunJob, init_local_worker, run_local_job, train_job
from lipgan.registry import Registry

OnResult = Callable[[RunJob, dict], None]
Runner = Callable[[Sequence[RunJob], OnResult], bool]
BACKENDS: Registry[Callable[..., Runner]] = Registry("sweep backend")


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_per_worker(workers: int) -> int:
    """cores / workers torch threads each, so that the workers never oversubscribe the CPU."""
    return max(1, available_cores() // workers)


@BACKENDS.register("local")
def local_backend(workers: int, **_) -> Runner:
    """A pool of `workers` spawned processes (a fresh interpreter each: no forked torch thread pools)."""
    return lambda jobs, on_result: run_local(jobs, on_result, workers)


def run_local(jobs: Sequence[RunJob], on_result: OnResult, workers: int) -> bool:
    """Run the jobs on the pool; Ctrl-C stops the queue and waits for the running runs' checkpoints.

    Ctrl-C is a flag set by a handler and read between waits, not a KeyboardInterrupt: the kernel may
    deliver the signal to any thread of this process, and Python then raises it in the main thread only when
    that thread next wakes, anywhere in the loop, where it could be swallowed or leave a job unreported."""
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=init_local_worker, initargs=(stop,))
    futures = {pool.submit(run_local_job, job): job for job in jobs}
    requested: list[int] = []
    in_main_thread = threading.current_thread() is threading.main_thread()  # signal.signal needs it
    previous = None
    if in_main_thread:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: requested.append(signum))
    try:
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            for future in done:
                if not future.cancelled():
                    on_result(futures[future], _local_row(future))
            if requested and not stop.is_set():
                stop.set()  # queued runs never start; the running ones got the signal and checkpoint
                for future in pending:
                    future.cancel()
    finally:
        if in_main_thread:
            signal.signal(signal.SIGINT, previous)
        pool.shutdown(wait=True, cancel_futures=True)
    return bool(requested)


POLL_SECONDS = 0.2


def _local_row(future) -> dict:
    try:
        return future.result()
    except CancelledError:
        return {"status": INTERRUPTED}
    except BrokenProcessPool as err:
        return {"status": FAILED, "metrics": {}, "error": f"the worker process died: {err}"}


RAY_MISSING = "--backend ray needs Ray, an optional extra: pip install 'lipgan[ray]'"


@BACKENDS.register("ray")
def ray_backend(
    workers: int, address: str | None = None, cpus_per_run: int = 1, gpus_per_run: float = 0.0, **_
) -> Runner:
    """Each run is one Ray task needing `cpus_per_run` CPUs (and `gpus_per_run` GPUs) on the cluster at
    `address` (`auto`, `ray://host:port`, or `local` for a new instance of `workers` CPUs here). The sweep
    directory must be on a path every node shares. An already initialised Ray is used as it is."""
    try:
        import ray
    except ImportError:
        raise ConfigError(RAY_MISSING) from None
    started_here = not ray.is_initialized()
    if started_here:
        try:
            if address == "local":
                ray.init(num_cpus=workers * cpus_per_run, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=address or "auto", log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise ConfigError(f"cannot reach the Ray cluster at {address or 'auto'}: {err}") from None
    task = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=0)(train_job)
    return lambda jobs, on_result: run_ray(ray, task, jobs, on_result, shutdown=started_here)


def run_ray(ray, task, jobs: Sequence[RunJob], on_result: OnResult, shutdown: bool) -> bool:
    refs = {task.remote(job): job for job in jobs}
    pending = list(refs)
    interrupted = False
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            on_result(refs[done[0]], _ray_row(ray, done[0]))
    except KeyboardInterrupt:
        interrupted = True
        for ref in pending:
            ray.cancel(ref)  # a running task gets KeyboardInterrupt, so the trainer checkpoints
        for ref in pending:
            row = _ray_row(ray, ref)
            if row["status"] != FAILED:
                on_result(refs[ref], row)
    finally:
        if shutdown:
            ray.shutdown()
    return interrupted


def _ray_row(ray, ref) -> dict:
    try:
        return ray.get(ref)
    except ray.exceptions.TaskCancelledError:
        return {"status": INTERRUPTED}
    except ray.exceptions.RayError as err:
        return {"status": FAILED, "metrics": {}, "error": " ".join(str(err).split())[:300]}
