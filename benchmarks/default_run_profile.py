"""Where the default run's wall time goes (`lipgan train` without a config: GraND on the digits).

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/default_run_profile.py [--json OUT] [key=value ...]

It runs `trainer.train` as `lipgan train` does (overrides such as `train.steps=2000` or `seed=1` pass through)
with `time.perf_counter` around each part of the loop, by rebinding the names `run_training` looks up in
`lipgan.training.trainer` (and two methods), then prints one row per part: total seconds, calls, ms per call,
share of the wall time. "rest of the step" is what the step costs outside the timed parts (latents, G's
no-grad forward of the fakes, learning-rate setting, the loop itself); "start-up" is everything before the
first step (imports of the package's modules, dataset, nets, run directory).
"""

from __future__ import annotations

import argparse
import functools
import json
import tempfile
import time

T0 = time.perf_counter()

from lipgan.data.stream import BatchStream  # noqa: E402
from lipgan.training import evaluation, logs, trainer  # noqa: E402
from lipgan.training.ema import GeneratorEMA  # noqa: E402

TIMES: dict[str, list[float]] = {}


def timed(name: str, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            TIMES.setdefault(name, []).append(time.perf_counter() - start)

    return wrapper


# (part, owner, attribute): owner.attribute is rebound to a timed wrapper
PARTS = [
    ("D step", trainer, "discriminator_step"),
    ("G step", trainer, "generator_step"),
    ("NaN guard", trainer, "_guard"),
    ("EMA", GeneratorEMA, "update"),
    ("data batch", BatchStream, "__next__"),
    ("log: summarize (.item syncs)", trainer, "summarize_step"),
    ("log: grad norms for the log", trainer, "_logged_grad_norms"),
    ("log: metrics.jsonl + TensorBoard", logs.MetricsLogger, "log"),
    ("probes", trainer, "cheap_probe_scalars"),
    ("sample grids", trainer, "write_samples"),
    ("checkpoints", trainer, "save"),
    ("evaluation", evaluation.Evaluator, "evaluate"),
    ("plots", trainer, "plot_run_curves"),
    ("session (dataset, nets, run dir)", trainer, "open_session"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("overrides", nargs="*", help="key=value config overrides")
    parser.add_argument("--json", help="write the table as JSON here")
    args = parser.parse_args()
    for name, owner, attribute in PARTS:
        setattr(owner, attribute, timed(name, getattr(owner, attribute)))
    steps = timed("train_one_step", trainer.train_one_step)
    trainer.train_one_step = steps
    imports = time.perf_counter() - T0
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        run_dir, result = trainer.train(None, [f"out_dir={out}", *args.overrides], progress=False)
        wall = time.perf_counter() - start + imports
        eval_record = result.get("eval", {})
    rows = {name: sum(TIMES.get(name, [])) for name, _, _ in PARTS}
    calls = {name: len(TIMES.get(name, [])) for name, _, _ in PARTS}
    in_step = ("D step", "G step", "NaN guard", "EMA", "data batch")
    rows["rest of the step"] = sum(TIMES["train_one_step"]) - sum(rows[n] for n in in_step)
    calls["rest of the step"] = len(TIMES["train_one_step"])
    rows["imports"], calls["imports"] = imports, 1
    rows["loop, other"] = wall - sum(rows.values())
    calls["loop, other"] = 1
    print(f"wall {wall:.1f} s, {len(TIMES['train_one_step'])} steps; eval: {eval_record}")
    print("| part | s | calls | ms/call | share |\n| --- | ---: | ---: | ---: | ---: |")
    for name, total in sorted(rows.items(), key=lambda item: -item[1]):
        n = max(1, calls[name])
        print(
            f"| {name} | {total:.2f} | {calls[name]} | {1000 * total / n:.2f} | {100 * total / wall:.1f}% |"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(
                {"wall_s": wall, "parts_s": rows, "calls": calls, "eval": eval_record}, handle, indent=1
            )


if __name__ == "__main__":
    main()
