"""Shipped configs: `find_config` (a path, else a shipped name, else as given) and `lipgan configs`, whose
table lists every shipped file once with the paper, table and numbers read from its header."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import lipgan
from lipgan.cli import main
from lipgan.experiments.grid import load_grid
from lipgan.training.catalog import describe, shipped_configs
from lipgan.training.config import SHIPPED_CONFIGS, find_config, load_config

ROOT = Path(__file__).resolve().parents[1]
FAMILY_PAPERS = {"gran": "GraN", "gn": "GN", "pgn": "PGN", "bssn": "BSSN", "lipreg": "LipReg"}
NO_NUMBER_PHRASES = ("did not reach", "not in the paper", "no sample metric", "no FID reported")


def shipped_names() -> list[str]:
    return sorted(
        p.relative_to(SHIPPED_CONFIGS).with_suffix("").as_posix() for p in SHIPPED_CONFIGS.rglob("*.yaml")
    )


def first_line(name: str) -> str:
    return (SHIPPED_CONFIGS / f"{name}.yaml").read_text(encoding="utf-8").splitlines()[0]


def configs_table(capsys, *args: str) -> dict[str, tuple[str, ...]]:
    """`lipgan configs ARGS` as {name: (use, paper, table, reported)}, sliced at the header's columns."""
    assert main(["configs", *args]) == 0
    captured = capsys.readouterr()
    header, *lines = captured.out.splitlines()
    assert header.split() == ["name", "use", "paper", "table", "reported"]
    starts = [match.start() for match in re.finditer(r"\S+", header)]
    bounds = list(zip(starts, [*starts[1:], None]))
    rows = {}
    for line in lines:
        cells = tuple(line[start:end].strip() for start, end in bounds)
        assert all(cells) and line == line.rstrip(), line
        assert cells[0] not in rows, f"{cells[0]} listed twice"
        rows[cells[0]] = cells[1:]
    note = "give the name to lipgan train (use train) or lipgan sweep (use sweep)"
    assert captured.err == f"# {len(rows)} configs in {SHIPPED_CONFIGS}: {note}\n"
    return rows


def test_shipped_configs_are_the_package_data_and_the_checkout_link_points_there():
    assert Path(lipgan.__file__).parent / "configs" == SHIPPED_CONFIGS
    assert SHIPPED_CONFIGS.is_dir() and len(shipped_names()) >= 100
    assert (ROOT / "configs").resolve() == SHIPPED_CONFIGS.resolve()


def test_find_config_returns_an_existing_path_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("digits_gn.yaml").write_text("name: mine\n")  # a path wins over the shipped config of that name
    assert find_config("digits_gn.yaml") == Path("digits_gn.yaml")
    assert load_config(find_config("digits_gn.yaml")).name == "mine"
    assert find_config(tmp_path / "digits_gn.yaml") == tmp_path / "digits_gn.yaml"


@pytest.mark.parametrize("name", ["gran/cifar10_grand", "gran/cifar10_grand.yaml"])
def test_find_config_finds_a_shipped_config_by_name(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    assert find_config(name) == SHIPPED_CONFIGS / "gran" / "cifar10_grand.yaml"
    assert load_config(find_config(name)).name == "gran_cifar10_grand"


def test_find_config_returns_a_missing_name_as_given(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert find_config("gran/cifar10_nope") == Path("gran/cifar10_nope")
    assert main(["train", "gran/cifar10_nope"]) == 2
    assert capsys.readouterr().err == (
        "lipgan train: error: config file gran/cifar10_nope does not exist "
        "(`lipgan configs` lists the shipped ones)\n"
    )


def test_grid_by_name_resolves_its_base_beside_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    grid = load_grid(find_config("sweeps/embedded/lipreg_table2"))
    assert grid.name == "lipreg_table2_digits" and grid.base["name"] == "lipreg_digits"
    assert grid.source["base"] == "base_lipreg_digits.yaml"


def test_grid_by_checkout_path_still_loads(monkeypatch):
    monkeypatch.chdir(ROOT)
    path = find_config("configs/sweeps/embedded/lipreg_table2.yaml")
    assert path == Path("configs/sweeps/embedded/lipreg_table2.yaml")
    assert load_grid(path).base["name"] == "lipreg_digits"


def test_configs_lists_every_shipped_config_once(capsys):
    rows = configs_table(capsys)
    assert sorted(rows) == shipped_names()
    uses = {name: row[0] for name, row in rows.items()}
    assert uses["sweeps/embedded/lipreg_table2"] == "sweep" and uses["gran/cifar10_grand"] == "train"
    assert uses["sweeps/embedded/base_lipreg_digits"] == "train"  # a base config beside the grids
    assert sum(use == "sweep" for use in uses.values()) == 16


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gran/cifar10_grand", ("train", "GraN", "Table 2", "IS 8.031, FID 14.965, KID(x1000) 12.3")),
        ("gran/celeba_nsgan", ("train", "GraN", "Table 3", "-")),  # did not reach FID < 70
        ("gn/cifar10_cnn", ("train", "GN", "PGN Table II", "IS 7.71, FID 19.31")),  # quoted by PGN
        ("lipreg/cifar10_ns", ("train", "LipReg", "Table 2", "FID 15.81")),
        ("lipreg/cifar10_ns_ksn50_alpha1e-25", ("train", "LipReg", "§4", "FID 21.92")),
        ("lipreg/celeba_wgan-gp", ("train", "LipReg", "App. C / Fig. 3", "-")),  # no FID reported
        ("bssn/cifar10_bsn-diff-gamma", ("train", "BSSN", "Table 6", "IS 6.72, FID 38.15")),
        ("pgn/stl10_resnet", ("train", "PGN", "Table IV", "IS 9.895, FID 23.588")),
        ("sweeps/gran_table8_cifar10", ("sweep", "GraN", "App. G Table 8", "-")),
        ("sweeps/lipreg_table5a_cifar10", ("sweep", "LipReg", "App. D Table 5(a)", "-")),
        ("digits_grand", ("train", "GraN", "-", "-")),
        ("toy_ring8_ns", ("train", "-", "-", "-")),  # the unconstrained NS-GAN baseline
    ],
)
def test_configs_reads_paper_table_and_number_from_the_header(capsys, name, expected):
    assert configs_table(capsys, name)[name] == expected


def test_every_paper_config_names_its_paper_and_table_and_a_number_unless_the_paper_has_none():
    family = [c for c in shipped_configs() if c.name.split("/")[0] in FAMILY_PAPERS]
    assert len(family) == 111  # 104, and the conditional BigGAN four and GN Table 5 three
    for config in family:
        line = first_line(config.name)
        assert config.paper == FAMILY_PAPERS[config.name.split("/")[0]], config
        assert config.table != "-", config
        has_none = any(phrase in line for phrase in NO_NUMBER_PHRASES)
        assert (config.reported == "-") == has_none, config
        assert has_none or f": {config.reported} reported" in line, config


def test_configs_filter_by_name_or_paper(capsys):
    assert list(configs_table(capsys, "cifar10_grand")) == ["gran/cifar10_grand"]
    lipreg = configs_table(capsys, "lipreg")
    assert all("lipreg" in name or row[1] == "LipReg" for name, row in lipreg.items())
    assert "sweeps/embedded/base_lipreg_digits" in lipreg and "gran/cifar10_grand" not in lipreg


def test_configs_without_a_match_is_one_line(capsys):
    assert main(["configs", "imagenet"]) == 2
    assert capsys.readouterr().err == (
        "lipgan configs: error: no shipped config matches 'imagenet' (lipgan configs lists them all)\n"
    )


def test_configs_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["configs", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: lipgan configs" in out and "pattern" in out


def test_a_header_without_a_source_reads_as_dashes(tmp_path):
    (tmp_path / "plain.yaml").write_text("name: plain\n# GraN Table 2: FID 1.0 reported, but not a header\n")
    (tmp_path / "grid.yaml").write_text(
        "#GraN (x) Table 8, CIFAR-10: FID 9 reported\nbase: plain\nseeds: [0]\n"
    )
    assert describe(tmp_path / "plain.yaml", tmp_path).row() == ("plain", "train", "-", "-", "-")
    assert describe(tmp_path / "grid.yaml", tmp_path).row() == ("grid", "sweep", "GraN", "Table 8", "FID 9")
