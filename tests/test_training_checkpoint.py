"""Checkpoints verify themselves: every damaged, foreign or mismatched file is one line, and nothing changes.

Each corruption is tried on `train --resume`, `sample`, `eval` and `probe`; afterwards every file of the run
has the hash it had before.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import shutil
import struct
import zipfile

import pytest
import torch

from conftest import toy_overrides
from lipgan.cli import main
from lipgan.errors import CheckpointError
from lipgan.training.checkpoint import (
    HASH_KEY,
    content_hash,
    copy_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from lipgan.training.trainer import train


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    overrides = toy_overrides(out, 2, **{"train.ckpt_every": 1, "train.eval_at_end": "true"})
    run_dir, _ = train(None, [*overrides, "eval.n_samples=64"])
    return run_dir


def _largest_tensor_span(data: bytes) -> tuple[int, int]:
    """(start, size) of the largest stored tensor's bytes inside the checkpoint's zip archive."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    info = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
    return info.header_offset + 30 + name_length + extra_length, info.file_size


def flip_tensor_bytes(data: bytes) -> bytes:
    start, size = _largest_tensor_span(data)
    middle = start + size // 2
    return data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 64]) + data[middle + 64 :]


def _torch_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


CORRUPTIONS = {
    "flipped bytes": (flip_tensor_bytes, "is corrupted: its content no longer matches its SHA-256"),
    "truncated": (lambda data: data[: len(data) // 2], "cannot be read"),
    "zero bytes": (lambda data: b"", "is empty (0 bytes)"),
    "random bytes": (
        lambda data: bytes(
            torch.randint(0, 256, (100,), generator=torch.Generator().manual_seed(3)).tolist()
        ),
        "cannot be read",
    ),
    "foreign pickle": (lambda data: pickle.dumps({"hello": object}), "cannot be read"),
    "foreign torch file": (
        lambda data: _torch_bytes({"weights": torch.ones(3)}),
        "is not a lipgan checkpoint",
    ),
}
COMMANDS = {
    "resume": lambda run: ["train", "--resume", str(run)],
    "sample": lambda run: ["sample", str(run), "--n", "16"],
    "eval": lambda run: ["eval", str(run)],
    "probe": lambda run: ["probe", str(run), "--kind", "grad-norms", "--n", "16"],
}


def _hashes(folder):
    return {
        p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file()
    }


def _run_and_check(argv, run_dir, capsys, expected):
    before = _hashes(run_dir)
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert expected in lines[0] and "last.pt" in lines[0], lines[0]
    assert _hashes(run_dir) == before  # nothing was written, overwritten or added


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_a_damaged_checkpoint_is_one_line_and_changes_nothing(
    finished_run, tmp_path, capsys, command, corruption
):
    run_dir = shutil.copytree(finished_run, tmp_path / "run")
    damage, expected = CORRUPTIONS[corruption]
    checkpoint = run_dir / "checkpoints" / "last.pt"
    checkpoint.write_bytes(damage(checkpoint.read_bytes()))
    _run_and_check(COMMANDS[command](run_dir), run_dir, capsys, expected)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_config_that_no_longer_fits_the_weights_is_one_line(finished_run, tmp_path, capsys, command):
    run_dir = shutil.copytree(finished_run, tmp_path / "run")
    config = run_dir / "config.yaml"
    config.write_text(config.read_text().replace("width: 0.03125", "width: 0.0625"))
    _run_and_check(COMMANDS[command](run_dir), run_dir, capsys, "does not fit the run's config")


def test_flipping_tensor_bytes_changes_the_weights_the_file_loads(finished_run):
    """The corruption above reaches the weights: without the hash, the damaged file would load."""
    data = (finished_run / "checkpoints" / "last.pt").read_bytes()
    clean = torch.load(io.BytesIO(data), weights_only=True)
    damaged = torch.load(io.BytesIO(flip_tensor_bytes(data)), weights_only=True)
    assert damaged.keys() == clean.keys()
    assert content_hash({k: v for k, v in damaged.items() if k != HASH_KEY}) != damaged[HASH_KEY]
    assert content_hash({k: v for k, v in clean.items() if k != HASH_KEY}) == clean[HASH_KEY]


def test_content_hash_sees_values_dtypes_shapes_and_keys():
    base = {"a": torch.zeros(2, 3), "b": [1, 2.5, None], "c": {"d": torch.tensor(1)}}
    same = {"a": torch.zeros(2, 3), "b": [1, 2.5, None], "c": {"d": torch.tensor(1)}}
    assert content_hash(base) == content_hash(same)
    variants = [
        {**base, "a": torch.zeros(3, 2)},
        {**base, "a": torch.zeros(2, 3, dtype=torch.float64)},
        {**base, "a": torch.zeros(2, 3).index_fill(1, torch.tensor([2]), 1e-30)},
        {**base, "b": [1, 2.5000001, None]},
        {**base, "b": (1, 2.5, None)},
        {"a": base["a"], "b": base["b"], "e": base["c"]},
    ]
    hashes = {content_hash(v) for v in variants}
    assert len(hashes) == len(variants) and content_hash(base) not in hashes


def test_save_then_load_round_trips_and_leaves_no_temporary(tmp_path):
    state = {"step": 3, "G": {"w": torch.randn(4)}, "D": {"w": torch.randn(2)}, "best": None}
    path = tmp_path / "checkpoints" / "last.pt"
    save_checkpoint(state, path)
    loaded = load_checkpoint(path)
    assert loaded.keys() == state.keys() and loaded["step"] == 3
    torch.testing.assert_close(loaded["G"]["w"], state["G"]["w"], rtol=0, atol=0)
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]
    copy_checkpoint(path, path.with_name("best.pt"))
    assert sorted(p.name for p in path.parent.iterdir()) == ["best.pt", "last.pt"]
    assert path.with_name("best.pt").read_bytes() == path.read_bytes()


def test_a_failure_inside_torch_save_leaves_the_old_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "last.pt"
    save_checkpoint({"step": 1, "G": {"w": torch.ones(3)}, "D": {"w": torch.zeros(2)}}, path)
    before = path.read_bytes()
    real_save = torch.save
    targets = []

    def crashing_save(obj, f, *args, **kwargs):
        """Write the file, cut it short as a crash in the middle would, then fail."""
        targets.append(f)
        real_save(obj, f, *args, **kwargs)
        with open(f, "r+b") as file:
            file.truncate(64)
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", crashing_save)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint({"step": 2, "G": {"w": torch.full((3,), 2.0)}, "D": {"w": torch.ones(2)}}, path)
    assert targets == [path.with_name("last.pt.tmp")]  # torch.save never wrote to the checkpoint itself
    assert path.read_bytes() == before
    monkeypatch.setattr(torch, "save", real_save)
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # the cut temporary is gone too


def test_a_checkpoint_without_a_hash_still_loads(tmp_path):
    """Checkpoints written before the hash existed are accepted as they are."""
    path = tmp_path / "old.pt"
    torch.save({"step": 1, "G": {}, "D": {}}, path)
    assert load_checkpoint(path) == {"step": 1, "G": {}, "D": {}}


def test_resume_removes_a_stale_temporary_and_continues(finished_run, tmp_path):
    run_dir = shutil.copytree(finished_run, tmp_path / "run")
    stale = run_dir / "checkpoints" / "last.pt.tmp"
    stale.write_bytes(b"half a checkpoint")
    _, result = train(None, ["train.steps=3"], resume=run_dir)
    assert result["step"] == 3 and not stale.exists()


def test_load_checkpoint_error_type(tmp_path):
    path = tmp_path / "x.pt"
    path.write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
