"""Grid files: exact expansion (product, zip, named cells, seeds) and one-line errors for bad grids."""

from __future__ import annotations

import pytest
import yaml

from lipgan.errors import ConfigError, MissingFileError
from lipgan.experiments.grid import DivergedRule, load_grid, merge_dotted

BASE = {"name": "tiny", "data": {"name": "ring8"}, "model": {"arch": "mlp2d"}, "train": {"steps": 3}}


def write_grid(tmp_path, **grid):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    values = {
        "name": "g",
        "base": "base.yaml",
        "seeds": [0, 1],
        "metric": {"name": "mode_kl", "goal": "min"},
        "table": {"rows": ["loss.name"], "columns": "optim.lr_d"},
        "axes": {"loss.name": ["ns", "hinge"], "optim.lr_d": [1.0e-4, 1.0e-3, 1.0e-2]},
    }
    values.update(grid)
    values = {k: v for k, v in values.items() if v is not None}
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path


def test_product_expands_in_file_order_with_seeds_fastest(tmp_path):
    grid = load_grid(write_grid(tmp_path))
    cells = grid.cells()
    assert [c.labels for c in cells] == [
        {"loss.name": loss, "optim.lr_d": lr} for loss in ("ns", "hinge") for lr in (1e-4, 1e-3, 1e-2)
    ]
    assert [c.index for c in cells] == list(range(6))
    runs = grid.runs()
    assert [(r.index, r.cell.index, r.seed) for r in runs] == [(i, i // 2, i % 2) for i in range(12)]
    assert runs[3].dir_name == "00003-ns_0.001_s1"


def test_zip_groups_vary_keys_together_under_their_labels(tmp_path):
    zipped = {
        "setting": {
            "labels": ["B", "C"],
            "values": {
                "optim.lr_d": [2.0e-4, 1.0e-3],
                "optim.n_dis": [1, 5],
                "optim.betas": [[0.5, 0.9]] * 2,
            },
        }
    }
    path = write_grid(
        tmp_path,
        axes={"loss.name": ["ns", "wgan", "hinge"]},
        zip=zipped,
        table={"rows": ["loss.name"], "columns": "setting"},
        seeds=[7],
    )
    grid = load_grid(path)
    cells = grid.cells()
    assert len(cells) == 6 and len(grid.runs()) == 6
    assert cells[1].labels == {"loss.name": "ns", "setting": "C"}
    assert cells[1].settings == {
        "loss.name": "ns",
        "optim.lr_d": 1e-3,
        "optim.n_dis": 5,
        "optim.betas": [0.5, 0.9],
    }
    cfg = grid.run_config(grid.runs()[1], tmp_path / "sweep")
    assert (cfg.optim.lr_d, cfg.optim.n_dis, cfg.seed, cfg.loss.name) == (1e-3, 5, 7, "ns")
    assert cfg.name == "g-ns_C_s7" and cfg.out_dir == str(tmp_path / "sweep" / "runs")
    assert cfg.train.steps == 3 and cfg.data.name == "ring8"  # the base config's own values stay


def test_overrides_of_the_grid_and_of_the_command_line_reach_every_run(tmp_path):
    path = write_grid(tmp_path, overrides={"train.steps": 5, "optim.n_dis": 2})
    grid = load_grid(path, ["optim.n_dis=3", "model.options.width=0.5"])
    cfg = grid.run_config(grid.runs()[-1], tmp_path)
    assert (cfg.train.steps, cfg.optim.n_dis, cfg.model.options) == (5, 3, {"width": 0.5})
    assert (cfg.loss.name, cfg.optim.lr_d, cfg.seed) == ("hinge", 1e-2, 1)


def test_merge_dotted_sets_nested_keys_and_replaces_mappings():
    base = {"optim": {"lr_d": 1.0, "n_dis": 1}, "model": {"options": {"width": 1, "init": "x"}}}
    merged = merge_dotted(base, {"optim.lr_d": 2.0, "model.options": {"width": 3}, "seed": 4})
    assert merged == {"optim": {"lr_d": 2.0, "n_dis": 1}, "model": {"options": {"width": 3}}, "seed": 4}
    assert base["optim"]["lr_d"] == 1.0  # the base is not modified


@pytest.mark.parametrize(
    ("text", "metrics", "expected"),
    [
        ("digits_fid >= 40", {"digits_fid": 40.0}, True),
        ("digits_fid >= 40", {"digits_fid": 39.99}, False),
        ("digits_fid > 40", {"digits_fid": 40.0}, False),
        ("digits_is < 2.5", {"digits_is": 2.4}, True),
        ("digits_is <= 2.5", {"digits_is": 2.6}, False),
        ("fid >= 40", {"fid": float("nan")}, True),
        ("fid >= 40", {}, False),
    ],
)
def test_diverged_rule(tmp_path, text, metrics, expected):
    rule = load_grid(write_grid(tmp_path, diverged=text)).diverged
    assert isinstance(rule, DivergedRule)
    assert rule(metrics) is expected


BAD_GRIDS = {
    "unknown grid key": ({"colour": "red"}, "unknown grid key 'colour'"),
    "missing seeds": ({"seeds": None}, "missing grid key 'seeds'"),
    "empty axis": ({"axes": {"loss.name": [], "optim.lr_d": [1.0e-3]}}, "axis loss.name must be a non-empty"),
    "axis not a list": ({"axes": {"loss.name": "ns", "optim.lr_d": [1.0e-3]}}, "axis loss.name must be"),
    "unknown config key": (
        {
            "axes": {"loss.nme": ["ns"], "optim.lr_d": [1.0e-3]},
            "table": {"rows": ["loss.nme"], "columns": "optim.lr_d"},
        },
        "unknown key loss.nme",
    ),
    "wrong value type": (
        {"axes": {"loss.name": ["ns"], "optim.lr_d": ["fast"]}},
        "optim.lr_d: expected a number",
    ),
    "bad value": ({"axes": {"loss.name": ["nsx"], "optim.lr_d": [1.0e-3]}}, "unknown loss 'nsx'"),
    "zip unequal lengths": (
        {
            "axes": {"loss.name": ["ns"]},
            "zip": {"s": {"labels": ["B", "C"], "values": {"optim.lr_d": [1.0e-3]}}},
            "table": {"rows": ["loss.name"], "columns": "s"},
        },
        "zip group s: optim.lr_d has 1 values for 2 labels",
    ),
    "zip without labels": (
        {"zip": {"s": {"values": {"optim.lr_d": [1.0e-3]}}}},
        "zip group s must have exactly the keys labels and values",
    ),
    "key in two axes": (
        {
            "zip": {"s": {"labels": ["B"], "values": {"optim.lr_d": [1.0e-3]}}},
            "table": {"rows": ["loss.name", "s"], "columns": "optim.lr_d"},
        },
        "optim.lr_d is varied by more than one axis",
    ),
    "seeds not integers": ({"seeds": [0, "one"]}, "seeds must be a non-empty list of integers"),
    "negative seed": ({"seeds": [-1]}, "seeds must be a non-empty list of integers >= 0"),
    "repeated seed": ({"seeds": [1, 1]}, "seeds must be distinct"),
    "bad goal": (
        {"metric": {"name": "fid", "goal": "lowest"}},
        "metric must be {name: <metric>, goal: min|max}",
    ),
    "bad rule": ({"diverged": "fid is large"}, "diverged must read '<metric> <op> <number>'"),
    "bad rule number": ({"diverged": "fid >= forty"}, "'forty' is not a number"),
    "table unknown axis": (
        {"table": {"rows": ["loss"], "columns": "optim.lr_d"}},
        "table names 'loss', which is not an axis",
    ),
    "table misses an axis": ({"table": {"rows": [], "columns": "optim.lr_d"}}, "table must use every axis"),
    "bad name": ({"name": "my grid"}, "name may hold letters, digits"),
    "bad override": ({"overrides": {"train.steps": 0}}, "train.steps must be at least 1"),
}


@pytest.mark.parametrize("case", sorted(BAD_GRIDS))
def test_bad_grids_fail_with_one_line(tmp_path, case):
    changes, message = BAD_GRIDS[case]
    with pytest.raises(ConfigError) as err:
        load_grid(write_grid(tmp_path, **changes))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_base_config(tmp_path):
    with pytest.raises(MissingFileError, match="base config 'nowhere.yaml' not found"):
        load_grid(write_grid(tmp_path, base="nowhere.yaml"))


def test_base_found_by_config_name(tmp_path):
    grid = load_grid(write_grid(tmp_path, base="digits_gn", axes={"loss.name": ["ns"], "optim.lr_d": [1e-3]}))
    assert grid.base["constraint"]["gradnorm"] == "gn" and grid.base["name"] == "digits_gn"


def test_run_names_keep_the_sign_of_exponents(tmp_path):
    grid = load_grid(write_grid(tmp_path, axes={"loss.name": ["ns"], "optim.lr_d": [1.0e-11, 1.0e11]}))
    assert [r.dir_name for r in grid.runs()][::2] == ["00000-ns_1e-11_s0", "00002-ns_1e11_s0"]
