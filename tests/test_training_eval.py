"""Evaluation during training, `lipgan eval`, the best checkpoint, the NaN guard and the default config."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

from conftest import digits_overrides, toy_overrides
from fake_datasets import write_fake_cifar10
from lipgan.cli import main
from lipgan.errors import TrainingDivergedError
from lipgan.metrics import write_random_inception_weights
from lipgan.training import steps as steps_module
from lipgan.training.config import SHIPPED_CONFIGS, Config, config_from_dict, load_config
from lipgan.training.evaluation import evaluate_generator, evaluation_seed
from lipgan.training.load import load_run
from lipgan.training.trainer import train


def _eval_lines(run_dir):
    return [json.loads(line) for line in (run_dir / "eval.jsonl").read_text().splitlines()]


def test_default_config_file_is_the_dataclass_default():
    assert load_config(SHIPPED_CONFIGS / "digits_grand.yaml") == config_from_dict({}) == Config()


def test_toy_run_evaluates_periodically_and_keeps_the_best(tmp_path):
    overrides = toy_overrides(
        tmp_path, 4, **{"train.eval_every": 2, "train.eval_at_end": "true", "eval.n_samples": 500}
    )
    run_dir, result = train(None, overrides)
    lines = _eval_lines(run_dir)
    assert [line["step"] for line in lines] == [2, 4]  # the end coincides with a periodic evaluation
    assert result["eval"] == lines[-1]  # and the run's summary still reports it
    for line in lines:
        assert line["checkpoint"] == "checkpoints/last.pt"
        assert 0 <= line["modes_covered"] <= 8 and 0.0 <= line["hq_fraction"] <= 1.0
        assert 0.0 <= line["mode_kl"] <= math.log(8) + 1e-12
    assert (run_dir / "checkpoints" / "best.pt").is_file()
    best = min(lines, key=lambda line: line["mode_kl"])
    assert torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)["best"] == best["mode_kl"]


def test_lipgan_eval_reproduces_the_runs_final_evaluation(tmp_path, capsys):
    overrides = digits_overrides(tmp_path, 2, **{"train.eval_at_end": "true", "eval.n_samples": 200})
    run_dir, _ = train(None, overrides)
    assert main(["eval", str(run_dir)]) == 0
    assert main(["eval", str(run_dir), "--seed", "1"]) == 0
    during, again, other_seed = _eval_lines(run_dir)
    assert again["source"] == "lipgan eval" and again["step"] == during["step"] == 2
    for key in ("digits_is", "digits_fid", "digits_is_real", "digits_fid_real"):
        assert again[key] == during[key]
    assert other_seed["digits_fid"] != during["digits_fid"]  # another draw of z
    assert f"{during['digits_fid']:.4g}" in capsys.readouterr().out


def test_evaluations_score_the_ema_generator_not_the_trained_one(tmp_path):
    # decay 0.5 keeps the EMA visibly apart from G after 3 steps (the default 0.999 would too, more slowly)
    overrides = digits_overrides(
        tmp_path, 3, **{"train.eval_at_end": "true", "eval.n_samples": 200, "optim.ema": 0.5}
    )
    run_dir, _ = train(None, overrides)
    (during,) = _eval_lines(run_dir)
    run = load_run(run_dir)
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    for name, value in run.G.state_dict().items():
        assert torch.equal(value, state["ema"][name])
    seed = evaluation_seed(run.cfg)
    ema_metrics = evaluate_generator(run.G, run.cfg, run.dataset, run.device, seed)
    raw_metrics = evaluate_generator(run.G_raw, run.cfg, run.dataset, run.device, seed)
    assert ema_metrics["digits_fid"] == during["digits_fid"]
    assert raw_metrics["digits_fid"] != during["digits_fid"]


def test_digits_run_evaluates_itself_at_the_end(tmp_path):
    run_dir, result = train(
        None, digits_overrides(tmp_path, 2, **{"train.eval_at_end": "true", "eval.n_samples": 200})
    )
    (line,) = _eval_lines(run_dir)
    assert line["step"] == 2
    for key in ("digits_is", "digits_fid", "digits_is_real", "digits_fid_real"):
        assert math.isfinite(line[key])
    assert 1.0 <= line["digits_is"] <= 10.0 and 1.0 <= line["digits_is_real"] <= 10.0
    assert line["digits_fid"] > line["digits_fid_real"] >= 0.0  # 2 steps of training are far from real
    assert result["eval"]["digits_fid"] == line["digits_fid"]


def test_nan_guard_stops_with_the_step_and_quantity(tmp_path, monkeypatch):
    real_step = steps_module.discriminator_step
    calls = {"n": 0}

    def poisoned(parts, real, fake, generator=None):
        stats = real_step(parts, real, fake, generator)
        calls["n"] += 1
        if calls["n"] >= 5:  # third generator step (n_dis = 2)
            stats["d_loss"] = torch.tensor(float("nan"))
        return stats

    monkeypatch.setattr("lipgan.training.trainer.discriminator_step", poisoned)
    with pytest.raises(
        TrainingDivergedError, match=r"step 3: d_loss became non-finite.*last\.pt \(step 2\)$"
    ):
        train(None, toy_overrides(tmp_path, 5, **{"train.ckpt_every": 1}))
    run_dir = next(tmp_path.glob("00000-*"))
    assert torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["step"] == 2


@pytest.fixture
def small_inception(monkeypatch, tmp_path):
    monkeypatch.setattr(
        FeatureExtractorInceptionV3, "INPUT_IMAGE_SIZE", 75
    )  # speed; see test_metrics_inception
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # real-feature cache stays in tmp
    path = tmp_path / "random-inception.pth"
    write_random_inception_weights(path, seed=0)
    return path


def _cifar_overrides(tmp_path, data_root) -> list[str]:
    """One step of the SNGAN CNN on a tiny CIFAR-10 written in its real format."""
    return [
        f"out_dir={tmp_path / 'runs'}",
        f"data.root={data_root}",
        "data.name=cifar10",
        "data.batch_size=4",
        "model.arch=sngan-cnn",
        "train.steps=1",
        "optim.n_dis=1",
        "train.sample_every=0",
        "train.eval_at_end=false",
        "train.plots=false",
    ]


def test_lipgan_eval_on_an_image_run(tmp_path, small_inception, capsys):
    data_root = tmp_path / "data"
    write_fake_cifar10(data_root)
    assert main(["train", *_cifar_overrides(tmp_path, data_root)]) == 0
    run_dir = next((tmp_path / "runs").glob("00000-*"))
    argv = [
        "eval",
        str(run_dir),
        "--protocol",
        "quick",
        "--n-samples",
        "12",
        "--inception-weights",
        str(small_inception),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    (line,) = _eval_lines(run_dir)
    for key in ("is_mean", "is_std", "fid", "kid_mean", "kid_std"):
        assert math.isfinite(line[key]) and key in out
    assert line["n_fake"] == 12 and line["step"] == 1 and line["checkpoint"] == "checkpoints/last.pt"
    assert line["fid"] > 0


def test_missing_inception_weights_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    monkeypatch.delenv("LIPGAN_INCEPTION_WEIGHTS", raising=False)
    data_root = tmp_path / "data"
    write_fake_cifar10(data_root)
    assert main(["train", *_cifar_overrides(tmp_path, data_root)]) == 0
    capsys.readouterr()
    run_dir = next((tmp_path / "runs").glob("00000-*"))
    assert main(["eval", str(run_dir), "--inception-weights", str(tmp_path / "nope.pth")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope.pth" in err[0]
