"""The NaN guard: it fires in the update that blows up, names a checkpoint that exists and is finite (or
says there is none), and nothing non-finite reaches the disk or an evaluation."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import toy_overrides
from lipgan.cli import main
from lipgan.errors import TrainingDivergedError
from lipgan.training import session as session_module
from lipgan.training import trainer
from lipgan.training.checkpoint import load_checkpoint
from lipgan.training.config import load_config
from lipgan.training.evaluation import evaluate_generator
from lipgan.training.guard import all_finite, first_nonfinite, module_is_finite
from lipgan.training.run_dir import read_jsonl
from lipgan.training.trainer import train

STEPS = 6
EXTRA = {"train.ckpt_every": 2, "train.eval_every": 2, "eval.n_samples": 200, "train.eval_at_end": "true"}


def _poison_after(monkeypatch, step_fn: str, net: str, at_call: int, value=math.nan):
    """Make the `at_call`-th call of trainer.<step_fn> leave a non-finite value in parts.<net>."""
    original = getattr(trainer, step_fn)
    calls = {"n": 0}

    def poisoned(parts, *args):
        stats = original(parts, *args)
        calls["n"] += 1
        if calls["n"] == at_call:
            with torch.no_grad():
                next(getattr(parts, net).parameters()).view(-1)[0] = value
        return stats

    monkeypatch.setattr(trainer, step_fn, poisoned)


def _all_checkpoints_finite(run_dir) -> list[int]:
    """The steps of every checkpoint on disk, each checked to hold only finite tensors."""
    steps = []
    for path in sorted((run_dir / "checkpoints").glob("*.pt")):
        state = load_checkpoint(path)
        for key in ("G", "D", "ema"):
            if state.get(key) is not None:
                assert all(bool(t.isfinite().all()) for t in state[key].values() if t.is_floating_point())
        steps.append(state["step"])
    return steps


# (which update, its call that blows up, the step it belongs to, the checkpoint step named or None)
# n_dis = 2: the 5th D update is the first of step 3; the last step is 6.
CASES = {
    "d_at_step_3": ("discriminator_step", "D", 5, 3, 2),
    "g_at_step_3": ("generator_step", "G", 3, 3, 2),
    "d_at_step_1": ("discriminator_step", "D", 1, 1, None),
    "g_at_step_1": ("generator_step", "G", 1, 1, None),
    "g_on_the_last_step": ("generator_step", "G", 6, 6, 4),
    "d_inf_on_the_last_step": ("discriminator_step", "D", 12, 6, 4),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_guard_fires_in_the_update_that_blew_up(tmp_path, monkeypatch, capsys, case):
    step_fn, net, call, step, named = CASES[case]
    _poison_after(monkeypatch, step_fn, net, call, math.inf if "inf" in case else math.nan)
    assert main(["train", *toy_overrides(tmp_path, STEPS, **EXTRA)]) == 2
    raw = capsys.readouterr().err
    assert "Traceback" not in raw and raw.count("error:") == 1
    # the progress bar was closed first: the error is the last line and alone on it (a bar redraws with
    # carriage returns, so a glued message would share the last "\n"-separated line with it)
    err = [raw.rstrip("\n").split("\n")[-1]]
    run_dir = next(tmp_path.glob("00000-*"))
    assert err[0].startswith(f"lipgan train: error: step {step}: {net}'s weights became non-finite")
    if named is None:
        assert err[0].endswith("no checkpoint had been saved yet")
        assert _all_checkpoints_finite(run_dir) == []
    else:
        last = run_dir / "checkpoints" / "last.pt"
        assert err[0].endswith(f"the last good checkpoint is {last} (step {named})")
        assert load_checkpoint(last)["step"] == named
        assert named in _all_checkpoints_finite(run_dir)  # best.pt too, when there is one
    # no evaluation of the step that blew up, nor of any later one
    assert all(r["step"] < step for r in read_jsonl(run_dir / "eval.jsonl"))


def test_a_non_finite_loss_is_named(tmp_path, monkeypatch):
    original = trainer.discriminator_step

    def nan_loss(parts, *args):
        stats = original(parts, *args)
        stats["d_loss"] = torch.tensor(math.nan)
        return stats

    monkeypatch.setattr(trainer, "discriminator_step", nan_loss)
    with pytest.raises(TrainingDivergedError, match=r"^step 1: d_loss became non-finite in D's update"):
        train(None, toy_overrides(tmp_path, STEPS))


def test_a_resumed_run_names_its_checkpoint(tmp_path, monkeypatch):
    run_dir, _ = train(None, toy_overrides(tmp_path, STEPS, **EXTRA), stop_after=3)
    _poison_after(monkeypatch, "generator_step", "G", 1)
    with pytest.raises(TrainingDivergedError, match=r"step 4: .* \(step 3\)$"):
        train(None, None, resume=run_dir)
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"] == 3


def test_save_refuses_a_non_finite_state(tmp_path):
    session = session_module.open_session(
        load_config(None, toy_overrides(tmp_path, STEPS)), None, resume=False
    )
    with torch.no_grad():
        next(session.parts.D.parameters()).view(-1)[0] = math.nan
    with pytest.raises(TrainingDivergedError, match="no checkpoint had been saved yet"):
        session_module.save(session)
    assert not (session.run_dir / "checkpoints" / "last.pt").exists()


def test_evaluation_refuses_non_finite_weights(tmp_path):
    session = session_module.open_session(
        load_config(None, toy_overrides(tmp_path, STEPS)), None, resume=False
    )
    G = session_module.sample_generator(session)
    with torch.no_grad():
        next(G.parameters()).view(-1)[-1] = -math.inf
    with pytest.raises(TrainingDivergedError, match="nothing to evaluate"):
        evaluate_generator(G, session.cfg, session.dataset, session.device, 0)


@pytest.mark.parametrize(
    ("tensors", "scalars", "expected"),
    [
        ([torch.ones(3), torch.zeros(2, 2)], [torch.tensor(1.0)], True),
        ([torch.ones(3), torch.tensor([1.0, math.nan])], [], False),
        ([torch.ones(3), torch.tensor([-math.inf])], [], False),
        ([torch.ones(3)], [torch.tensor(math.inf)], False),
        ([torch.full((4,), 3e38)], [], True),  # huge but finite: the max-abs does not overflow
        ([torch.empty(0), torch.ones(1)], [], True),
        ([], [], True),
        ([torch.ones(2, dtype=torch.float64)], [torch.tensor(math.nan, dtype=torch.float64)], False),
    ],
    ids=["finite", "nan", "minus_inf", "inf_loss", "huge_finite", "empty_tensor", "nothing", "float64"],
)
def test_all_finite(tensors, scalars, expected):
    assert all_finite(tensors, scalars) is expected


def test_module_is_finite_checks_buffers_too():
    net = torch.nn.BatchNorm1d(3)
    assert module_is_finite(net)
    net.running_var[1] = math.nan
    assert not module_is_finite(net)


def test_first_nonfinite_names_the_first_bad_one():
    named = {"a": torch.tensor(1.0), "b": torch.tensor(math.inf), "c": torch.tensor(math.nan)}
    assert first_nonfinite(named) == "b"
    assert first_nonfinite({"a": torch.tensor(0.0)}) is None
