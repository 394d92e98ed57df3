"""Strict construction of frozen config dataclasses from plain dicts (YAML, JSON, CLI).

Unknown keys, wrong types and missing required values fail with one line naming the
key and where it came from; nothing is silently coerced except int -> float.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Hashable
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config value that does not fit its dataclass field."""


def _type_ok(value: Any, tp: Any) -> tuple[bool, Any]:
    """Whether `value` fits the annotation `tp`; returns (ok, converted value)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return True, value
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            ok, conv = _type_ok(value, arg)
            if ok:
                return True, conv
        return False, value
    if tp is type(None):
        return value is None, value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            return False, value
        args = typing.get_args(tp)
        inner = args[0] if args else Any
        conv = [_type_ok(v, inner) for v in value]
        return all(ok for ok, _ in conv), origin(c for _, c in conv)
    if origin is dict:
        return isinstance(value, dict), value
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if isinstance(tp, type):
        return isinstance(value, tp), value
    return True, value


def _type_name(tp: Any) -> str:
    """A readable name for an annotation."""
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _optional_dataclass(tp: Any, value: Any) -> Any:
    """`X | None` with X a dataclass read as X when a value is given (None stays allowed)."""
    args = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else ()
    classes = [a for a in args if dataclasses.is_dataclass(a)]
    if len(classes) == 1 and type(None) in args and value is not None:
        return classes[0]
    return tp


def from_dict(cls: type[T], data: Any, where: str = "config") -> T:
    """Build dataclass `cls` from `data`, rejecting unknown keys and wrong types.

    A class may list keys it used to have as `RENAMED` (old name -> new): such a key is one line
    saying its new name, not a bare "unknown key"."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of {cls.__name__} fields, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields), key=str)
    renamed = [k for k in unknown if k in getattr(cls, "RENAMED", {})]
    if renamed:
        new = cls.RENAMED[renamed[0]]
        raise ConfigError(f"{where}.{renamed[0]}: renamed to {new} (write {new}: {data[renamed[0]]})")
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join(fields)}")
    kwargs = {}
    for name, f in fields.items():
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{where}: missing required key {name!r}")
            continue
        tp, value = _optional_dataclass(hints[name], value=data[name]), data[name]
        if dataclasses.is_dataclass(tp) and value is not None:
            kwargs[name] = from_dict(tp, value, f"{where}.{name}")
            continue
        ok, conv = _type_ok(value, tp)
        if not ok:
            raise ConfigError(f"{where}.{name}: expected {_type_name(tp)}, got {value!r}")
        kwargs[name] = conv
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{where}: {e}") from None


def replace_checked(cfg: T, where: str = "override", **changes: Any) -> T:
    """dataclasses.replace with the same checks as from_dict; None values are ignored."""
    changes = {k: v for k, v in changes.items() if v is not None}
    merged = {**dataclasses.asdict(cfg), **changes}
    # asdict turns nested dataclasses into dicts, which from_dict rebuilds.
    return from_dict(type(cfg), merged, where)


def positive(name: str, value: float | int | None, allow_none: bool = True) -> None:
    """Raise ConfigError unless `value` is > 0 (or None when allowed)."""
    if value is None and allow_none:
        return
    if value is None or isinstance(value, bool) or not value > 0:
        raise ConfigError(f"{name} must be positive, got {value!r}")


def deep_merge(base: dict, over: dict | None) -> dict:
    """`base` with `over` laid on top; nested mappings merge key by key."""
    out = dict(base)
    for key, val in (over or {}).items():
        if isinstance(val, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], val)
        else:
            out[key] = val
    return out


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice (plain YAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # SafeLoader itself reports an unhashable key
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> Any:
    """A YAML file's content (duplicate keys refused); errors are one line naming the file and line."""
    try:
        return yaml.load(Path(path).read_text(), Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    except yaml.YAMLError as e:
        mark, problem = getattr(e, "problem_mark", None), getattr(e, "problem", None) or str(e)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{line}: bad YAML: {' '.join(str(problem).split())}") from None
