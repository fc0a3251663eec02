"""The run directory: `runs/<00000>-<name>/`, never reused, holding everything needed to compare runs."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from lipgan.errors import FileSystemError, MissingFileError
from lipgan.training.precision import cpu_computes_bf16

RUN_PATTERN = re.compile(r"^(\d{5})-")


def new_run_dir(out_dir: str | Path, name: str) -> Path:
    """Create the next free `out_dir/<index>-<name>`; the index is one more than the largest in use."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise MissingFileError(f"out_dir {out_dir} is a file, not a folder; set out_dir=DIR to another path")
    out_dir.mkdir(parents=True, exist_ok=True)
    index = next_index(out_dir)
    while True:
        path = out_dir / f"{index:05d}-{name}"
        try:
            return create_run_dir(path)
        except FileExistsError:
            index += 1


def next_index(out_dir: Path) -> int:
    """One more than the largest `<index>-` prefix in use under `out_dir` (0 when there is none)."""
    if not out_dir.is_dir():
        return 0
    used = [int(m.group(1)) for p in out_dir.iterdir() if (m := RUN_PATTERN.match(p.name))]
    return max(used, default=-1) + 1


def create_run_dir(path: Path) -> Path:
    """Make the run directory `path` (which must not exist yet) with its sub-folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.mkdir()
    for sub in ("checkpoints", "samples", "plots", "tb"):
        (path / sub).mkdir()
    return path


def require_writable(folder: Path) -> None:
    """Fail now, with the file system's own reason, when nothing can be written in `folder` (a read-only
    disk, no permission) rather than at the first log line or checkpoint."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise FileSystemError(f"cannot write in {folder}: {err.strerror}") from None


def require_run_dir(path: str | Path) -> Path:
    """A run directory given on the command line, checked to hold a config and a checkpoint."""
    path = Path(path)
    if not path.is_dir():
        raise MissingFileError(f"run directory {path} {'is a file' if path.exists() else 'does not exist'}")
    if not (path / "config.yaml").is_file():
        raise MissingFileError(f"{path} is not a lipgan run directory (no config.yaml)")
    if not (path / "checkpoints" / "last.pt").is_file():
        raise MissingFileError(f"{path} has no checkpoint yet (checkpoints/last.pt is missing)")
    return path


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment_record(seed: int, device: torch.device, world_size: int) -> dict:
    import lipgan

    return {
        "lipgan": lipgan.__version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "platform": platform.platform(),
        "git_commit": _git_commit(),
        "seed": seed,
        "device": str(device),
        "cuda_device": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "world_size": world_size,
        "threads": torch.get_num_threads(),
        "cpu_computes_bf16": cpu_computes_bf16(),  # where train.precision=auto runs bf16 on the CPU
    }


def write_json(path: Path, record: dict) -> None:
    """`record` as indented JSON, written to a temporary file and renamed (never half a file)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, path)


def append_jsonl(path: Path, record: dict) -> None:
    """Append one line; a write that fails (a full disk) is undone, so the file never ends mid-line."""
    size = path.stat().st_size if path.exists() else 0
    try:
        with open(path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
    except OSError:
        with contextlib.suppress(OSError):  # the append's own error is the one to report
            os.truncate(path, size)
        raise


def truncate_jsonl(path: Path, step: int) -> None:
    """Keep the lines of `path` whose `step` is at most `step` (atomically; a missing file stays missing)."""
    if not path.is_file():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [line for line in lines if json.loads(line).get("step", 0) <= step]
    if len(kept) != len(lines):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text("".join(line + "\n" for line in kept))
        os.replace(tmp, path)


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
