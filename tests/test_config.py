"""The strict config loader: unknown keys, wrong types and missing values fail with one line."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nascore.config import ConfigError, deep_merge, from_dict, replace_checked
from nascore.data import DataConfig


@dataclass(frozen=True)
class Inner:
    """A nested config."""

    size: int = 3  # a count
    name: str = "x"  # a label


@dataclass(frozen=True)
class Outer:
    """A config with every field kind the kit uses."""

    lr: float  # required
    epochs: int | None = None  # optional count
    tags: tuple[str, ...] = ()  # a list of names
    priors: dict = field(default_factory=dict)  # op -> weight
    inner: Inner = field(default_factory=Inner)  # nested


def test_builds_and_converts():
    cfg = from_dict(Outer, {"lr": 1, "epochs": 5, "tags": ["a", "b"], "inner": {"size": 4}})
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float) and cfg.tags == ("a", "b") and cfg.inner.size == 4


@pytest.mark.parametrize("data, msg", [
    ({"lr": 0.1, "lrr": 2}, "unknown key 'lrr'; valid keys: lr, epochs"),
    ({}, "missing required key 'lr'"),
    ({"lr": "fast"}, "cfg.lr: expected float, got 'fast'"),
    ({"lr": 0.1, "epochs": 2.5}, "cfg.epochs: expected"),
    ({"lr": 0.1, "epochs": True}, "cfg.epochs: expected"),
    ({"lr": 0.1, "inner": {"size": "big"}}, "cfg.inner.size: expected int"),
    ({"lr": 0.1, "inner": {"colour": 1}}, "cfg.inner: unknown key 'colour'"),
    ([1, 2], "expected a mapping"),
])
def test_bad_configs_name_the_key(data, msg):
    with pytest.raises(ConfigError) as e:
        from_dict(Outer, data, "cfg")
    assert msg in str(e.value) and "\n" not in str(e.value)


def test_replace_checked_and_merge():
    cfg = replace_checked(DataConfig(), train_size=10, data_dir=None)
    assert cfg.train_size == 10 and cfg.valid_size == 5000
    with pytest.raises(ConfigError, match="train_size"):
        replace_checked(DataConfig(), train_size="ten")
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}) == {"a": {"b": 1, "c": 3}}


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                           lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids,
                                                                                   max_size=3), max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["lr", "epochs", "tags", "priors", "inner", "other"]), json_values))
def test_any_mapping_builds_or_fails_cleanly(data):
    try:
        cfg = from_dict(Outer, data)
    except ConfigError as e:
        assert str(e) and "\n" not in str(e)
    else:
        assert isinstance(cfg, Outer)
