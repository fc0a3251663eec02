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
from lipgan.metrics.evaluators import EvaluatorSpec
from lipgan.training import steps as steps_module
from lipgan.training.build import build_dataset
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
    assert all(line["checkpoint"] == "checkpoints/last.pt" for line in lines)
    best = min(lines, key=lambda line: line["mode_kl"])  # the first of equal ones: only a better one moves it
    best_state = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)
    assert (best_state["best"], best_state["step"]) == (best["mode_kl"], best["step"])
    assert [line.get("best", False) for line in lines] == [line is best for line in lines]
    # each recorded line is exactly the metrics of its checkpoint's (EMA) generator
    for which, line in (("last", lines[-1]), ("best", best)):
        run = load_run(run_dir, which)
        again = evaluate_generator(run.G, run.cfg, run.dataset, run.device, evaluation_seed(run.cfg))
        assert set(again) == {"modes_covered", "hq_fraction", "mode_kl"}
        assert again == {key: line[key] for key in again}


class PointsG(torch.nn.Module):
    """A stand-in generator that returns fixed points, cycling through them, whatever z is."""

    z_dim = 2

    def __init__(self, points: torch.Tensor):
        super().__init__()
        self.points = points

    def sample_z(self, n, generator=None, device=None):
        return torch.randn(n, self.z_dim, generator=generator)

    def forward(self, z):
        return self.points.repeat(len(z) // len(self.points) + 1, 1)[: len(z)]


@pytest.mark.parametrize(
    ("placement", "expected"),
    [
        ("one mode", {"modes_covered": 1, "hq_fraction": 1.0, "mode_kl": math.log(8)}),
        ("every mode", {"modes_covered": 8, "hq_fraction": 1.0, "mode_kl": 0.0}),
        ("half off", {"modes_covered": 4, "hq_fraction": 0.5, "mode_kl": math.log(2)}),
    ],
)
def test_evaluating_a_toy_generator_gives_the_known_values(tmp_path, placement, expected):
    cfg = load_config(None, toy_overrides(tmp_path, 1, **{"eval.n_samples": 800}))
    dataset = build_dataset(cfg)
    centers = dataset.centers.double()  # [8, 2]
    points = {
        "one mode": centers[3:4],
        "every mode": centers,
        # modes 0, 2, 4, 6 hit, and as many points 5σ beside modes 1, 3, 5, 7 (outside the 3σ radius)
        "half off": torch.cat([centers[0::2], centers[1::2] + torch.tensor([5 * dataset.std, 0.0])]),
    }[placement]
    metrics = evaluate_generator(PointsG(points.float()), cfg, dataset, torch.device("cpu"), seed=0)
    assert metrics["modes_covered"] == expected["modes_covered"]
    assert metrics["hq_fraction"] == expected["hq_fraction"]
    torch.testing.assert_close(metrics["mode_kl"], expected["mode_kl"], rtol=0.0, atol=1e-12)


class SignPickerG(torch.nn.Module):
    """A stand-in generator that puts each sample on mode 0 or mode 4 by the sign of its latent."""

    z_dim = 1

    def __init__(self, centers: torch.Tensor):
        super().__init__()
        self.centers = centers

    def sample_z(self, n, generator=None, device=None):
        return torch.randn(n, self.z_dim, generator=generator)

    def forward(self, z):
        return self.centers[(z[:, 0] > 0).long() * 4]


@pytest.mark.parametrize("seed", [3, 5])  # not 0: the global RNG starts at seed 0 in every test
def test_evaluation_draws_z_from_its_seed(tmp_path, seed):
    n = 64
    cfg = load_config(None, toy_overrides(tmp_path, 1, **{"eval.n_samples": n}))
    dataset = build_dataset(cfg)
    metrics = evaluate_generator(SignPickerG(dataset.centers), cfg, dataset, torch.device("cpu"), seed)
    z = torch.randn(n, 1, generator=torch.Generator().manual_seed(seed))
    share = float((z > 0).double().mean())  # of the samples on mode 4; the rest are on mode 0
    assert 0 < share < 1
    expected = share * math.log(8 * share) + (1 - share) * math.log(8 * (1 - share))
    assert metrics["modes_covered"] == 2 and metrics["hq_fraction"] == 1.0
    torch.testing.assert_close(metrics["mode_kl"], expected, rtol=1e-12, atol=0.0)


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

    def poisoned(parts, real, fake, *args):
        stats = real_step(parts, real, fake, *args)
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
    assert line["n_fake"] == 12 and line["n_real"] == 10  # the tiny CIFAR-10 has 10 train images
    assert line["step"] == 1 and line["checkpoint"] == "checkpoints/last.pt"
    # the line is exactly the metrics of the run's generator under the same settings and seed
    run = load_run(run_dir)
    run.cfg.eval.protocol, run.cfg.eval.n_samples = "quick", 12
    run.cfg.eval.inception_weights = str(small_inception)
    again = evaluate_generator(run.G, run.cfg, run.dataset, run.device, evaluation_seed(run.cfg))
    assert again == {key: line[key] for key in again}


class ImagesG(torch.nn.Module):
    """A stand-in generator that returns the given images in order, whatever z is."""

    z_dim = 4

    def __init__(self, images: torch.Tensor):
        super().__init__()
        self.images, self.position = images, 0

    def sample_z(self, n, generator=None, device=None):
        return torch.zeros(n, self.z_dim)

    def forward(self, z):
        batch = self.images[self.position : self.position + len(z)]
        self.position += len(z)
        return batch


def test_a_generator_that_returns_the_real_images_has_zero_fid(tmp_path, small_inception):
    data_root = tmp_path / "data"
    write_fake_cifar10(data_root)
    cfg = load_config(None, _cifar_overrides(tmp_path, data_root))
    cfg.eval.protocol, cfg.eval.inception_weights = "quick", str(small_inception)
    dataset = build_dataset(cfg)
    real = torch.stack([dataset[i][0] for i in range(len(dataset))])  # [10, 3, 32, 32] in [−1, 1]
    cfg.eval.n_samples = len(real)
    metrics = evaluate_generator(ImagesG(real), cfg, dataset, torch.device("cpu"), seed=0)
    assert metrics["n_fake"] == metrics["n_real"] == len(real) == 10
    # the same images give the same pool3 features: FID 0 up to the float32 features' round-off
    torch.testing.assert_close(metrics["fid"], 0.0, rtol=0.0, atol=1e-9)


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


class BatchStatsG(torch.nn.Module):
    """A 2-D 'generator' whose output is batch-norm of z ~ N(3, 0.5²): train mode normalizes each batch by
    its own statistics, eval mode uses the running ones (mean 3, variance 1)."""

    def __init__(self):
        super().__init__()
        self.bn = torch.nn.BatchNorm1d(2, affine=False)
        self.bn.running_mean.fill_(3.0)

    def sample_z(self, n, generator=None, device=None):
        return torch.randn(n, 2, generator=generator) * 0.5 + 3.0

    def forward(self, z):
        return self.bn(z)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_generator_mode_decides_batch_norm_statistics_and_leaves_g_unchanged(tmp_path, monkeypatch, mode):
    cfg = load_config(None, toy_overrides(tmp_path, 1, **{"eval.generator_mode": mode}))
    seen = {}

    def spy(sample_fn, dataset, n_samples, **options):
        seen["x"] = sample_fn(n_samples)
        return {"mode_kl": 0.0}

    G = BatchStatsG()
    before = [b.clone() for b in G.buffers()]
    G.train(True)
    monkeypatch.setattr(
        "lipgan.training.evaluation.EVALUATORS.get",
        lambda kind: EvaluatorSpec(spy, "mode_kl", True, 512),
    )
    points = type("Points", (), {"kind": "points", "name": "ring8"})()
    evaluate_generator(G, cfg, points, torch.device("cpu"), seed=0)
    x = seen["x"]
    if mode == "train":  # each batch normalized by its own statistics: mean 0, biased std 1
        # float32 sums of 512 values of size ~3 round at ~512 · 6e-8 · 3 ≈ 1e-4 at worst; BN's eps 1e-5 over
        # the batch variance 0.25 lowers the variance by 4e-5
        torch.testing.assert_close(x.mean(0), torch.zeros(2), atol=5e-5, rtol=0)
        torch.testing.assert_close(x.var(0, unbiased=False), torch.ones(2), atol=1e-4, rtol=0)
    else:  # running mean 3, variance 1: z - 3, whose std is 0.5
        torch.testing.assert_close(x.mean(0), torch.zeros(2), atol=0.1, rtol=0)
        torch.testing.assert_close(x.std(0), torch.full((2,), 0.5), atol=0.05, rtol=0)
    assert G.training  # put back as it was
    assert all(torch.equal(a, b) for a, b in zip(before, G.buffers()))
