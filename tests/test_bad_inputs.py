"""Bad input of every kind stops before any compute: exit status 2, one line `lipgan <command>: error: ...`
on stderr, no traceback, and no run directory left behind.

Config values go through `lipgan train --dry-run` (the same `load_config` and dataset checks as training,
without training); a few cases train for real to show that no run directory appears. CLI flags of
sample/eval/probe/train run against one tiny finished toy run made once for the module.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch

from conftest import toy_overrides
from lipgan.cli import main
from lipgan.data import get_dataset
from lipgan.errors import ConfigError
from lipgan.nets import GanPair
from lipgan.training import build
from lipgan.training.config import Config, load_config
from lipgan.training.trainer import train
from lipgan.training.validate import RULES, leaves


def _cases(keys: list[str], values: dict[str, str]) -> dict[str, list[str]]:
    """`{"<key> <label>": ["<key>=<value>"]}` for every key and labelled bad value."""
    return {f"{key} {label}": [f"{key}={value}"] for key in keys for label, value in values.items()}


NOT_NUMBERS = {"as a word": "fast", "as a list": "[0.1]", "as a bool": "true", "as a mapping": "{a: 1}"}
NOT_INTEGERS = {
    "fractional": "2.5",
    "as a word": "many",
    "as a bool": "true",
    "as a list": "[1]",
    "nan": ".nan",
}

CONFIG_CASES: dict[str, list[str]] = {
    **_cases(
        [
            "optim.lr_g",
            "optim.lr_d",
            "optim.eps",
            "constraint.tau",
            "constraint.spectral_scale",
            "constraint.output_scale",
            "loss.domain_scale",
        ],
        {"zero": "0", "negative": "-1e-3", "nan": ".nan", "inf": ".inf", "-inf": "-.inf", **NOT_NUMBERS},
    ),
    **_cases(
        ["constraint.eps", "penalty.weight", "penalty.center", "cr.weight"],
        {"negative": "-1", "nan": ".nan", "inf": ".inf", "inf as text": "inf", "as a bool": "false"},
    ),
    **_cases(
        ["cr.max_shift", "optim.ema", "optim.rmsprop_alpha"],
        {"negative": "-0.1", "one": "1", "above one": "2.5", "nan": ".nan", "inf": ".inf", "as a word": "x"},
    ),
    **_cases(
        ["optim.n_dis", "train.steps", "train.grid_size", "constraint.n_power_iterations", "eval.batch_size"],
        {"zero": "0", "negative": "-1", "inf": ".inf", **NOT_INTEGERS},
    ),
    **_cases(
        [
            "train.log_every",
            "train.sample_every",
            "train.ckpt_every",
            "train.eval_every",
            "train.probe_every",
            "optim.ema_start",
            "data.num_workers",
        ],
        {"negative": "-5", "fractional": "0.5", "as a word": "often", "as a bool": "true"},
    ),
    **_cases(
        ["seed"],
        {"negative": "-1", "2**31": str(2**31), "1e30": "1e30", "fractional": "0.5", "as a bool": "true"},
    ),
    **_cases(["data.batch_size"], {"one": "1", "zero": "0", "negative": "-8", "as a word": "big"}),
    **_cases(["data.resolution"], {"zero": "0", "negative": "-16", "unsupported": "20", "as a list": "[16]"}),
    **_cases(["eval.n_samples"], {"negative": "-5", "one": "1", "as a word": "all", "nan": ".nan"}),
    **_cases(
        ["optim.betas"],
        {
            "one number": "[0.5]",
            "three numbers": "[0.5, 0.9, 0.99]",
            "strings": "[a, b]",
            "numeric strings": "['0.5', '0.9']",
            "beta one": "[1.0, 0.9]",
            "negative": "[-0.1, 0.9]",
            "nan": "[.nan, 0.9]",
            "bools": "[true, false]",
            "a scalar": "0.5",
            "nested": "[[0.5], [0.9]]",
        },
    ),
    **_cases(
        ["data.download", "constraint.generator_fast_path", "cr.flip", "train.eval_at_end", "train.plots"],
        {"as a word": "perhaps", "as a number": "2"},
    ),
    **_cases(
        ["data.name", "model.arch", "loss.name", "penalty.at", "constraint.gradnorm", "constraint.spectral"],
        {"unknown": "bogus", "as a list": "[bogus]"},
    ),
    **_cases(
        ["optim.name", "optim.lr_decay", "constraint.spectral_gamma", "eval.generator_mode"],
        {"unknown": "bogus"},
    ),
    **_cases(["eval.protocol"], {"unknown": "bogus", "as a number": "3", "empty": ""}),
    **_cases(
        ["device"], {"unknown": "tpu", "cuda:x": "cuda:x", "cuda:-1": "cuda:-1", "empty": "", "gpu0": "gpu0"}
    ),
    **_cases(["out_dir", "data.root", "data.split", "eval.inception_weights"], {"empty": ""}),
    **_cases(["data.split"], {"unknown": "bogus"}),
    **_cases(["name"], {"with a space": "'a b'", "with a slash": "a/b", "empty": "", "too long": "n" * 201}),
    **_cases(["model.options", "data.options"], {"a number": "3", "a list": "[1]", "number keys": "{1: 2}"}),
    "optim.lr_d too large for a float": ["optim.lr_d=1" + "0" * 400],
    "seed too large for a float": ["seed=1" + "0" * 400],
    "seed of 5000 digits": ["seed=1" + "0" * 5000],
    "seed as an impossible date": ["seed=2020-13-45"],
    "unknown arch option": ["model.options.depth=3"],
    "bad arch option value": ["model.options.d_width=0"],
    "unknown dataset option": ["data.options.foo=1"],
    "unknown top-level key": ["lr=0.1"],
    "unknown key in a section": ["optim.learning_rate=0.1"],
    "unknown section": ["optimizer.lr=0.1"],
    "section given a value": ["optim=3"],
    "key under a value": ["optim.lr_d.x=1"],
    "two overrides that conflict": ["optim.lr_d=1e-3", "optim.lr_d.x=2"],
    "empty override key": ["=1"],
    "stray word after an override": ["optim.lr_d=1e-3", "steps"],
    "unclosed list in an override": ["optim.betas=[0.5"],
    "spectral_gamma without spectral": ["constraint.gradnorm=null", "constraint.spectral_gamma=same"],
    "mlp2d arch on the digits": ["model.arch=mlp2d"],
    "digits-cnn arch on a 2-D ring": ["data.name=ring8"],
    "sngan-cnn arch on the digits": ["model.arch=sngan-cnn"],
    "G with 3 channels on 1-channel digits": ["model.options.channels=3"],
    "G at 32 pixels on 16-pixel digits": ["model.options.resolution=32"],
    "inception protocol on the digits": ["eval.protocol=gran"],
    "inception protocol on 2-D points": ["data.name=ring8", "model.arch=mlp2d", "eval.protocol=quick"],
}

YAML_FILES = {  # file name -> content (None: not written); `train --dry-run <file>`
    "invalid yaml": ("bad.yaml", "data: [unclosed\n"),
    "yaml list at the top level": ("list.yaml", "- 1\n- 2\n"),
    "yaml scalar at the top level": ("scalar.yaml", "3\n"),
    "yaml with a tab indent": ("tab.yaml", "optim:\n\tlr_d: 1\n"),
    "yaml not utf-8": ("latin.yaml", b"name: caf\xe9\n"),
    "yaml unknown key": ("unknown.yaml", "optim: {learning_rate: 0.1}\n"),
    "yaml unknown section": ("section.yaml", "optimizer: {lr: 0.1}\n"),
    "yaml number keys": ("numbers.yaml", "1: 2\nname: x\n"),
    "yaml section as a list": ("sectionlist.yaml", "optim: [1, 2]\n"),
    "yaml bad value": ("value.yaml", "optim: {lr_d: -1}\n"),
    "yaml nan value": ("nan.yaml", "penalty: {weight: .nan}\n"),
    "yaml impossible date": ("date.yaml", "name: 2020-13-45\n"),
    "yaml integer of 5000 digits": ("long.yaml", "seed: 1" + "0" * 5000 + "\n"),
    "missing config file": ("missing.yaml", None),
    "config name found nowhere": ("no_such_config", None),
}


def _invoke(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exit_info:  # argparse's own errors exit
        code = exit_info.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")} if folder.exists() else set()


def assert_one_line_error(argv: list[str], capsys, watched: Path) -> str:
    """Exit 2, exactly one non-empty line on stderr naming the command, no traceback, and nothing new
    under `watched`; returns the line."""
    before = _tree(watched)
    code, out, err = _invoke(argv, capsys)
    assert code == 2, (code, out, err)
    assert err.count("\n") == 1 and err.endswith("\n") and err.strip(), err
    assert err.startswith(f"lipgan {argv[0]}: error: "), err
    assert "Traceback" not in out + err
    assert not re.search(r'File ".*", line \d+', out), out
    assert _tree(watched) == before, _tree(watched) - before
    return err


@pytest.mark.parametrize("overrides", CONFIG_CASES.values(), ids=CONFIG_CASES.keys())
def test_bad_config_value_fails_the_dry_run(overrides, tmp_path, capsys):
    out = tmp_path / "runs"
    assert_one_line_error(["train", "--dry-run", f"out_dir={out}", *overrides], capsys, tmp_path)
    assert not out.exists()


@pytest.mark.parametrize("case", YAML_FILES, ids=YAML_FILES.keys())
def test_bad_config_file_fails(case, tmp_path, capsys):
    name, content = YAML_FILES[case]
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content)
    elif content is not None:
        path.write_bytes(content)
    assert_one_line_error(["train", "--dry-run", str(path)], capsys, tmp_path)


def test_a_directory_given_as_config_fails(tmp_path, capsys):
    err = assert_one_line_error(["train", str(tmp_path)], capsys, tmp_path)
    assert "is a directory" in err


TRAIN_CASES = {  # real `lipgan train` (no --dry-run): the error comes before the run directory
    "lr_d inf": ["optim.lr_d=.inf"],
    "betas strings": ["optim.betas=[a, b]"],
    "grid_size zero": ["train.grid_size=0"],
    "seed negative": ["seed=-1"],
    "eval protocol unknown": ["eval.protocol=bogus"],
    "digits-cnn arch on a 2-D ring": ["model.arch=digits-cnn"],
    "inception protocol on 2-D points": ["eval.protocol=gran"],
    "device that does not exist": ["device=cuda:99"],
    "missing real dataset files": [
        "data.name=cifar10",
        "data.root=<tmp>/nowhere",
        "data.options={}",
        "model.arch=sngan-cnn",
    ],
    "dataset option out of range": ["data.options={n: 0}"],
}


@pytest.mark.parametrize("overrides", TRAIN_CASES.values(), ids=TRAIN_CASES.keys())
def test_bad_config_value_creates_no_run_directory(overrides, tmp_path, capsys):
    out = tmp_path / "runs"
    overrides = [item.replace("<tmp>", str(tmp_path)) for item in overrides]
    assert_one_line_error(["train", *toy_overrides(out, 1), *overrides], capsys, tmp_path)
    assert not out.exists() or not any(out.iterdir())


def make_runs(root: Path) -> dict[str, Path]:
    """A finished 1-step toy run and damaged copies of it: without config.yaml, without last.pt, with a
    config that is not YAML and with one holding a bad value; the paths of a missing run and of a file."""
    run_dir, _ = train(None, toy_overrides(root / "runs", 1, **{"train.ckpt_every": 1}), progress=False)
    variants = {"run": run_dir, "missing": root / "missing_run", "file": root / "a_file"}
    variants["file"].write_text("not a run\n")
    for name, damage in {
        "no-config": lambda d: (d / "config.yaml").unlink(),
        "no-ckpt": lambda d: (d / "checkpoints" / "last.pt").unlink(),
        "bad-yaml": lambda d: (d / "config.yaml").write_text("data: [unclosed\n"),
        "bad-value": lambda d: (d / "config.yaml").write_text("optim: {lr_d: -1}\n"),
    }.items():
        copy = Path(shutil.copytree(run_dir, root / name))
        damage(copy)
        variants[name] = copy
    (root / "a_dir").mkdir()
    (root / "a_dir.png").mkdir()
    variants["root"] = root
    return variants


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    return make_runs(tmp_path_factory.mktemp("bad_inputs"))


RUNS = ["missing", "file", "no-config", "no-ckpt", "bad-yaml", "bad-value"]
RUN_COMMANDS = {
    "sample": ["sample", "<r>"],
    "eval": ["eval", "<r>"],
    "probe": ["probe", "<r>", "--kind", "grad-norms"],
    "train --resume": ["train", "--resume", "<r>"],
    "train --dry-run --resume": ["train", "--dry-run", "--resume", "<r>"],
}
FLAG_CASES = {
    **{
        f"{command} of a {r} run": [item.replace("<r>", f"<{r}>") for item in argv]
        for command, argv in RUN_COMMANDS.items()
        for r in RUNS
    },
    "sample --n 0": ["sample", "<run>", "--n", "0"],
    "sample --n -1": ["sample", "<run>", "--n", "-1"],
    "sample --n not a number": ["sample", "<run>", "--n", "x"],
    "sample --seed -1": ["sample", "<run>", "--seed", "-1"],
    "sample --seed 2**31": ["sample", "<run>", "--seed", str(2**31)],
    "sample --seed fractional": ["sample", "<run>", "--seed", "1.5"],
    "sample --device bogus": ["sample", "<run>", "--device", "bogus"],
    "sample --device cuda:x": ["sample", "<run>", "--device", "cuda:x"],
    "sample --device cuda:99": ["sample", "<run>", "--device", "cuda:99"],
    "sample --device empty": ["sample", "<run>", "--device", ""],
    "sample --out under a missing folder": ["sample", "<run>", "--out", "<root>/nowhere/grid.png"],
    "sample --out under a file": ["sample", "<run>", "--out", "<file>/grid.png"],
    "sample --out an existing directory": ["sample", "<run>", "--out", "<root>/a_dir"],
    "sample --out whose png is a directory": ["sample", "<run>", "--out", "<root>/a_dir.jpg"],
    "sample --which bogus": ["sample", "<run>", "--which", "bogus"],
    "sample unknown flag": ["sample", "<run>", "--frobnicate"],
    "sample without a run": ["sample"],
    "eval --n-samples -3": ["eval", "<run>", "--n-samples", "-3"],
    "eval --n-samples 0": ["eval", "<run>", "--n-samples", "0"],
    "eval --n-samples 1": ["eval", "<run>", "--n-samples", "1"],
    "eval --n-samples not a number": ["eval", "<run>", "--n-samples", "many"],
    "eval --protocol bogus": ["eval", "<run>", "--protocol", "bogus"],
    "eval --protocol empty": ["eval", "<run>", "--protocol", ""],
    "eval --protocol gran on 2-D points": ["eval", "<run>", "--protocol", "gran"],
    "eval --seed -1": ["eval", "<run>", "--seed", "-1"],
    "eval --inception-weights missing": ["eval", "<run>", "--inception-weights", "<root>/nope.pth"],
    "eval --inception-weights a directory": ["eval", "<run>", "--inception-weights", "<root>/a_dir"],
    "eval --inception-weights empty": ["eval", "<run>", "--inception-weights", ""],
    "eval --device bogus": ["eval", "<run>", "--device", "bogus"],
    "eval --device cuda:99": ["eval", "<run>", "--device", "cuda:99"],
    "eval --which bogus": ["eval", "<run>", "--which", "bogus"],
    "probe --n 0": ["probe", "<run>", "--kind", "grad-norms", "--n", "0"],
    "probe --n -1": ["probe", "<run>", "--kind", "grad-norms", "--n", "-1"],
    "probe --kind bogus": ["probe", "<run>", "--kind", "bogus"],
    "probe --kind list with a bogus one": ["probe", "<run>", "--kind", "grad-norms,bogus"],
    "probe --kind empty": ["probe", "<run>", "--kind", ""],
    "probe --kind that does not apply": ["probe", "<run>", "--kind", "sn-ratio"],
    "probe without --kind": ["probe", "<run>"],
    "probe --device bogus": ["probe", "<run>", "--kind", "grad-norms", "--device", "bogus"],
    "probe --device cuda:99": ["probe", "<run>", "--kind", "grad-norms", "--device", "cuda:99"],
    "train --stop-after -1": ["train", "--stop-after", "-1", "train.steps=1", "out_dir=<root>/runs"],
    "train --stop-after 0": ["train", "--stop-after", "0", "train.steps=1", "out_dir=<root>/runs"],
    "train --resume with a config too": ["train", "digits_grand", "--resume", "<run>"],
    "train --resume with a bad override": ["train", "--resume", "<run>", "train.steps=0"],
    "train --resume with --stop-after 0": ["train", "--resume", "<run>", "--stop-after", "0"],
    "train unknown flag": ["train", "--frobnicate"],
}


@pytest.mark.parametrize("argv", FLAG_CASES.values(), ids=FLAG_CASES.keys())
def test_bad_flag_or_run_fails(argv, runs, capsys):
    filled = []
    for item in argv:
        for name, path in runs.items():
            item = item.replace(f"<{name}>", str(path))
        filled.append(item)
    assert_one_line_error(filled, capsys, runs["root"])


def test_every_config_field_has_a_rule():
    assert [key for key, _ in leaves(Config())] == list(RULES)


GOOD_EDGES = {  # the boundary values themselves are allowed
    "ema 0 and betas [0, 0]": ["optim.ema=0", "optim.betas=[0, 0]"],
    "largest seed": [f"seed={2**31 - 1}"],
    "eval.n_samples 2": ["eval.n_samples=2"],
    "intervals 0": ["train.log_every=0", "train.ckpt_every=0", "optim.ema_start=0"],
    "cuda:0 (resolved only when training)": ["device=cuda:0"],
    "penalty centre and weight 0": ["penalty.center=0", "penalty.weight=0", "constraint.eps=0"],
}


@pytest.mark.parametrize("overrides", GOOD_EDGES.values(), ids=GOOD_EDGES.keys())
def test_boundary_values_pass_the_dry_run(overrides, capsys):
    assert _invoke(["train", "--dry-run", *overrides], capsys)[0] == 0


def _meta_pair_with(make_D) -> tuple[Config, object, GanPair]:
    """The ring8 config and dataset, and its mlp2d G paired with the D `make_D()`, on the meta device."""
    cfg = load_config(None, ["data.name=ring8", "model.arch=mlp2d"])
    dataset = get_dataset("ring8")
    with torch.device("meta"):
        pair = GanPair(build.build_pair(cfg, dataset).G, make_D())
    return cfg, dataset, pair


class _TwoScores(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Linear(2, 2)

    def forward(self, x):
        return self.net(x)  # [B, 2]: not one score per sample


def test_a_discriminator_with_several_outputs_per_sample_does_not_fit(monkeypatch):
    cfg, dataset, pair = _meta_pair_with(_TwoScores)
    monkeypatch.setattr(build, "build_pair", lambda cfg, dataset: pair)
    with pytest.raises(ConfigError, match=r"D gives \[2, 2\] for 2 samples, not one score per sample$"):
        build.check_model_fits_data(cfg, dataset)


def test_a_discriminator_that_fails_on_the_samples_does_not_fit(monkeypatch):
    cfg, dataset, pair = _meta_pair_with(lambda: torch.nn.Linear(3, 1))
    monkeypatch.setattr(build, "build_pair", lambda cfg, dataset: pair)
    with pytest.raises(
        ConfigError, match=r"^model.arch=mlp2d does not fit data.name=ring8 \(samples \[2\]\): "
    ):
        build.check_model_fits_data(cfg, dataset)
