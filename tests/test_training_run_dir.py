"""Run directories `<out_dir>/<00000>-<name>/`: the next index, never reusing one, and the sub-folders."""

from __future__ import annotations

import pytest

from lipgan.errors import MissingFileError
from lipgan.training import run_dir as run_dir_module
from lipgan.training.run_dir import create_run_dir, new_run_dir, next_index, require_run_dir

SUBFOLDERS = ["checkpoints", "plots", "samples", "tb"]


def test_next_index_of_a_missing_or_empty_folder_is_zero(tmp_path):
    assert next_index(tmp_path / "missing") == 0
    assert next_index(tmp_path) == 0


def test_next_index_is_one_more_than_the_largest_five_digit_prefix(tmp_path):
    for name in ("00000-a", "00007-b", "00003-c"):
        (tmp_path / name).mkdir()
    # not run directories: no five-digit prefix, or no dash after it
    for name in ("notes", "123-x", "000099-x", "abcde-x", "00050"):
        (tmp_path / name).mkdir()
    (tmp_path / "00020-a-file.txt").write_text("")  # a file with the pattern still holds its index
    assert next_index(tmp_path) == 21
    (tmp_path / "00020-a-file.txt").unlink()
    assert next_index(tmp_path) == 8  # gaps below the largest index are never filled


def test_new_run_dir_counts_up_across_names_and_makes_the_subfolders(tmp_path):
    out = tmp_path / "runs"  # created on first use
    first = new_run_dir(out, "digits_grand")
    second = new_run_dir(out, "toy")
    third = new_run_dir(out, "digits_grand")
    assert [p.name for p in (first, second, third)] == [
        "00000-digits_grand",
        "00001-toy",
        "00002-digits_grand",
    ]
    for path in (first, second, third):
        assert sorted(p.name for p in path.iterdir()) == SUBFOLDERS


def test_new_run_dir_skips_an_index_taken_after_it_was_chosen(tmp_path, monkeypatch):
    """Two runs started together can both read the same next index; the second must move on."""
    (tmp_path / "00000-run").mkdir()
    (tmp_path / "00001-run").mkdir()
    (tmp_path / "00001-run" / "keep.txt").write_text("theirs")
    monkeypatch.setattr(run_dir_module, "next_index", lambda out_dir: 0)  # a stale look-up
    path = new_run_dir(tmp_path, "run")
    assert path == tmp_path / "00002-run"
    assert sorted(p.name for p in path.iterdir()) == SUBFOLDERS
    assert (tmp_path / "00001-run" / "keep.txt").read_text() == "theirs"
    assert sorted(p.name for p in (tmp_path / "00001-run").iterdir()) == ["keep.txt"]


def test_create_run_dir_refuses_an_existing_path_and_leaves_it_alone(tmp_path):
    path = create_run_dir(tmp_path / "sweep" / "runs" / "00000-a_s0")  # parents are made
    (path / "checkpoints" / "last.pt").write_bytes(b"weights")
    with pytest.raises(FileExistsError):
        create_run_dir(path)
    assert (path / "checkpoints" / "last.pt").read_bytes() == b"weights"
    assert sorted(p.name for p in path.iterdir()) == SUBFOLDERS


def test_require_run_dir_needs_a_config_and_a_checkpoint(tmp_path):
    path = create_run_dir(tmp_path / "00000-a")
    with pytest.raises(MissingFileError, match="no config.yaml"):
        require_run_dir(path)
    (path / "config.yaml").write_text("name: a\n")
    with pytest.raises(MissingFileError, match=r"checkpoints/last\.pt is missing"):
        require_run_dir(path)
    (path / "checkpoints" / "last.pt").write_bytes(b"")
    assert require_run_dir(str(path)) == path
