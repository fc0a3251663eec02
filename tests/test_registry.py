"""lipgan.registry.Registry: registration, duplicates, and the one-line error of a failed look-up."""

from __future__ import annotations

import pytest

from lipgan.errors import ConfigError, LipganError
from lipgan.registry import Registry


def filled() -> Registry:
    registry: Registry = Registry("widget")
    for name in ("gamma", "alpha", "beta"):
        registry.register(name)(name.upper())
    return registry


def test_register_returns_the_object_and_get_finds_it():
    registry: Registry = Registry("widget")

    @registry.register("double")
    def double(x):
        return 2 * x

    assert double(3) == 6  # the decorator hands the function back unchanged
    assert registry.get("double") is double
    assert "double" in registry and "triple" not in registry and len(registry) == 1


def test_names_and_iteration_are_sorted():
    registry = filled()
    assert registry.names() == ["alpha", "beta", "gamma"]
    assert list(registry) == ["alpha", "beta", "gamma"]
    assert [registry.get(name) for name in registry] == ["ALPHA", "BETA", "GAMMA"]


def test_a_name_cannot_be_registered_twice():
    registry = filled()
    with pytest.raises(ValueError, match=r"^widget 'beta' is registered twice$"):
        registry.register("beta")("other")
    assert registry.get("beta") == "BETA" and len(registry) == 3  # the first registration stays


def test_unknown_name_is_a_one_line_config_error_listing_the_choices():
    with pytest.raises(ConfigError) as info:
        filled().get("delta")
    assert isinstance(info.value, LipganError)
    assert str(info.value) == "unknown widget 'delta'; valid: alpha, beta, gamma"
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no KeyError chained on


def test_an_empty_registry_says_so():
    with pytest.raises(ConfigError, match=r"^unknown widget 'x'; valid: $"):
        Registry("widget").get("x")
