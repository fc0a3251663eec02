"""Reading a config: value conversion to the field types, `key=value` overrides, merging and YAML files.

Only the parsing is tested here (`_convert`, `_build`, `parse_overrides`, `_merge`, `read_yaml`); the range
and cross-option checks of `validate` are tested with it elsewhere.
"""

from __future__ import annotations

import pytest

from lipgan.errors import ConfigError, MissingFileError
from lipgan.training.config import (
    Config,
    DataConfig,
    _build,
    _convert,
    _merge,
    parse_overrides,
    read_yaml,
)

# ---- _convert: one case per branch -------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "null", "None", "NULL", "~"])
def test_optional_fields_read_null_spellings_as_none(value):
    assert _convert(value, int | None, "data.resolution") is None
    assert _convert(value, str | None, "data.split") is None


@pytest.mark.parametrize(("value", "expected"), [(32, 32), ("32", 32), ("3.0", 3)])
def test_optional_fields_convert_to_their_type(value, expected):
    converted = _convert(value, int | None, "data.resolution")
    assert converted == expected and type(converted) is int


def test_an_optional_field_that_fits_no_member_names_key_and_type():
    with pytest.raises(ConfigError, match=r"^data\.resolution: cannot read 'big' as int \| None$"):
        _convert("big", int | None, "data.resolution")
    with pytest.raises(ConfigError, match=r"^data\.split: cannot read \[1\] as str \| None$"):
        _convert([1], str | None, "data.split")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("true", True), ("False", False), ("YES", True), ("no", False)]
    + [("1", True), ("0", False)],
)
def test_booleans(value, expected):
    assert _convert(value, bool, "data.download") is expected


@pytest.mark.parametrize("value", ["maybe", 1, 0, None, "2"])
def test_anything_else_is_not_a_boolean(value):
    with pytest.raises(ConfigError) as info:
        _convert(value, bool, "data.download")
    assert str(info.value) == f"data.download: expected true or false, got {value!r}"


@pytest.mark.parametrize(("value", "expected"), [(5, 5), ("5", 5), (5.0, 5), ("5.0", 5), ("1e3", 1000)])
def test_integers_accept_whole_numbers_in_any_spelling(value, expected):
    converted = _convert(value, int, "optim.n_dis")
    assert converted == expected and type(converted) is int


@pytest.mark.parametrize("value", [2.5, "2.5", True, False, "five", None, [1]])
def test_integers_reject_fractions_booleans_and_words(value):
    with pytest.raises(ConfigError) as info:
        _convert(value, int, "optim.n_dis")
    assert str(info.value) == f"optim.n_dis: expected an integer, got {value!r}"


@pytest.mark.parametrize(("value", "expected"), [(1, 1.0), ("4e-4", 4e-4), ("1e-25", 1e-25), (0.5, 0.5)])
def test_floats_accept_numbers_and_numeric_strings(value, expected):
    converted = _convert(value, float, "optim.lr_d")
    assert converted == expected and type(converted) is float


@pytest.mark.parametrize("value", [True, "fast", None, [1e-4]])
def test_floats_reject_booleans_and_non_numbers(value):
    with pytest.raises(ConfigError) as info:
        _convert(value, float, "optim.lr_d")
    assert str(info.value) == f"optim.lr_d: expected a number, got {value!r}"


@pytest.mark.parametrize(("value", "expected"), [("gran", "gran"), (5, "5"), (1.5, "1.5")])
def test_strings_take_scalars(value, expected):
    assert _convert(value, str, "name") == expected


@pytest.mark.parametrize("value", [{"a": 1}, ["a"]])
def test_strings_reject_mappings_and_lists(value):
    with pytest.raises(ConfigError, match=r"^name: expected a string, got "):
        _convert(value, str, "name")


def test_lists_and_mappings_are_copied_and_checked():
    betas = [0.0, 0.9]
    converted = _convert(betas, list, "optim.betas")
    assert converted == betas and converted is not betas
    options = {"n": 5}
    converted = _convert(options, dict, "data.options")
    assert converted == options and converted is not options
    with pytest.raises(ConfigError, match=r"^optim\.betas: expected a list, got \(0\.0, 0\.9\)$"):
        _convert((0.0, 0.9), list, "optim.betas")
    with pytest.raises(ConfigError, match=r"^data\.options: expected a mapping, got \[1\]$"):
        _convert([1], dict, "data.options")


def test_nested_sections_are_built_from_mappings():
    data = _convert({"name": "ring8", "batch_size": "16"}, DataConfig, "data")
    assert data == DataConfig(name="ring8", batch_size=16)
    with pytest.raises(ConfigError, match=r"^data: expected a mapping of DataConfig keys, got 'ring8'$"):
        _convert("ring8", DataConfig, "data")


def test_a_field_type_the_parser_does_not_know_is_a_bug_not_a_user_error():
    with pytest.raises(TypeError, match="unsupported config type"):
        _convert({1}, set, "x")


# ---- _build --------------------------------------------------------------------------------------------


def test_build_converts_every_level_and_keeps_the_defaults():
    cfg = _build(Config, {"seed": "3", "optim": {"n_dis": "2", "betas": [0, 0.9]}, "data": {"split": "null"}})
    expected = Config(seed=3)
    expected.optim.n_dis, expected.optim.betas = 2, [0, 0.9]
    assert cfg == expected


def test_unknown_keys_name_where_they_are_and_the_valid_keys():
    with pytest.raises(ConfigError) as info:
        _build(Config, {"sead": 1})
    valid = "name, seed, device, out_dir, data, model, constraint, penalty, loss, cr, optim, train, eval"
    assert str(info.value) == f"unknown key sead in the top level; valid keys: {valid}"
    with pytest.raises(ConfigError, match=r"^unknown key optim\.lr in optim; valid keys: name, lr_g, lr_d,"):
        _build(Config, {"optim": {"lr": 1e-4}})


# ---- parse_overrides -------------------------------------------------------------------------------------


def test_overrides_nest_by_dots_and_parse_values_as_yaml():
    parsed = parse_overrides(
        ["optim.lr_d=4e-4", "data.options={n: 512}", "optim.betas=[0, 0.9]", "penalty.at=real+fake"]
        + ["data.split=null", "name=", "train.steps=100", "eval.inception_weights=a=b.pth"]
    )
    assert parsed == {
        "optim": {"lr_d": "4e-4", "betas": [0, 0.9]},  # YAML 1.1 reads 4e-4 as a string; _convert reads it
        "data": {"options": {"n": 512}, "split": None},
        "penalty": {"at": "real+fake"},
        "name": "",
        "train": {"steps": 100},
        "eval": {"inception_weights": "a=b.pth"},  # split at the first '=' only
    }


def test_a_value_that_is_not_valid_yaml_stays_a_string():
    assert parse_overrides(["data.root=[unclosed"]) == {"data": {"root": "[unclosed"}}


def test_a_later_override_of_the_same_key_wins():
    assert parse_overrides(["seed=1", "seed=2"]) == {"seed": 2}
    assert parse_overrides(["optim.n_dis=1", "optim.n_dis=5"]) == {"optim": {"n_dis": 5}}


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["optim.lr_d"], "override 'optim.lr_d' is not of the form key=value (e.g. optim.lr_d=4e-4)"),
        (["=3"], "override '=3' has an empty key"),
        (["seed=1", "seed.x=2"], "override 'seed.x=2' conflicts with another override of seed"),
    ],
)
def test_malformed_overrides_are_one_line_errors(items, message):
    with pytest.raises(ConfigError) as info:
        parse_overrides(items)
    assert str(info.value) == message


# ---- _merge ----------------------------------------------------------------------------------------------


def test_merge_is_recursive_and_leaves_its_inputs_alone():
    base = {"optim": {"lr_d": 1e-4, "lr_g": 2e-4}, "seed": 0}
    update = {"optim": {"lr_d": 4e-4}, "name": "x"}
    assert _merge(base, update) == {"optim": {"lr_d": 4e-4, "lr_g": 2e-4}, "seed": 0, "name": "x"}
    assert base == {"optim": {"lr_d": 1e-4, "lr_g": 2e-4}, "seed": 0}
    assert update == {"optim": {"lr_d": 4e-4}, "name": "x"}


def test_options_merge_one_level_deep():
    """`options` mappings are free-form keyword arguments: keys merge, but a value that is itself a
    mapping is replaced whole."""
    base = {"model": {"options": {"width": 0.5, "init": {"scheme": "kaiming", "gain": 2}}}}
    update = {"model": {"options": {"init": {"scheme": "xavier"}}}}
    assert _merge(base, update) == {"model": {"options": {"width": 0.5, "init": {"scheme": "xavier"}}}}


def test_a_non_mapping_replaces_a_mapping_and_the_reverse():
    assert _merge({"optim": {"lr_d": 1}}, {"optim": None}) == {"optim": None}
    assert _merge({"seed": 1}, {"seed": {"x": 2}}) == {"seed": {"x": 2}}


def test_file_then_overrides_builds_the_expected_config(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("name: demo\noptim:\n  n_dis: 2\n  lr_d: 1.0e-4\ndata:\n  options: {n: 64, std: 0.1}\n")
    values = _merge(read_yaml(path), parse_overrides(["optim.lr_d=4e-4", "data.options={n: 128}"]))
    cfg = _build(Config, values)
    assert (cfg.name, cfg.optim.n_dis, cfg.optim.lr_d) == ("demo", 2, 4e-4)
    assert cfg.data.options == {"n": 128, "std": 0.1}


# ---- read_yaml ------------------------------------------------------------------------------------------


def test_read_yaml_reads_a_mapping_and_an_empty_file(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text("seed: 3\noptim:\n  n_dis: 5\n")
    assert read_yaml(path) == {"seed": 3, "optim": {"n_dis": 5}}
    path.write_text("# only a comment\n")
    assert read_yaml(path) == {}


def test_read_yaml_errors_are_one_line(tmp_path):
    with pytest.raises(MissingFileError, match=r"^config file .*nope\.yaml does not exist"):
        read_yaml(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: 1\nname: a: b\nseed: 2\n")  # the mistake is on line 2
    with pytest.raises(ConfigError) as info:
        read_yaml(bad)
    assert str(info.value) == f"{bad} is not valid YAML at line 2"
    listed = tmp_path / "list.yaml"
    listed.write_text("- seed\n- 1\n")
    with pytest.raises(ConfigError, match=r"list\.yaml must hold a mapping of config keys, not list$"):
        read_yaml(listed)
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    with pytest.raises(ConfigError) as info:
        read_yaml(folder)
    assert str(info.value) == f"config {folder} is a directory, not a YAML file"
