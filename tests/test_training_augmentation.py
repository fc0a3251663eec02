"""Augmentation of what D sees (docs/methods.md §6.6): the seeded flip, DiffAugment's ops (differentiable,
per sample, the official formulas), where the steps apply them, and the data they are refused on."""

from __future__ import annotations

import pytest
import torch

from conftest import digits_overrides
from lipgan.cli import main
from lipgan.training import session as session_module
from lipgan.training.augmentation import (
    AUGMENTS,
    DIFFAUG_POLICY,
    Augmentation,
    diff_augment,
    rand_brightness,
    rand_contrast,
    rand_cutout,
    rand_saturation,
    rand_translation,
    random_flip,
)
from lipgan.training.trainer import train


def images(n=6, c=3, h=8, w=8, seed=0, dtype=torch.float64):
    return torch.randn(n, c, h, w, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_flip_mirrors_exactly_the_samples_its_seeded_draws_pick():
    x = images(n=1000)
    picked = torch.rand(1000, generator=torch.Generator().manual_seed(7)).lt(0.5)
    out = random_flip(x, torch.Generator().manual_seed(7))
    assert torch.equal(out[picked], x[picked].flip(3)) and torch.equal(out[~picked], x[~picked])
    # p = 0.5: the share of 1000 draws lies within 4 binomial standard deviations (4 · 0.0158) of 0.5
    assert abs(float(picked.double().mean()) - 0.5) < 0.064
    assert torch.equal(out, random_flip(x, torch.Generator().manual_seed(7)))  # the same seed, the same flips


def test_colour_ops_follow_the_official_formulas():
    x = images()
    u = torch.rand(6, 1, 1, 1, generator=torch.Generator().manual_seed(3), dtype=torch.float32).double()
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    torch.testing.assert_close(rand_brightness(x, g()), x + u - 0.5, rtol=0, atol=1e-15)
    mean_c = x.mean(dim=1, keepdim=True)
    torch.testing.assert_close(rand_saturation(x, g()), (x - mean_c) * 2 * u + mean_c, rtol=0, atol=1e-15)
    mean_all = x.mean(dim=(1, 2, 3), keepdim=True)
    expected = (x - mean_all) * (u + 0.5) + mean_all
    torch.testing.assert_close(rand_contrast(x, g()), expected, rtol=0, atol=1e-15)


def test_translation_shifts_with_zero_fill_and_cutout_zeroes_a_half_size_square():
    x = images(n=200, c=1, h=8, w=8) + 10.0  # no zero in the data, so zeros are fill
    shifted = rand_translation(x, torch.Generator().manual_seed(1))
    for i in range(200):  # each output is the input moved by one integer offset in [-1, 1]², zeros outside
        matches = [
            (dy, dx)
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            if torch.equal(shifted[i], _shift(x[i], dy, dx))
        ]
        assert len(matches) == 1
    cut = rand_cutout(x, torch.Generator().manual_seed(1))
    zeros = (cut == 0).flatten(1).sum(1)
    assert int(zeros.max()) == 16  # a 4×4 square inside the image, fewer cells where it is clipped at an edge
    assert int(zeros.min()) >= 4
    assert torch.equal(cut[cut != 0], x[cut != 0])


def _shift(img, dy, dx):
    """`img` [C, H, W] read at (y + dy, x + dx), zero outside: what a translation by (dy, dx) gives."""
    out = torch.zeros_like(img)
    h, w = img.shape[1:]
    ys, xs = slice(max(0, -dy), min(h, h - dy)), slice(max(0, -dx), min(w, w - dx))
    yt, xt = slice(max(0, dy), min(h, h + dy)), slice(max(0, dx), min(w, w + dx))
    out[:, ys, xs] = img[:, yt, xt]
    return out


@pytest.mark.parametrize("op", [*DIFFAUG_POLICY, diff_augment], ids=lambda op: op.__name__)
def test_each_diffaug_op_is_differentiable(op):
    x = images(n=3, c=2, h=6, w=6).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: op(t, torch.Generator().manual_seed(5)), (x,))


@pytest.mark.parametrize("op", [*DIFFAUG_POLICY, diff_augment, random_flip], ids=lambda op: op.__name__)
def test_samples_do_not_interact(op):
    """What a gradient normalization needs of D∘T: sample i of the output depends on sample i alone, so the
    concatenated reals and fakes of one forward are augmented as if each went alone."""
    x = images()
    y = x.clone()
    y[2] += 5.0
    out_x, out_y = op(x, torch.Generator().manual_seed(9)), op(y, torch.Generator().manual_seed(9))
    others = [i for i in range(6) if i != 2]
    assert torch.equal(out_x[others], out_y[others])
    assert not torch.equal(out_x[2], out_y[2])


def test_none_draws_nothing_so_runs_without_augmentation_keep_their_trajectory():
    gen = torch.Generator().manual_seed(0)
    before = gen.get_state()
    none = AUGMENTS.get("none")
    x = images()
    assert none.reals(x, gen) is x and none.d_input(x, gen) is x
    assert torch.equal(gen.get_state(), before)


def test_the_steps_apply_reals_and_d_input_where_the_design_says(tmp_path, monkeypatch):
    seen = []
    real_one = AUGMENTS.get("diffaug")

    def spy(where, transform):
        def wrapped(x, generator):
            seen.append((where, tuple(x.shape)))
            return transform(x, generator)

        return wrapped

    spied = Augmentation("spied", spy("reals", real_one.reals), spy("d_input", real_one.d_input), False)
    registry = type("OneEntry", (), {"get": staticmethod(lambda name: spied)})
    monkeypatch.setattr(session_module, "AUGMENTS", registry)
    train(None, digits_overrides(tmp_path, 1, **{"data.augment": "diffaug"}))
    # batch 8: the D step's reals, then its 8 reals + 8 fakes in one forward, then the G step's 8 fakes
    assert seen == [("reals", (8, 1, 16, 16)), ("d_input", (16, 1, 16, 16)), ("d_input", (8, 1, 16, 16))]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.augment=flip"], "data.augment=flip on the digits: a mirrored digit is not a digit; use none"),
        (["data.name=ring8", "model.arch=mlp2d", "data.augment=diffaug"], "diffaug needs images"),
        (["data.augment=mixup"], "data.augment: unknown augmentation 'mixup'"),
    ],
    ids=["flip_on_digits", "diffaug_on_points", "unknown"],
)
def test_refused_augmentations_are_one_line(tmp_path, capsys, overrides, message):
    assert main(["train", f"out_dir={tmp_path}", *overrides, "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert list(tmp_path.iterdir()) == []
