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

from lipgan.cli.common import OneLineParser, split_train_args
from lipgan.cli.experiments import add_experiment_commands
from lipgan.errors import ConfigError, LipganError, is_file_system_fault, quiet_file_system_errors
from lipgan.training.config import find_config
from lipgan.training.validate import check_protocol, check_seed


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
    from lipgan.training.load import load_run
    from lipgan.training.logs import SAMPLE_WRITERS, reference_points

    at_least("--n", args.n, 1)
    check_seed(args.seed, "--seed")
    check_device_flag(args.device)
    if args.out:
        check_out_path(args.out)
    if args.class_index is not None:
        at_least("--class", args.class_index, 0)
    run = load_run(args.run, which=args.which, device=args.device)
    fake, per_row = run.sample(args.n, args.seed, args.class_index)
    which = "" if args.class_index is None else f"_class{args.class_index}"
    default = run.run_dir / "samples" / f"sample_{args.which}_seed{args.seed}{which}"
    out = Path(args.out) if args.out else default
    path = SAMPLE_WRITERS.get(run.dataset.kind)(
        fake, reference_points(run.dataset), out, f"{run.cfg.name}, step {run.step}", per_row
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
    p.add_argument(
        "--class",
        dest="class_index",
        type=int,
        metavar="K",
        help="a conditional run: samples of class K only (default: a grid with one row per class)",
    )
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

    add_experiment_commands(sub)
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
