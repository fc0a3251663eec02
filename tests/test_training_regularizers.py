"""The regularizer registry of lipgan.training.regularizers (docs/methods.md §6.1): each entry reads its own
config section and nothing else, is bound to that section once per run, and adds its exact value to the D
step: the penalty of §4.1 on the network output, the consistency term of §6.2."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from lipgan.constraints.critic import build_critic
from lipgan.constraints.penalty import gradient_penalty
from lipgan.losses import get_loss
from lipgan.training.augment import consistency_augment
from lipgan.training.config import Config, ConsistencyConfig, PenaltyConfig
from lipgan.training.regularizers import REGULARIZERS, DStepBatch, active_regularizers
from lipgan.training.steps import StepParts, discriminator_step

# not the defaults, so an ignored setting shows
PENALTY = PenaltyConfig(weight=2.0, center=0.5, at="real+fake")
CR = ConsistencyConfig(weight=2.5, max_shift=0.25, flip=True)
SECTIONS = {"penalty": PENALTY, "consistency": CR}
READS = {"penalty": {"weight", "center", "at"}, "consistency": {"weight", "max_shift", "flip"}}


class OnlyFields:
    """One section's values, read field by field and recorded; any other name raises AttributeError, so a
    term that reached for the rest of the config would fail here."""

    def __init__(self, section):
        self._section, self._fields, self.read = section, {f.name for f in dataclasses.fields(section)}, set()

    def __getattr__(self, name: str):
        if name not in self._fields:
            raise AttributeError(f"{name!r} is not a key of {type(self._section).__name__}")
        self.read.add(name)
        return getattr(self._section, name)


def tiny_d() -> nn.Module:
    """[B, 1, 8, 8] -> [B, 1], float64, fixed weights."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(192, 1)
    ).double()


def reals_and_fakes(seed: int = 1, n: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(n, 1, 8, 8, generator=gen, dtype=torch.float64) for _ in range(2))


def d_step_batch(critic, real, fake, seed: int = 7) -> DStepBatch:
    scores = critic(torch.cat([real, fake]), mode="full")
    return DStepBatch(real, fake, scores, torch.Generator().manual_seed(seed))


def test_each_entry_names_a_section_of_the_config():
    assert REGULARIZERS.names() == ["consistency", "penalty"]
    assert {name: REGULARIZERS.get(name).section for name in REGULARIZERS} == {
        "consistency": "cr",
        "penalty": "penalty",
    }
    sections = {f.name for f in dataclasses.fields(Config)}
    assert all(REGULARIZERS.get(name).section in sections for name in REGULARIZERS)


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_a_term_reads_only_its_own_section(name):
    reg = REGULARIZERS.get(name)
    D = tiny_d()
    critic = build_critic(D, Config().constraint)
    real, fake = reals_and_fakes()
    options = OnlyFields(SECTIONS[name])
    assert reg.enabled(options)
    value = reg.term(options, D, critic, d_step_batch(critic, real, fake))
    assert value.shape == () and torch.isfinite(value) and value > 0
    assert options.read == READS[name]


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_weight_zero_disables_a_term(name):
    assert not REGULARIZERS.get(name).enabled(dataclasses.replace(SECTIONS[name], weight=0.0))


def test_active_regularizers_bind_each_enabled_entry_to_its_section():
    # an object with the two sections only: nothing else of a config is looked at
    only_penalty = SimpleNamespace(penalty=PENALTY, cr=ConsistencyConfig())
    (active,) = active_regularizers(only_penalty)
    assert active.name == "penalty" and active.options is PENALTY
    both = active_regularizers(SimpleNamespace(penalty=PENALTY, cr=CR))
    assert [(reg.name, reg.options) for reg in both] == [("consistency", CR), ("penalty", PENALTY)]
    assert active_regularizers(Config()) == []  # both weights are 0 by default


def test_the_penalty_term_is_the_weighted_penalty_on_the_network_output():
    D = tiny_d()
    critic = build_critic(D, dataclasses.replace(Config().constraint, gradnorm="gn"))
    real, fake = reals_and_fakes()
    options = PenaltyConfig(weight=2.0, center=0.5, at="interpolates")
    value = REGULARIZERS.get("penalty").term(options, D, critic, d_step_batch(critic, real, fake, seed=3))
    expected = 2.0 * gradient_penalty(D, real, fake, 0.5, "interpolates", torch.Generator().manual_seed(3))
    assert torch.equal(value, expected)  # the same draw of ε and the same arithmetic


def test_the_d_step_adds_both_terms_with_their_exact_values():
    cfg = Config()
    cfg.constraint.gradnorm = None  # D̂ = f, so the CR term has a closed form here
    cfg.penalty = dataclasses.replace(PENALTY, at="real")  # no draw: CR's T is the only user of the RNG
    cfg.cr = CR
    D = tiny_d()
    critic = build_critic(D, cfg.constraint)
    parts = StepParts(
        cfg=cfg,
        G=nn.Identity(),
        D=D,
        d_net=D,
        critic=critic,
        g_critic=critic,
        loss=get_loss(cfg.loss.name),
        opt_d=torch.optim.SGD(D.parameters(), lr=0.0),  # lr 0: D stays as it is for the expected values
        opt_g=torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.0),
        regularizers=active_regularizers(cfg),
    )
    real, fake = reals_and_fakes(seed=2)
    stats = discriminator_step(parts, real, fake, torch.Generator().manual_seed(5))
    augmented = consistency_augment(real, CR.max_shift, CR.flip, torch.Generator().manual_seed(5))
    with torch.no_grad():
        cr = CR.weight * (D(augmented) - D(real)).square().mean()
    penalty = PENALTY.weight * gradient_penalty(D, real, fake, PENALTY.center, "real")
    torch.testing.assert_close(stats["d_consistency"], cr, rtol=1e-12, atol=0.0)
    torch.testing.assert_close(stats["d_penalty"], penalty.detach(), rtol=1e-12, atol=0.0)
    torch.testing.assert_close(
        stats["d_total"], stats["d_loss"] + cr + penalty.detach(), rtol=1e-12, atol=0.0
    )
