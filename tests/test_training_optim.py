"""The optimizer and learning-rate schedule registries of lipgan.training.optim (docs/methods.md §6.4): every
entry builds with the configured hyperparameters, the schedules give exact factors, and an unknown name is a
one-line ConfigError listing the valid ones."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from lipgan.errors import ConfigError
from lipgan.training.build import build_optimizer, lr_factor
from lipgan.training.config import Config, OptimConfig, load_config
from lipgan.training.optim import LR_SCHEDULES, OPTIMIZERS
from lipgan.training.validate import validate

# not the defaults, so an ignored setting shows
OPTIONS = OptimConfig(name="adam", betas=[0.25, 0.75], eps=3e-7, rmsprop_alpha=0.8)
LR = 1.5e-3


def _params() -> list[torch.nn.Parameter]:
    return list(torch.nn.Linear(3, 2).parameters())


def test_the_registries_hold_the_documented_names():
    assert OPTIMIZERS.names() == ["adam", "rmsprop"]
    assert LR_SCHEDULES.names() == ["linear", "none"]


def test_adam_takes_lr_betas_and_eps():
    opt = OPTIMIZERS.get("adam")(_params(), LR, OPTIONS)
    group = opt.param_groups[0]
    assert type(opt) is torch.optim.Adam
    assert (group["lr"], group["betas"], group["eps"]) == (LR, (0.25, 0.75), 3e-7)


def test_rmsprop_takes_lr_alpha_and_eps():
    opt = OPTIMIZERS.get("rmsprop")(_params(), LR, OPTIONS)
    group = opt.param_groups[0]
    assert type(opt) is torch.optim.RMSprop
    assert (group["lr"], group["alpha"], group["eps"]) == (LR, 0.8, 3e-7)


@pytest.mark.parametrize("name", ["adam", "rmsprop"])
def test_build_optimizer_uses_the_configured_entry(name):
    cfg = Config()
    cfg.optim = OptimConfig(name=name, betas=[0.25, 0.75], eps=3e-7, rmsprop_alpha=0.8)
    built = build_optimizer(_params(), LR, cfg)
    direct = OPTIMIZERS.get(name)(_params(), LR, cfg.optim)
    assert type(built) is type(direct)
    assert {k: v for k, v in built.param_groups[0].items() if k != "params"} == {
        k: v for k, v in direct.param_groups[0].items() if k != "params"
    }


@pytest.mark.parametrize(("step", "expected"), [(0, 1.0), (25, 0.75), (50, 0.5), (100, 0.0), (130, 0.0)])
def test_linear_decays_to_zero_at_the_last_step(step, expected):
    assert LR_SCHEDULES.get("linear")(step, 100) == expected  # exact: t / T is exact for these
    cfg = Config()
    cfg.optim.lr_decay, cfg.train.steps = "linear", 100
    assert lr_factor(cfg, step) == LR_SCHEDULES.get("linear")(step, 100)


@pytest.mark.parametrize("step", [0, 50, 100])
def test_none_keeps_the_rates(step):
    assert LR_SCHEDULES.get("none")(step, 100) == 1.0
    cfg = Config()
    cfg.train.steps = 100
    assert cfg.optim.lr_decay == "none" and lr_factor(cfg, step) == 1.0


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.name=sgd", "optim.name: unknown optimizer 'sgd'; valid: adam, rmsprop"),
        (
            "optim.lr_decay=cosine",
            "optim.lr_decay: unknown learning-rate schedule 'cosine'; valid: linear, none",
        ),
    ],
)
def test_an_unknown_name_is_a_one_line_config_error(override, message):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert str(info.value) == message


def test_validate_and_the_builders_reject_an_unknown_name():
    cfg = Config()
    cfg.optim.name = "sgd"
    with pytest.raises(ConfigError, match=r"^optim\.name: unknown optimizer 'sgd'"):
        validate(cfg)
    with pytest.raises(ConfigError, match=r"^unknown optimizer 'sgd'"):  # no silent fall-back to Adam
        build_optimizer(_params(), LR, cfg)
    cfg.optim.lr_decay = "cosine"
    with pytest.raises(ConfigError, match=r"^unknown learning-rate schedule 'cosine'"):
        lr_factor(cfg, 0)


def test_the_cli_and_the_config_still_import_without_torch():
    """The rules reach the registries only when they run, so `lipgan --help` stays fast."""
    code = "import sys, lipgan.cli, lipgan.training.config; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False", result.stderr
