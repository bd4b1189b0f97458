"""Strict construction of typed configuration dataclasses from plain (YAML/JSON) data.

:func:`build` turns a mapping into a dataclass instance, recursively, and refuses what a typo or
a wrong value would otherwise let through silently: unknown keys (with the closest valid name),
wrong types, values outside a field's bounds or choices. Bounds and choices live in the field's
metadata::

    @dataclass(frozen=True)
    class CkaSection:
        kernel: str = field(default="linear", metadata=choices("linear", "rbf"))
        img_size: int = field(default=224, metadata=bounds(8, 1024))

Every error names the place (``<file>: <section>.<key>``) and what is expected.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, Mapping

from .errors import T2SError

#: Keys renamed in the schema: an old spelling gets a hint instead of "unknown key".
RENAMED = {"size": "img_size", "image_size": "img_size", "sizes": "img_sizes"}


def bounds(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False) -> dict[str, Any]:
    """Field metadata: numeric bounds (inclusive unless ``lo_open``; each element of a list)."""
    return {"lo": lo, "hi": hi, "lo_open": lo_open}


def choices(*values: Any) -> dict[str, Any]:
    """Field metadata: the allowed values (of the field, or of each element of a list)."""
    return {"choices": tuple(values)}


class SchemaError(T2SError):
    """A configuration value does not fit the schema."""


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        (arg, *_) = typing.get_args(tp) or (Any,)
        return f"a list of {_type_name(arg)}"
    if dataclasses.is_dataclass(tp):
        return "a mapping (section)"
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string", type(None): "null",
            dict: "a mapping"}.get(tp, getattr(tp, "__name__", str(tp)))


def _fail(where: str, problem: str, fix: str) -> SchemaError:
    return SchemaError(f"{where}: {problem}", fix)


def _check_value(value: Any, meta: Mapping[str, Any], where: str) -> None:
    if "choices" in meta and value not in meta["choices"]:
        raise _fail(where, f"{value!r} is not allowed", f"use one of: {', '.join(map(repr, meta['choices']))}")
    lo, hi = meta.get("lo"), meta.get("hi")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if lo is not None and (value <= lo if meta.get("lo_open") else value < lo):
            rel = ">" if meta.get("lo_open") else ">="
            raise _fail(where, f"{value!r} is out of range", f"use a value {rel} {lo}" + (f" and <= {hi}" if hi is not None else ""))
        if hi is not None and value > hi:
            raise _fail(where, f"{value!r} is out of range", f"use a value <= {hi}" + (f" and >= {lo}" if lo is not None else ""))


def _convert(value: Any, tp: Any, meta: Mapping[str, Any], where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, meta, where)
            except SchemaError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise _fail(where, f"expected {_type_name(tp)}, got {value!r}", "fix the value in the profile")
    if origin in (list, tuple):
        (arg, *_) = typing.get_args(tp) or (Any,)
        if not isinstance(value, (list, tuple)):
            raise _fail(where, f"expected {_type_name(tp)}, got {value!r}", "write a YAML list, e.g. [a, b]")
        out = [_convert(v, arg, meta, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if dataclasses.is_dataclass(tp):
        return build(tp, value, where)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise _fail(where, f"expected true/false, got {value!r}", "write true or false")
    elif tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(where, f"expected an integer, got {value!r}", "write a whole number")
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(where, f"expected a number, got {value!r}", "write a number, e.g. 0.1")
        value = float(value)
    elif tp is str:
        if not isinstance(value, str):
            raise _fail(where, f"expected a string, got {value!r}", "quote the value")
    elif tp is dict or typing.get_origin(tp) is dict:
        if not isinstance(value, Mapping):
            raise _fail(where, f"expected a mapping, got {value!r}", "write a YAML mapping (key: value)")
        return dict(value)
    elif tp is Path:
        if not isinstance(value, (str, Path)):
            raise _fail(where, f"expected a path, got {value!r}", "write a path as a string")
        return Path(value)
    _check_value(value, meta, where)
    return value


def check_keys(data: Mapping[str, Any], allowed: typing.Iterable[str], where: str) -> None:
    """Refuse keys outside ``allowed``, suggesting the closest valid name or the new name of a renamed key."""
    allowed = list(allowed)
    unknown = [k for k in data if k not in allowed]
    if not unknown:
        return
    key = unknown[0]
    if key in RENAMED and RENAMED[key] in allowed:
        fix = f"{key!r} was renamed: write {RENAMED[key]!r}"
    else:
        close = difflib.get_close_matches(str(key), allowed, n=1)
        fix = (f"did you mean {close[0]!r}? " if close else "") + f"valid keys: {', '.join(allowed)}"
    raise _fail(where, f"unknown key(s) {', '.join(map(repr, unknown))}", fix)


def build(cls: type, data: Any, where: str) -> Any:
    """An instance of dataclass ``cls`` from ``data`` (a mapping, or None for all defaults)."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise _fail(where, f"expected a mapping (section), got {data!r}", "write the section as key: value lines")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    check_keys(data, fields, where)
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _convert(value, hints[name], fields[name].metadata, f"{where}.{name}")
    missing = [n for n, f in fields.items() if n not in kwargs and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise _fail(where, f"missing key(s) {', '.join(missing)}", "add them to the section")
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate(where)
    return obj


def check_fields(obj: Any, where: str, names: typing.Iterable[str] | None = None) -> None:
    """Re-check an existing dataclass instance's values against its fields' types and metadata
    (for objects built in code, e.g. from command-line flags)."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        if names is not None and f.name not in names:
            continue
        _convert(getattr(obj, f.name), hints[f.name], f.metadata, f"{where}.{f.name}")


def to_plain(obj: Any) -> Any:
    """A dataclass (tree) as plain JSON/YAML-ready data."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, Mapping):
        return {k: to_plain(v) for k, v in obj.items()}
    return obj
