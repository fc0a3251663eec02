"""Interruption at step boundaries: SIGINT/SIGTERM in a D step, in an evaluation or in a checkpoint write
stops after the step with a checkpoint of it; the resumed run ends bit for bit where an uninterrupted one
ends, and no step appears twice in the logs. A second Ctrl-C aborts and leaves the last checkpoint alone."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import toy_overrides
from lipgan.cli import main
from lipgan.training import evaluation
from lipgan.training import session as session_module
from lipgan.training.checkpoint import load_checkpoint
from lipgan.training.run_dir import read_jsonl
from lipgan.training.trainer import train

STEPS = 6
EXTRA = {"train.eval_every": 2, "eval.n_samples": 200, "optim.n_dis": 3}


def _overrides(out_dir, **extra):
    return [*toy_overrides(out_dir, STEPS, **{**EXTRA, **extra}), "train.eval_at_end=true"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run every interrupted one must end up equal to."""
    run_dir, result = train(None, _overrides(tmp_path_factory.mktemp("reference")))
    assert result == {"interrupted": False, "step": STEPS, "eval": result["eval"], "is_main": True}
    return run_dir


def assert_same_end(run_dir, reference_dir):
    """Final G, D, optimizers, EMA and RNG states equal bit for bit; logs without repeated steps; the same
    evaluations with the same values."""
    ours = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    ref = load_checkpoint(reference_dir / "checkpoints" / "last.pt")
    flat_ours, flat_ref = _flatten(ours), _flatten(ref)
    assert flat_ours.keys() == flat_ref.keys()
    for key, value in flat_ref.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(flat_ours[key], value), key
        else:
            assert flat_ours[key] == value, key
    steps = [row["step"] for row in read_jsonl(run_dir / "metrics.jsonl")]
    assert steps == list(range(1, STEPS + 1))
    assert read_jsonl(run_dir / "eval.jsonl") == read_jsonl(reference_dir / "eval.jsonl")


def _flatten(obj, prefix=""):
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            out.update(_flatten(value, f"{prefix}{key}/"))
        return out
    if isinstance(obj, list | tuple):
        out = {}
        for i, value in enumerate(obj):
            out.update(_flatten(value, f"{prefix}{i}/"))
        return out
    return {prefix: obj}


def _signal_on_call(monkeypatch, target: str, signum: int, at_call: int):
    """Patch `target` (module.attr) to send `signum` to this process on its `at_call`-th call, then run."""
    module_name, attr = target.rsplit(".", 1)
    module = sys.modules[module_name]
    original = getattr(module, attr)
    calls = {"n": 0}

    def wrapped(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == at_call:
            os.kill(os.getpid(), signum)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, attr, wrapped)
    return calls


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["sigint", "sigterm"]
)
def test_a_signal_in_the_middle_of_a_d_step_stops_after_the_step(
    tmp_path, monkeypatch, capsys, reference, signum, code
):
    # the 8th D update is the second of step 3 (n_dis = 3): the signal arrives inside step 3
    _signal_on_call(monkeypatch, "lipgan.training.trainer.discriminator_step", signum, 8)
    assert main(["train", *_overrides(tmp_path)]) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"{signal.Signals(signum).name} at step 3: stopped after the step, checkpoint saved" in err
    run_dir = next(tmp_path.glob("00000-*"))
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"] == 3
    monkeypatch.undo()
    assert main(["train", "--resume", str(run_dir)]) == 0
    assert_same_end(run_dir, reference)


def test_a_signal_during_an_evaluation_lets_it_finish(tmp_path, monkeypatch, reference):
    _signal_on_call(monkeypatch, "lipgan.training.evaluation.evaluate_generator", signal.SIGINT, 2)
    run_dir, result = train(None, _overrides(tmp_path))
    assert result["interrupted"] and result["step"] == 4 and result["exit_code"] == 130
    assert [r["step"] for r in read_jsonl(run_dir / "eval.jsonl")] == [2, 4]
    monkeypatch.undo()
    train(None, None, resume=run_dir)
    assert_same_end(run_dir, reference)


def test_a_signal_during_a_checkpoint_write_lets_it_finish(tmp_path, monkeypatch, reference):
    # with eval_every = 2 the first save is the one before step 2's evaluation
    _signal_on_call(monkeypatch, "lipgan.training.session.save_checkpoint", signal.SIGTERM, 1)
    run_dir, result = train(None, _overrides(tmp_path))
    assert (result["step"], result["exit_code"]) == (2, 143)
    assert [r["step"] for r in read_jsonl(run_dir / "eval.jsonl")] == [2]
    monkeypatch.undo()
    train(None, None, resume=run_dir)
    assert_same_end(run_dir, reference)


def test_a_second_ctrl_c_aborts_at_once_and_leaves_the_last_checkpoint(tmp_path, monkeypatch, capsys):
    run_dir, _ = train(None, _overrides(tmp_path), stop_after=2)
    last = run_dir / "checkpoints" / "last.pt"
    before = hashlib.sha256(last.read_bytes()).hexdigest()
    # the first Ctrl-C inside step 3; the second arrives while the loop writes the checkpoint of the stop
    _signal_on_call(monkeypatch, "lipgan.training.trainer.discriminator_step", signal.SIGINT, 2)

    def half_written(obj, path):
        path.write_bytes(b"PK\x03\x04 half of a checkpoint")
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(torch, "save", half_written)
    assert main(["train", "--resume", str(run_dir)]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "lipgan train: interrupted"
    assert hashlib.sha256(last.read_bytes()).hexdigest() == before
    assert not list((run_dir / "checkpoints").glob("*.tmp"))


def test_ctrl_c_during_start_up_is_quiet_and_leaves_no_run_directory(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # what Ctrl-C raises while the dataset is being read

    monkeypatch.setattr(session_module, "build_dataset", interrupted)
    assert main(["train", *_overrides(tmp_path)]) == 130
    assert capsys.readouterr().err == "lipgan train: interrupted\n"
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_while_the_run_directory_is_written_removes_it(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(session_module, "environment_record", interrupted)
    assert main(["train", *_overrides(tmp_path)]) == 130
    assert list(tmp_path.iterdir()) == []


def test_after_a_kill_the_logs_are_cut_back_and_the_skipped_evaluation_runs(tmp_path, monkeypatch, reference):
    """A SIGKILL right after step 4's checkpoint, inside step 4's evaluation, with steps 5 and 6 of an
    earlier life already in metrics.jsonl (what a kill between a log line and a save leaves)."""

    class Killed(BaseException):
        pass

    original = evaluation.evaluate_generator
    calls = {"n": 0}

    def dies_in_the_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise Killed
        return original(*args, **kwargs)

    monkeypatch.setattr(evaluation, "evaluate_generator", dies_in_the_second)
    with pytest.raises(Killed):
        train(None, _overrides(tmp_path))
    monkeypatch.undo()
    run_dir = next(tmp_path.glob("00000-*"))
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"] == 4
    with open(run_dir / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 5, "d_loss": 0.0}\n{"step": 6, "d_loss": 0.0}\n')
    assert [r["step"] for r in read_jsonl(run_dir / "eval.jsonl")] == [2]
    train(None, None, resume=run_dir)
    assert_same_end(run_dir, reference)


def _wait_for_steps(path, n, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.is_file() and len(read_jsonl(path)) >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"no {n} steps in {path} after {timeout} s")


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["sigint", "sigterm"]
)
def test_a_real_signal_to_lipgan_train(tmp_path, signum, code):
    """The command as a user runs it: a signal from outside, exit status, one message, no traceback."""
    overrides = toy_overrides(tmp_path, 100_000, **{"train.log_every": 1})
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lipgan", "train", *overrides],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    run_dir = None
    deadline = time.time() + 120
    while run_dir is None and time.time() < deadline:
        found = list(tmp_path.glob("00000-*"))
        run_dir = found[0] if found else None
        time.sleep(0.05)
    assert run_dir is not None
    _wait_for_steps(run_dir / "metrics.jsonl", 3, proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code
    assert "Traceback" not in err
    step = load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"]
    assert f"{signal.Signals(signum).name} at step {step}" in err
    assert [r["step"] for r in read_jsonl(run_dir / "metrics.jsonl")] == list(range(1, step + 1))
