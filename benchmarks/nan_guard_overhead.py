"""The cost of the NaN guard on the default run (GraND on the digits, `lipgan train` without a config).

    python benchmarks/nan_guard_overhead.py --rounds 10 --steps 20

One session of the default config trains with the guard on and with `trainer._guard` replaced by a no-op,
in alternating blocks of `steps` generator steps for `rounds` rounds in ABBA order, so that machine noise
hits both arms alike. Both arms continue the same run. It prints the median time per generator step of
each arm and the guard's share of a step; the guard itself is timed alone too, on the session's nets, as a
cross-check.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from lipgan.training import ddp, trainer
from lipgan.training.config import load_config
from lipgan.training.guard import all_finite, state_tensors
from lipgan.training.session import open_session


def time_block(session, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_one_step(session)
    return (time.perf_counter() - start) / steps


def time_guard_alone(session, repeats: int = 200) -> float:
    """One D check and one G check, as a step with n_dis = 1 makes them."""
    p = session.parts
    loss = torch.tensor(0.5)
    start = time.perf_counter()
    for _ in range(repeats):
        all_finite(state_tensors(p.D), [loss, loss])
        all_finite(state_tensors(ddp.unwrap(p.G)), [loss])
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20, help="generator steps per block")
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        cfg = load_config(None, [f"out_dir={out}"])
        session = open_session(cfg, None, resume=False)
        guard = trainer._guard
        time_block(session, args.warmup)
        on, off = [], []
        for i in range(args.rounds):  # ABBA order: a drift in machine speed favours neither arm
            for arm in ("on", "off") if i % 2 == 0 else ("off", "on"):
                trainer._guard = guard if arm == "on" else (lambda *a, **k: None)
                (on if arm == "on" else off).append(time_block(session, args.steps))
        trainer._guard = guard
        alone = time_guard_alone(session)
    t_on, t_off = statistics.median(on), statistics.median(off)
    print(
        f"default run ({cfg.model.arch}, batch {cfg.data.batch_size}, n_dis {cfg.optim.n_dis}), "
        f"{torch.get_num_threads()} threads, median of {args.rounds} blocks of {args.steps} steps"
    )
    print(f"step with the guard:    {t_on * 1e3:8.3f} ms")
    print(f"step without the guard: {t_off * 1e3:8.3f} ms")
    print(f"overhead (with/without - 1): {100 * (t_on / t_off - 1):+.2f}%")
    print(f"guard alone per step:   {alone * 1e3:8.3f} ms = {100 * alone / t_off:.2f}% of a step")


if __name__ == "__main__":
    main()
