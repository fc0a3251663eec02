"""The commands that run many things or describe them: `lipgan sweep`, `lipgan configs`, `lipgan bench`."""

from __future__ import annotations

import argparse
import sys

from lipgan.cli.common import split_train_args
from lipgan.errors import ConfigError
from lipgan.training.config import SHIPPED_CONFIGS, find_config


def cmd_sweep(args: argparse.Namespace) -> int:
    from lipgan.experiments.sweep import SweepOptions, retable, run_sweep

    if args.table:
        if args.items:
            raise ConfigError(
                "--table SWEEP_DIR re-aggregates a sweep; give no grid file or overrides with it"
            )
        for path in retable(args.table):
            print(path)
        return 0
    if not args.items:
        raise ConfigError(
            "give a grid file (e.g. sweeps/embedded/lipreg_table2, see lipgan configs) or --table DIR"
        )
    grid, overrides = split_train_args(args.items)
    if grid is None:
        raise ConfigError("the first argument must be the grid file, before any key=value override")
    options = SweepOptions(
        workers=args.workers,
        backend=args.backend,
        address=args.address,
        threads=args.threads,
        gpus_per_run=args.gpus_per_run,
        retry_failed=args.retry_failed,
        dry_run=args.dry_run,
        sweeps_dir=args.sweeps_dir,
        sweep_dir=args.dir,
    )
    sweep_dir, counts = run_sweep(find_config(grid), overrides, options)
    if args.dry_run:
        return 0
    print(f"sweep directory: {sweep_dir}")
    print(f"table:           {sweep_dir / 'table.md'}")
    print(
        f"runs: {counts['ok']} ok, {counts['diverged']} diverged, {counts['failed']} failed this time; "
        f"{counts['done']} already done, {counts['failed_kept']} failed earlier (--retry-failed reruns them)"
    )
    if counts["interrupted"]:
        print(
            "interrupted: every run that was training saved a checkpoint; rerun the same command to continue"
        )
        return 130
    return 1 if counts["failed"] or counts["failed_kept"] else 0


def cmd_configs(args: argparse.Namespace) -> int:
    from lipgan.training.catalog import format_table, matching, shipped_configs

    configs = matching(shipped_configs(), args.pattern)
    if not configs:
        raise ConfigError(f"no shipped config matches {args.pattern!r} (lipgan configs lists them all)")
    print(format_table(configs))
    print(
        f"# {len(configs)} configs in {SHIPPED_CONFIGS}: give the name to lipgan train (use train) or "
        "lipgan sweep (use sweep)",
        file=sys.stderr,
    )
    return 0


def _names_and_overrides(items: list[str]) -> tuple[list[str], list[str]]:
    """A flag's values split into names and the `key=value` overrides argparse gave it."""
    return [item for item in items if "=" not in item], [item for item in items if "=" in item]


def cmd_bench(args: argparse.Namespace) -> int:
    from lipgan.experiments.bench import BenchSettings, bench
    from lipgan.experiments.bench_methods import DEFAULT_METHODS
    from lipgan.experiments.bench_report import format_report
    from lipgan.training.precision import PRECISIONS

    # `--methods a b key=value` (or `--precision ...`): argparse gives the override to the flag; no method
    # or precision name holds "="
    methods, after_methods = _names_and_overrides(args.methods or [])
    precisions, after_precisions = _names_and_overrides(args.precision)
    methods = methods if args.methods else list(DEFAULT_METHODS)  # `--methods key=value` alone is an error
    overrides = [*args.overrides, *after_methods, *after_precisions]
    if not precisions:
        raise ConfigError(
            f"--precision needs at least one of {', '.join(PRECISIONS.names())} before any key=value"
        )
    settings = BenchSettings(
        arch=args.arch,
        batch=args.batch,
        n_dis=args.n_dis,
        methods=tuple(methods),
        precision=precisions[0],
        also_precisions=tuple(precisions[1:]),
        device=args.device,
        repeats=args.repeats,
        warmup=args.warmup,
        overrides=tuple(overrides),
    )
    summary = bench(settings, args.json, progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(format_report(summary))
    if args.json:
        print(f"json: {args.json}")
    return 0


def add_experiment_commands(sub) -> None:
    """The subparsers of sweep, configs and bench."""
    p = sub.add_parser(
        "sweep",
        help="run a grid of configs × seeds and write the paper-style table (resumable)",
        description="Run every cell × seed of a grid file as an ordinary run under "
        "sweeps/<00000>-<name>/runs/"
        ", then write cells.jsonl, table.md, table.csv and plots/. Running the same command again continues "
        "the sweep: finished runs are skipped and interrupted ones resume from their checkpoint. Overrides "
        "(key=value) apply to every run.",
    )
    p.add_argument(
        "items",
        nargs="*",
        metavar="GRID.yaml [key=value]",
        help="grid file (a path, or a name from lipgan configs) and overrides",
    )
    p.add_argument("--workers", type=int, default=1, help="runs at a time (default 1)")
    p.add_argument("--backend", default="local", help="local (a process pool, default) or ray")
    p.add_argument(
        "--address", help="Ray cluster: auto (default), ray://HOST:PORT, or local for a new instance"
    )
    p.add_argument(
        "--threads", type=int, help="torch threads per run (default: cores / workers locally, 1 on Ray)"
    )
    p.add_argument("--gpus-per-run", type=float, default=0.0, help="GPUs each Ray task asks for (default 0)")
    p.add_argument("--dry-run", action="store_true", help="list the cells and runs, and train nothing")
    p.add_argument("--retry-failed", action="store_true", help="run the failed runs again")
    p.add_argument("--table", metavar="SWEEP_DIR", help="re-aggregate a sweep directory without training")
    p.add_argument(
        "--dir", metavar="SWEEP_DIR", help="use this sweep directory (default: sweeps/<00000>-<name>)"
    )
    p.add_argument("--sweeps-dir", default="sweeps", help="where new sweep directories go (default sweeps)")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser(
        "configs",
        help="list the shipped configs with their paper, table and reported numbers",
        description="List the configs that ship with lipgan, read from each file's header: the paper, the "
        "table or figure it reproduces and the numbers the paper reports ('-' where there are none). Give a "
        "name to `lipgan train NAME` (use: train) or `lipgan sweep NAME` (use: sweep); copy a file from "
        f"{SHIPPED_CONFIGS} to change it.",
    )
    p.add_argument("pattern", nargs="?", help="show only the configs whose name or paper holds this text")
    p.set_defaults(func=cmd_configs)

    from lipgan.experiments.bench_methods import BENCH_METHODS, CANDIDATES, DEFAULT_METHODS  # no torch

    methods = "; ".join(f"{name}: {BENCH_METHODS.get(name).summary}" for name in DEFAULT_METHODS)
    candidates = "; ".join(f"{name}: {BENCH_METHODS.get(name).summary}" for name in CANDIDATES)
    p = sub.add_parser(
        "bench",
        help="time the D step, G step and iteration of every method, with peak memory",
        description="Time one training iteration (--n-dis D steps, then one G step) of each method, built "
        "from the training config as `lipgan train` builds it, on random data shaped like the arch's "
        "samples. Each repetition runs every method once, in an order rotated between repetitions, after "
        "--warmup untimed rounds. Prints, per precision, two tables, of the medians and of the minima over "
        "the repetitions (other work on the machine only adds time): each method's times, its time over "
        "vanilla's and official-gn's time over the method's (official-gn: GN with the double backward in "
        "the D and the G step, as the official GNGAN code; gn, gran, pgn skip it in the G step, "
        "docs/methods.md §2.8, and take the tangent D step of §2.11), and the peak memory of an "
        "iteration: on CUDA torch.cuda.max_memory_allocated above what was allocated before it, on CPU the "
        "peak resident memory above the resident memory before it (a lower bound). With several "
        "precisions (timed in the same repetitions) a last table gives each method's speed-up over the "
        "first. "
        "Not timed: the NaN guard, the EMA, logging, data loading. Every method uses the hinge loss and "
        f"Adam. Methods (§: docs/methods.md): {methods}. Timed only when --methods names them: {candidates}.",
    )
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="config settings for every method, e.g. model.options={width: 0.5} or "
        "model.options={resolution: 48} (the samples take G's shape); not the keys the flags or the "
        "methods set",
    )
    p.add_argument("--arch", default="sngan-cnn", help="architecture (default sngan-cnn, 3×32×32 samples)")
    p.add_argument("--batch", type=int, default=64, help="batch size of reals and of fakes (default 64)")
    p.add_argument("--n-dis", type=int, default=1, help="D steps per iteration (default 1)")
    p.add_argument(
        "--methods", nargs="+", metavar="METHOD", help="methods to time, in this order (default: all ten)"
    )
    p.add_argument(
        "--precision",
        nargs="+",
        default=["fp32"],
        metavar="PRECISION",
        help="fp32 (default), bf16 or fp16 (CUDA only, with the training steps' GradScalers): the iteration "
        "as train.precision runs it. Several (e.g. fp32 bf16) are timed in the same interleaved "
        "repetitions, with a table of each method's speed-up over the first",
    )
    p.add_argument("--device", default="auto", help="auto (default: cuda if present), cpu, cuda or cuda:N")
    p.add_argument("--repeats", type=int, default=10, help="timed repetitions of every method (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds before them (default 2)")
    p.add_argument(
        "--json", metavar="FILE", help="also write every median, minimum, ratio and sample as JSON"
    )
    p.set_defaults(func=cmd_bench)
