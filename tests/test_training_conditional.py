"""Class-conditional training: labels through the stream, the D and G steps and the checkpoints; the grid
with one row per class; `lipgan sample --class`; the one-line errors of a conditional setting that cannot
work."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from conftest import toy_overrides
from fake_datasets import write_fake_celeba
from lipgan.training.config import load_config
from lipgan.training.session import grid_labels, open_session, rows_of
from lipgan.training.trainer import train, train_one_step

COND = {"model.arch": "mlp2d-cond", "constraint.gradnorm": "gn"}


def _session(tmp_path, seed=0, **extra):
    cfg = load_config(None, toy_overrides(tmp_path, 2, seed=seed, **{**COND, **extra}))
    return open_session(cfg, None, resume=False)


def _fake_labels(session, draws=3):
    return [session.parts.G.sample_y(16, generator=session.label_gen) for _ in range(draws)]


def test_fake_labels_are_uniform_and_seeded(tmp_path):
    a, b = _session(tmp_path / "a"), _session(tmp_path / "b")
    other = _session(tmp_path / "c", seed=1)
    drawn_a, drawn_b, drawn_other = _fake_labels(a), _fake_labels(b), _fake_labels(other)
    assert all(torch.equal(x, y) for x, y in zip(drawn_a, drawn_b))
    assert not all(torch.equal(x, y) for x, y in zip(drawn_a, drawn_other))
    many = a.parts.G.sample_y(80_000, generator=torch.Generator().manual_seed(0))
    share = torch.bincount(many, minlength=8).double() / many.numel()
    # a binomial share of 1/8 over 80k draws has std 0.0012: 5 std either side
    torch.testing.assert_close(share, torch.full((8,), 0.125, dtype=torch.float64), rtol=0, atol=0.006)


def test_the_d_step_sees_the_batch_labels_and_g_shares_its_labels_with_d(tmp_path, monkeypatch):
    session = _session(tmp_path)
    seen = {}
    from lipgan.training import trainer

    real_step, gen_step = trainer.discriminator_step, trainer.generator_step

    def spy_d(parts, real, fake, generator, y_real, y_fake):
        seen["d"] = (real.shape[0], y_real, y_fake)
        return real_step(parts, real, fake, generator, y_real, y_fake)

    def spy_g(parts, z, generator, y):
        seen["g"] = y
        return gen_step(parts, z, generator, y)

    monkeypatch.setattr(trainer, "discriminator_step", spy_d)
    monkeypatch.setattr(trainer, "generator_step", spy_g)
    train_one_step(session)
    batch, y_real, y_fake = seen["d"]
    assert y_real.shape == y_fake.shape == seen["g"].shape == (batch,)
    assert y_real.dtype == y_fake.dtype == torch.long
    assert int(y_fake.min()) >= 0 and int(y_fake.max()) < 8
    # the D batch's labels are the dataset's labels of the batch's items
    last = session.stream.batch_indices(session.stream.epoch, session.stream.position - 1)
    assert torch.equal(y_real, session.dataset.get_batch(last)[1])


def test_an_unconditional_run_draws_no_labels(tmp_path):
    cfg = load_config(None, toy_overrides(tmp_path, 2))
    session = open_session(cfg, None, resume=False)
    assert session.label_gen is None and session.fixed_y is None
    assert session.fixed_z.shape[0] == cfg.train.grid_size


def test_the_grid_has_one_row_per_class(tmp_path):
    labels = grid_labels(10, 64)
    assert labels.tolist() == [k for k in range(10) for _ in range(6)]
    assert rows_of(labels) == 6
    assert grid_labels(10, 4).tolist() == list(range(10))  # at least one sample of every class
    session = _session(tmp_path, **{"train.grid_size": 20})
    assert session.fixed_y.tolist() == [k for k in range(8) for _ in range(2)]
    assert session.fixed_z.shape[0] == 16


def test_a_conditional_checkpoint_keeps_the_label_stream(tmp_path):
    run_dir, _ = train(None, toy_overrides(tmp_path, 2, **COND))
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert state["label_gen"] is not None
    plain_dir, _ = train(None, toy_overrides(tmp_path / "plain", 2))
    assert torch.load(plain_dir / "checkpoints" / "last.pt", weights_only=True)["label_gen"] is None


def test_a_conditional_arch_on_unlabeled_data_is_one_line_and_exit_2(tmp_path):
    write_fake_celeba(tmp_path / "data")
    result = _lipgan(
        "train",
        f"data.root={tmp_path / 'data'}",
        "data.name=celeba",
        "model.arch=mlp2d-cond",
        f"out_dir={tmp_path / 'runs'}",
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "lipgan train: error: model.arch=mlp2d-cond is class-conditional but data.name=celeba "
        "(split default) has no class labels; use an unconditional arch"
    )
    assert not (tmp_path / "runs").exists()


def _lipgan(*args):
    return subprocess.run([sys.executable, "-m", "lipgan", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runs")
    cond, _ = train(None, toy_overrides(tmp / "cond", 1, **COND))
    plain, _ = train(None, toy_overrides(tmp / "plain", 1))
    return cond, plain


@pytest.mark.parametrize(
    "which, flag, message",
    [
        ("cond", "12", "lipgan sample: error: --class 12: the run has 8 classes, 0 to 7"),
        ("cond", "-1", "lipgan sample: error: --class must be at least 0, not -1"),
        ("plain", "3", "lipgan sample: error: --class 3: {run} is an unconditional run"),
    ],
)
def test_bad_class_flags_are_one_line_and_exit_2(runs, which, flag, message):
    run = runs[0] if which == "cond" else runs[1]
    result = _lipgan("sample", str(run), "--class", flag)
    assert result.returncode == 2
    assert result.stderr.strip() == message.format(run=run)


def test_sample_class_k_draws_that_class_and_no_flag_draws_every_class(runs, tmp_path):
    from lipgan.training.load import load_run

    run = load_run(runs[0])
    only_3, per_row = run.sample(5, seed=0, class_index=3)
    assert only_3.shape == (5, 2) and per_row is None
    grid, per_row = run.sample(16, seed=0)
    assert grid.shape == (16, 2) and per_row == 2
    # the same z with labels fixed to 3 gives class 3's samples: the label, not the seed, changed them
    z = run.G.sample_z(5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(only_3, run.G(z, torch.full((5,), 3)), rtol=0, atol=0)
    result = _lipgan("sample", str(runs[0]), "--class", "3", "--out", str(tmp_path / "c3.png"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "c3.png").stat().st_size > 0
