"""The command line: --help everywhere, and a one-line error with a non-zero exit for each user mistake."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import toy_overrides
from lipgan.cli import main

COMMANDS = ["train", "sample", "eval", "probe"]


@pytest.mark.parametrize("command", [[], *[[c] for c in COMMANDS]])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: lipgan" in capsys.readouterr().out


def _bad_invocations(tmp_path):
    not_a_run = tmp_path / "empty_dir"
    not_a_run.mkdir()
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("data: [unclosed\n")
    list_yaml = tmp_path / "list.yaml"
    list_yaml.write_text("- 1\n- 2\n")
    unknown_yaml = tmp_path / "unknown.yaml"
    unknown_yaml.write_text("optim: {learning_rate: 0.1}\n")
    return {
        "unknown command": ["fly"],
        "no command": [],
        "unknown flag": ["train", "--frobnicate"],
        "missing config file": ["train", str(tmp_path / "nope.yaml")],
        "invalid yaml": ["train", str(bad_yaml)],
        "yaml not a mapping": ["train", str(list_yaml)],
        "unknown nested key in yaml": ["train", str(unknown_yaml)],
        "unknown top-level key": ["train", "lr=0.1"],
        "unknown section key": ["train", "optim.learning_rate=0.1"],
        "override without =": ["train", "toy.yaml", "steps"],
        "bad int": ["train", "train.steps=many"],
        "fractional int": ["train", "train.steps=2.5"],
        "bad bool": ["train", "data.download=perhaps"],
        "unknown dataset": ["train", "data.name=imagenet"],
        "unknown arch": ["train", "model.arch=vit"],
        "unknown loss": ["train", "loss.name=hinge2"],
        "unknown gradnorm": ["train", "constraint.gradnorm=gnx"],
        "unknown spectral": ["train", "constraint.spectral=sn2"],
        "gamma without spectral": ["train", "constraint.gradnorm=null", "constraint.spectral_gamma=same"],
        "negative domain scale": ["train", "loss.domain_scale=-1"],
        "zero n_dis": ["train", "optim.n_dis=0"],
        "bad betas": ["train", "optim.betas=[0.5]"],
        "bad optimizer": ["train", "optim.name=sgd"],
        "bad device": ["train", "device=tpu"],
        "unknown arch option": ["train", "model.options={depth: 3}"],
        "bad resolution": ["train", "data.resolution=20"],
        "missing real dataset": [
            "train",
            f"data.root={tmp_path}",
            "data.name=cifar10",
            "model.arch=sngan-cnn",
        ],
        "resume not a run": ["train", "--resume", str(not_a_run)],
        "sample not a run": ["sample", str(not_a_run)],
        "eval missing run": ["eval", str(tmp_path / "missing_run")],
        "probe missing run": ["probe", str(tmp_path / "missing_run"), "--kind", "grad-norms"],
        "sample bad n": ["sample", str(not_a_run), "--n", "x"],
    }


def test_bad_invocations_give_one_line_errors(tmp_path, capsys):
    invocations = _bad_invocations(tmp_path)
    assert len(invocations) >= 20
    failures = []
    for label, argv in invocations.items():
        try:
            code = main(argv)
        except SystemExit as exit_info:
            code = exit_info.code
        captured = capsys.readouterr()
        lines = [line for line in captured.err.splitlines() if line.strip()]
        if code == 0 or len(lines) != 1 or "Traceback" in captured.err or "error" not in lines[0]:
            failures.append((label, code, captured.err))
    assert not failures, failures


def test_console_script_reports_one_line(tmp_path):
    """The installed entry point, as a user runs it: exit 2, one line on stderr, no traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "lipgan", "train", "optim.n_dis=0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "lipgan train: error: optim.n_dis must be at least 1, not 0"
    ]


def test_dry_run_prints_resolved_config(capsys, tmp_path):
    assert main(["train", "--dry-run", "optim.lr_d=4e-4", "constraint.gradnorm=gran"]) == 0
    captured = capsys.readouterr()
    assert "lr_d: 0.0004" in captured.out and "gradnorm: gran" in captured.out
    assert captured.err == "# digits-cnn: G 140,225 parameters, D 34,401\n"
    assert not any(tmp_path.iterdir())


def test_dry_run_catches_bad_architecture_options(capsys):
    assert main(["train", "--dry-run", "model.options.d_width=0"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "lipgan train: error: d_width must be a positive number, got 0\n"


def test_dry_run_without_dataset_files_says_the_nets_were_not_checked(capsys, tmp_path):
    args = ["train", "--dry-run", "gn/cifar10_cnn.yaml", f"data.root={tmp_path}"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "arch: sngan-cnn" in captured.out
    assert captured.err == "# cifar10 files not found: architecture options not checked\n"


def test_train_sample_and_resume_from_the_command_line(tmp_path, capsys):
    assert main(["train", *toy_overrides(tmp_path, 2)]) == 0
    out = capsys.readouterr().out
    run_dir = next(tmp_path.glob("00000-*"))
    assert f"run directory: {run_dir}" in out and "checkpoint:" in out
    assert main(["sample", str(run_dir), "--n", "100"]) == 0
    sample = capsys.readouterr().out.strip()
    assert sample.endswith(".png")
    assert main(["train", "--resume", str(run_dir), "train.steps=3"]) == 0
    assert (run_dir / "checkpoints" / "last.pt").is_file()
