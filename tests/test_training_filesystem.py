"""File-system faults are one line and leave the run's files as they were: a full or read-only disk, a file
where a folder should be. The full and read-only disks are real tmpfs mounts where this machine allows
them (root in a container); the monkeypatched full disk below runs everywhere."""

from __future__ import annotations

import errno
import hashlib
import shutil
import subprocess

import pytest
import torch

from conftest import toy_overrides
from lipgan.cli import main
from lipgan.training.trainer import train


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    run_dir, _ = train(None, toy_overrides(out, 3, **{"train.ckpt_every": 1}))
    return run_dir


def hashes(folder) -> dict:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _one_error_line(capsys, command: str) -> str:
    raw = capsys.readouterr().err
    assert "Traceback" not in raw and raw.count("error:") == 1
    last = raw.rstrip("\n").split("\n")[-1]
    assert last.startswith(f"lipgan {command}: error: ")
    return last


def test_out_dir_that_is_a_file(tmp_path, capsys):
    blocker = tmp_path / "runs"
    blocker.write_text("not a folder")
    assert main(["train", *toy_overrides(blocker, 2)]) == 2
    assert "is a file, not a folder" in _one_error_line(capsys, "train")
    assert blocker.read_text() == "not a folder"


def test_out_dir_below_a_file(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["train", *toy_overrides(blocker / "runs", 2)]) == 2
    assert str(blocker) in _one_error_line(capsys, "train")


def test_a_full_disk_during_a_save_keeps_the_last_checkpoint(finished_run, tmp_path, monkeypatch, capsys):
    run_dir = shutil.copytree(finished_run, tmp_path / "run")
    before = hashes(run_dir)

    def disk_full(obj, path, *args, **kwargs):
        with open(path, "wb") as fh:
            fh.write(b"PK\x03\x04 the first bytes")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(torch, "save", disk_full)
    assert main(["train", "--resume", str(run_dir), "train.steps=5"]) == 2
    assert "No space left on device" in _one_error_line(capsys, "train")
    after = hashes(run_dir)
    for name in ("checkpoints/last.pt", "config.yaml", "env.json"):
        assert after[name] == before[name]
    assert not list(run_dir.rglob("*.tmp"))


def _mount_tmpfs(path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    if shutil.which("mount") is None or not _mount_tmpfs(mount, "size=4m"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def _fill(disk):
    """Leave no free byte on the mounted tmpfs."""
    with open(disk / "filler", "wb", buffering=0) as fh:
        for chunk in (65536, 1):
            try:
                while True:
                    fh.write(b"\0" * chunk)
            except OSError:
                pass


def test_a_really_full_disk(finished_run, small_disk, capsys):
    run_dir = shutil.copytree(finished_run, small_disk / "run")
    before = hashes(run_dir)
    _fill(small_disk)
    code = main(["train", "--resume", str(run_dir), "train.steps=6", "train.ckpt_every=1"])
    assert code == 2
    assert "No space left on device" in _one_error_line(capsys, "train")
    after = hashes(run_dir)
    for name in ("checkpoints/last.pt", "config.yaml", "env.json"):
        assert after[name] == before[name]
    assert not list(run_dir.rglob("*.tmp"))
    metrics = (run_dir / "metrics.jsonl").read_text()
    assert metrics.endswith("\n")  # a failed append never leaves half a line


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--resume", "{run}", "train.steps=6"],
        ["sample", "{run}"],
        ["sample", "{run}", "--out", "{run}/grid.png"],
        ["eval", "{run}", "--n-samples", "64"],
        ["probe", "{run}", "--kind", "all", "--n", "32"],
    ],
    ids=["resume", "sample", "sample_out", "eval", "probe"],
)
def test_a_read_only_disk(finished_run, small_disk, capsys, argv):
    run_dir = shutil.copytree(finished_run, small_disk / "run")
    before = hashes(run_dir)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    assert main([a.replace("{run}", str(run_dir)) for a in argv]) == 2
    assert "Read-only file system" in _one_error_line(capsys, argv[0])
    assert hashes(run_dir) == before
