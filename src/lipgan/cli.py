"""The `lipgan` command.

argparse (standard library) parses the commands: our config keys are free-form `key=value` overrides checked
by the typed config itself (training/config.py), so a CLI framework would add a dependency without adding a
check. User mistakes (`LipganError`) are printed on one line with exit status 2; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

from lipgan.errors import ConfigError, LipganError, is_file_system_fault, quiet_file_system_errors
from lipgan.training.config import SHIPPED_CONFIGS, find_config
from lipgan.training.validate import check_protocol, check_seed


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (and a pointer to --help), not the usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        # argparse reports leftover arguments from the top-level parser; name the command they were given to
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command = getattr(parsed, "command", None)
            prog = f"{self.prog} {command}" if command else self.prog
            self.exit(2, f"{prog}: error: unrecognized arguments: {' '.join(extras)} (see {prog} --help)\n")
        return parsed


def split_train_args(items: list[str]) -> tuple[str | None, list[str]]:
    """`[CONFIG] [key=value ...]` -> (config, overrides)."""
    config = None
    if items and "=" not in items[0]:
        config, items = items[0], items[1:]
    stray = [item for item in items if "=" not in item]
    if stray:
        raise ConfigError(f"expected key=value overrides after the config, got {stray[0]!r}")
    return config, items


def at_least(flag: str, value: int | None, low: int) -> None:
    """A count flag (None: not given) of at least `low`."""
    if value is not None and value < low:
        raise ConfigError(f"{flag} must be at least {low}, not {value}")


def check_device_flag(name: str) -> None:
    """--device: auto, cpu, cuda or cuda:N, and present on this machine."""
    from lipgan.training.build import resolve_device

    resolve_device(name, key="--device")


def check_out_path(path: str) -> None:
    """--out: a file to write in a folder that exists (the writer adds .png), not a folder itself."""
    out = Path(path)
    target = out if out.is_dir() else out.with_suffix(".png")
    if target.is_dir():
        raise ConfigError(
            f"--out {path}: {target} is a directory; give a file name, e.g. {target / 'grid.png'}"
        )
    if not out.parent.is_dir():
        raise ConfigError(f"--out {path}: {out.parent} is not an existing folder")


def cmd_train(args: argparse.Namespace) -> int:
    from lipgan.training.trainer import train

    at_least("--stop-after", args.stop_after, 1)
    config, overrides = split_train_args(args.items)
    if args.resume and config:
        raise ConfigError("give either a config or --resume RUN, not both")
    config_path = find_config(config) if config else None
    if args.resume:
        from lipgan.training.run_dir import require_run_dir

        require_run_dir(args.resume)  # a dry run answers as the resume would
    if args.dry_run:
        return dry_run(Path(args.resume) / "config.yaml" if args.resume else config_path, overrides)
    run_dir, result = train(config_path, overrides, resume=args.resume, stop_after=args.stop_after)
    if result["is_main"]:
        print_run_summary(run_dir, result)
    return result.get("exit_code", 0)


def dry_run(config_path: Path | None, overrides: list[str]) -> int:
    """Print the resolved config; check the architecture options by building the nets on the meta device."""
    from lipgan.training.build import count_architecture_parameters
    from lipgan.training.config import dump_config, load_config

    cfg = load_config(config_path, overrides)
    counts = count_architecture_parameters(cfg)
    print(dump_config(cfg), end="")
    if counts is None:
        print(f"# {cfg.data.name} files not found: architecture options not checked", file=sys.stderr)
    else:
        print(f"# {cfg.model.arch}: G {counts[0]:,} parameters, D {counts[1]:,}", file=sys.stderr)
    return 0


def print_run_summary(run_dir: Path, result: dict) -> None:
    samples = sorted((run_dir / "samples").glob("*.png"))
    plots = sorted((run_dir / "plots").glob("*.png"))
    print(f"run directory: {run_dir}")
    if samples:
        print(f"samples:       {samples[-1]}")
    for plot in plots:
        print(f"plot:          {plot}")
    print(f"checkpoint:    {run_dir / 'checkpoints' / 'last.pt'}")
    if "eval" in result:
        shown = {k: v for k, v in result["eval"].items() if k not in ("checkpoint", "best")}
        print("evaluation:    " + ", ".join(f"{k}={_fmt(v)}" for k, v in shown.items()))


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def cmd_sample(args: argparse.Namespace) -> int:
    import torch

    from lipgan.training.load import load_run
    from lipgan.training.logs import SAMPLE_WRITERS, reference_points

    at_least("--n", args.n, 1)
    check_seed(args.seed, "--seed")
    check_device_flag(args.device)
    if args.out:
        check_out_path(args.out)
    run = load_run(args.run, which=args.which, device=args.device)
    gen = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        fake = run.G(run.G.sample_z(args.n, generator=gen, device="cpu").to(run.device))
    out = Path(args.out) if args.out else run.run_dir / "samples" / f"sample_{args.which}_seed{args.seed}"
    path = SAMPLE_WRITERS.get(run.dataset.kind)(
        fake, reference_points(run.dataset), out, f"{run.cfg.name}, step {run.step}"
    )
    print(path)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from lipgan.metrics import resolve_inception_weights
    from lipgan.training.build import check_eval_fits_data
    from lipgan.training.evaluation import evaluate_generator, evaluation_seed
    from lipgan.training.load import load_run
    from lipgan.training.run_dir import append_jsonl

    if args.protocol is not None:
        check_protocol(args.protocol, "--protocol")
    at_least("--n-samples", args.n_samples, 2)  # FID needs a covariance: two samples
    if args.seed is not None:
        check_seed(args.seed, "--seed")
    if args.inception_weights is not None:
        if not args.inception_weights:  # "" would fall back to the default file and download it
            raise ConfigError("--inception-weights must name a file, not ''")
        resolve_inception_weights(args.inception_weights)  # a given file must exist; the error says where
    check_device_flag(args.device)
    run = load_run(args.run, which=args.which, device=args.device)
    if args.protocol:
        run.cfg.eval.protocol = args.protocol
    if args.n_samples is not None:
        run.cfg.eval.n_samples = args.n_samples
    if args.inception_weights:
        run.cfg.eval.inception_weights = args.inception_weights
    check_eval_fits_data(run.cfg, run.dataset, "--protocol" if args.protocol else "eval.protocol")
    # by default z is drawn as during training, so `last` reproduces the run's final eval.jsonl line
    seed = evaluation_seed(run.cfg) if args.seed is None else args.seed
    metrics = evaluate_generator(run.G, run.cfg, run.dataset, run.device, seed)
    record = {
        "step": run.step,
        "checkpoint": f"checkpoints/{args.which}.pt",
        "source": "lipgan eval",
        **metrics,
    }
    append_jsonl(run.run_dir / "eval.jsonl", record)
    width = max(len(k) for k in metrics)
    print(f"{run.run_dir} (step {run.step}, {args.which}):")
    for key, value in metrics.items():
        print(f"  {key:<{width}}  {_fmt(value)}")
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    from lipgan.analysis.command import run_probes

    at_least("--n", args.n, 1)  # every probe runs on a single real and generated sample
    check_device_flag(args.device)
    results = run_probes(args.run, args.kind, n_samples=args.n, which=args.which, device=args.device)
    for kind, summary in results.items():
        print(f"{kind}: {json.dumps(summary)}")
    return 0


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


def cmd_bench(args: argparse.Namespace) -> int:
    from lipgan.experiments.bench import BenchSettings, bench
    from lipgan.experiments.bench_methods import DEFAULT_METHODS
    from lipgan.experiments.bench_report import format_report

    # `--methods a b key=value`: argparse gives the override to --methods; no method name holds "="
    listed = args.methods or []
    methods = [item for item in listed if "=" not in item] if listed else list(DEFAULT_METHODS)
    overrides = [*args.overrides, *(item for item in listed if "=" in item)]
    settings = BenchSettings(
        arch=args.arch,
        batch=args.batch,
        n_dis=args.n_dis,
        methods=tuple(methods),
        precision=args.precision,
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


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="lipgan", description=__doc__.split("\n")[0] + " Lipschitz GAN toolkit.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    p = sub.add_parser(
        "train",
        help="train a GAN (without a config: GraND on the embedded digits)",
        description="Train a GAN. Without CONFIG, the embedded default: GraND on scikit-learn's digits. "
        "Overrides are dotted keys, e.g. optim.lr_d=4e-4 constraint.gradnorm=gran.",
    )
    p.add_argument(
        "items", nargs="*", metavar="[CONFIG] [key=value]", help="config YAML (path, or name: lipgan configs)"
    )
    p.add_argument("--resume", metavar="RUN", help="continue the run in this directory exactly")
    p.add_argument(
        "--dry-run", action="store_true", help="print the resolved config, check the model options, and exit"
    )
    p.add_argument("--stop-after", type=int, metavar="N", help="stop (with a checkpoint) after N more steps")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="write an image grid from a run's checkpoint (EMA weights if present)")
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of z (default 0)")
    p.add_argument("--which", choices=["last", "best"], default="last", help="checkpoint (default last)")
    p.add_argument("--out", help="output PNG path (default RUN/samples/...)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("eval", help="evaluate a run's checkpoint with its protocol; appends to eval.jsonl")
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("--protocol", help="metric protocol (default: the run's eval.protocol)")
    p.add_argument("--n-samples", type=int, help="number of generated samples (default: the protocol's)")
    p.add_argument("--inception-weights", help="path to torch-fidelity's Inception weights file")
    p.add_argument("--which", choices=["last", "best"], default="last", help="checkpoint (default last)")
    p.add_argument("--seed", type=int, help="seed of z (default: the one the run's own evaluations used)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("probe", help="the papers' analyses of a run's discriminator, as PNG + JSON")
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("--kind", required=True, help="probe kind, or 'all' for every probe that applies")
    p.add_argument("--n", type=int, default=256, help="real and generated samples to probe (default 256)")
    p.add_argument("--which", choices=["last", "best"], default="last", help="checkpoint (default last)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.set_defaults(func=cmd_probe)

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

    from lipgan.experiments.bench_methods import BENCH_METHODS, DEFAULT_METHODS  # no torch: names only

    methods = "; ".join(f"{name}: {BENCH_METHODS.get(name).summary}" for name in DEFAULT_METHODS)
    p = sub.add_parser(
        "bench",
        help="time the D step, G step and iteration of every method, with peak memory",
        description="Time one training iteration (--n-dis D steps, then one G step) of each method, built "
        "from the training config as `lipgan train` builds it, on random data shaped like the arch's "
        "samples. Each repetition runs every method once, in an order rotated between repetitions, after "
        "--warmup untimed rounds. Prints two tables, of the medians and of the minima over the repetitions "
        "(other work on the machine only adds time): each method's times, its time over vanilla's and "
        "official-gn's time over the method's (official-gn: GN with the double backward in the D and the G "
        "step, as the official GNGAN code; gn, gran, pgn skip it in the G step, docs/methods.md §2.8), and "
        "the peak memory of an iteration: on CUDA torch.cuda.max_memory_allocated above what was allocated "
        "before it, on CPU the peak resident memory above the resident memory before it (a lower bound). "
        "Not timed: the NaN guard, the EMA, logging, data loading. Every method uses the hinge loss and "
        f"Adam. Methods (§: docs/methods.md): {methods}.",
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
        default="fp32",
        help="fp32 (default), bf16 or fp16: the iteration under torch.autocast, no loss scaling; fp16 needs "
        "CUDA",
    )
    p.add_argument("--device", default="auto", help="auto (default: cuda if present), cpu, cuda or cuda:N")
    p.add_argument("--repeats", type=int, default=10, help="timed repetitions of every method (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds before them (default 2)")
    p.add_argument(
        "--json", metavar="FILE", help="also write every median, minimum, ratio and sample as JSON"
    )
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; a user mistake or a file-system fault is one line on stderr and exit status 2, and
    Ctrl-C before training starts is a quiet exit 130."""
    parser = build_parser()
    args = parser.parse_args(argv)
    threading.excepthook = quiet_file_system_errors
    try:
        return args.func(args)
    except LipganError as err:
        print(f"lipgan {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if not is_file_system_fault(err):
            raise
        where = f" {err.filename}" if err.filename else ""
        print(f"lipgan {args.command}: error: cannot write or read{where}: {err.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lipgan {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
