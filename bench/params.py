"""Typed parameters for scenarios and strategies.

Each scenario and strategy declares its parameters once, as a frozen dataclass ``Params`` whose
field defaults are documented next to the class. Values arrive as strings from the command line
(``naive:lr=0.01,epochs=1``) or typed from TOML; ``resolve`` checks names and coerces types, and
a wrong key or value is a :class:`ConfigError` listing the valid ones.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, get_args, get_origin

from clbench.errors import ConfigError

Scalar = bool | int | float | str | None


def parse_named(text: str) -> tuple[str, dict[str, str]]:
    """Split ``"name:key=value,key=value"`` into the name and a dict of raw string values.

    A name may itself contain one colon (``package.module:Class``); parameters follow the last
    colon only when that part contains ``=``.
    """
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"expected NAME or NAME:key=value,..., got {text!r}")
    name, sep, rest = text.rpartition(":")
    if not sep or "=" not in rest:
        return text.strip(), {}  # "name", or "package.module:Class"
    params: dict[str, str] = {}
    for item in rest.split(","):
        if not item.strip():
            continue
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(
                f"cannot read parameter {item!r} in {text!r}",
                hint="write parameters as NAME:key=value,key=value",
            )
        if key.strip() in params:  # ambiguous: never "the last one wins"
            raise ConfigError(f"parameter {key.strip()!r} is given twice in {text!r}",
                              hint="give each parameter once")
        params[key.strip()] = value.strip()
    return name.strip(), params


def field_types(params_cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(params_cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(params_cls)}


def describe(params_cls: type) -> list[tuple[str, str, Any]]:
    """(name, type, default) of every parameter, for listings and error messages."""
    out = []
    for f in dataclasses.fields(params_cls):
        out.append((f.name, _type_name(field_types(params_cls)[f.name]), f.default))
    return out


def check_params_class(params_cls: Any) -> str | None:
    """What makes ``params_cls`` unusable as a Params class (None: usable): not a dataclass,
    annotations that do not resolve, field types ``coerce`` cannot read, invalid defaults."""
    if not (isinstance(params_cls, type) and dataclasses.is_dataclass(params_cls)):
        return f"{params_cls!r} is not a dataclass"
    try:
        types_ = field_types(params_cls)
    except Exception as exc:  # a forward reference to a missing name, a broken annotation
        return f"its annotations do not resolve ({type(exc).__name__}: {exc})"
    for f in dataclasses.fields(params_cls):
        if f.default is dataclasses.MISSING:
            return f"field {f.name!r} has no default"
        try:
            coerce(f.default, types_[f.name], f"default of {f.name!r}")
        except ConfigError as exc:
            return exc.message
    try:
        resolve(params_cls, [], params_cls.__qualname__)
    except ConfigError as exc:
        return exc.message
    except Exception as exc:  # a validate() that fails in another way
        return f"its defaults fail validation ({type(exc).__name__}: {exc})"
    return None


def resolve(params_cls: type, layers: list[Mapping[str, Any]], owner: str) -> Any:
    """Instance of ``params_cls`` from its defaults overlaid by ``layers`` (later wins)."""
    types_ = field_types(params_cls)
    values: dict[str, Any] = {}
    for layer in layers:
        for key, raw in layer.items():
            if key not in types_:
                close = difflib.get_close_matches(key, types_, n=1, cutoff=0.6)
                raise ConfigError(
                    f"{owner} has no parameter {key!r}",
                    hint=f"valid parameters: {_listing(params_cls)}"
                    + (f" (did you mean {close[0]!r}?)" if close else ""),
                )
            values[key] = coerce(raw, types_[key], f"{owner} parameter {key!r}")
    try:
        instance = params_cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid parameters for {owner}: {exc}") from exc
    check = getattr(instance, "validate", None)
    if check is not None:
        try:
            check()
        except ValueError as exc:
            raise ConfigError(f"invalid parameters for {owner}: {exc}",
                              hint=f"valid parameters: {_listing(params_cls)}") from exc
    return instance


def coerce(value: Any, annotation: Any, what: str) -> Any:
    """``value`` converted to ``annotation`` (bool, int, float, str, Literal, Optional)."""
    origin = get_origin(annotation)
    if origin is Literal:
        choices = get_args(annotation)
        for choice in choices:
            if value == choice or (isinstance(value, str) and str(choice) == value):
                return choice
        raise ConfigError(f"{what} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    if origin in (typing.Union, types.UnionType):
        args = get_args(annotation)
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, what)
            except ConfigError as exc:
                errors.append(exc.message)
        raise ConfigError(errors[0] if errors else f"{what}: cannot use {value!r}")
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{what} must be true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool):
            raise ConfigError(f"{what} must be an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise ConfigError(f"{what} must be an integer, got {value!r}")
    if annotation is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:  # an integer of thousands of digits
                raise ConfigError(f"{what} is too large: {str(value)[:20]}...") from None
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
        if number is None:
            raise ConfigError(f"{what} must be a number, got {value!r}")
        if not math.isfinite(number):
            # NaN/inf would pass every range check and surface later as a traceback in training
            raise ConfigError(f"{what} must be a finite number, got {value!r}")
        return number
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{what} must be a string, got {value!r}")
    raise ConfigError(f"{what}: unsupported parameter type {annotation!r}")


def as_dict(params: Any) -> dict[str, Scalar]:
    return dataclasses.asdict(params)


def _type_name(annotation: Any) -> str:
    if get_origin(annotation) is Literal:
        return "|".join(map(str, get_args(annotation)))
    if get_origin(annotation) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(annotation))
    return getattr(annotation, "__name__", str(annotation))


def _listing(params_cls: type) -> str:
    return ", ".join(f"{n} ({t}, default {d!r})" for n, t, d in describe(params_cls))
