"""JSON records declared on dataclass fields: each field says which key of a JSON object holds
it and how the value there is checked, read and written (a :class:`Value`), and a
:class:`Record` derives the object's keys, its checks, reading and writing from the fields.
:mod:`clbench.schema` declares the result document with it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from collections.abc import Mapping
from typing import Any

# ---------------------------------------------------------------------------------------------
# Values: how one value is checked, read into Python and written back


class Invalid(Exception):
    """What is wrong with a document: the message names the key and the problem."""


class UnknownKeys(Invalid):
    """An object holds keys its declaration does not have."""


def show(value: Any) -> str:
    try:
        text = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def fail(path: str, expected: str, value: Any) -> None:
    raise Invalid(f"{path} must be {expected}, got {show(value)}")


def is_int(value: Any) -> bool:
    return type(value) is int  # bool is a subclass of int: `true` is not a count


def is_number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class Value:
    """A JSON value: ``check`` raises Invalid naming the problem, ``load`` reads a checked
    value into Python, ``dump`` writes it back. ``nullable`` admits null (None)."""

    nullable = False

    def check(self, value: Any, path: str) -> None:
        if value is None and self.nullable:
            return
        if not self.accepts(value):
            fail(path, self.expected + (" or null" if self.nullable else ""), value)

    expected = "a JSON value"

    def accepts(self, value: Any) -> bool:
        return True

    def load(self, value: Any) -> Any:
        return value

    def dump(self, value: Any) -> Any:
        return value


@dataclasses.dataclass(frozen=True)
class Text(Value):
    non_empty: bool = False
    nullable: bool = False
    choices: tuple[str, ...] | None = None

    @property
    def expected(self) -> str:
        if self.choices:
            return f"one of {', '.join(self.choices)}"
        return "a non-empty string" if self.non_empty else "a string"

    def accepts(self, value: Any) -> bool:
        if self.choices:
            return value in self.choices
        return isinstance(value, str) and (bool(value) or not self.non_empty)


@dataclasses.dataclass(frozen=True)
class Int(Value):
    minimum: int | None = 0
    nullable: bool = False

    @property
    def expected(self) -> str:
        return "an integer" if self.minimum is None else f"an integer >= {self.minimum}"

    def accepts(self, value: Any) -> bool:
        return is_int(value) and (self.minimum is None or value >= self.minimum)


@dataclasses.dataclass(frozen=True)
class Bool(Value):
    nullable: bool = False
    expected = "true or false"

    def accepts(self, value: Any) -> bool:
        return type(value) is bool


class Seconds(Value):
    nullable = True
    expected = "a non-negative number of seconds"

    def accepts(self, value: Any) -> bool:
        return is_number(value) and value >= 0


class Timestamp(Value):
    nullable = True
    expected = "an ISO 8601 time"

    def accepts(self, value: Any) -> bool:
        if not isinstance(value, str):
            return False
        try:
            dt.datetime.fromisoformat(value)
        except ValueError:
            return False
        return True


@dataclasses.dataclass(frozen=True)
class JsonObject(Value):
    """Any JSON object, kept as it is; ``known`` entries are checked where present."""

    known: Mapping[str, Value] = dataclasses.field(default_factory=dict)
    expected = "a JSON object"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, dict)

    def check(self, value: Any, path: str) -> None:
        super().check(value, path)
        for name, inner in self.known.items():
            if name in value:
                inner.check(value[name], at(path, name))


@dataclasses.dataclass(frozen=True)
class ListOf(Value):
    """A JSON list of ``item``, read as a tuple. With ``what``, a bad entry is reported as the
    whole list not being ``what``; otherwise by its index. ``empty`` (a message) refuses []."""

    item: Value
    what: str | None = None
    nullable: bool = False
    empty: str | None = None

    def check(self, value: Any, path: str) -> None:
        if value is None and self.nullable:
            return
        if not isinstance(value, list):
            fail(path, (self.what or "a JSON list") + (" or null" if self.nullable else ""),
                  value)
        if self.empty and not value:
            raise Invalid(f"{path} {self.empty}")
        for i, entry in enumerate(value):
            try:
                self.item.check(entry, f"{path}[{i}]")
            except Invalid:
                if self.what is None:
                    raise
                fail(path, self.what + (" or null" if self.nullable else ""), value)

    def load(self, value: Any) -> Any:
        return None if value is None else tuple(self.item.load(v) for v in value)

    def dump(self, value: Any) -> Any:
        return None if value is None else [self.item.dump(v) for v in value]


@dataclasses.dataclass
class Keys(Value):
    """A JSON object with exactly the ``required`` keys, plus any of the ``optional`` ones, each
    holding its Value."""

    required: Mapping[str, Value]
    optional: Mapping[str, Value] = dataclasses.field(default_factory=dict)
    nullable: bool = False

    def check(self, value: Any, path: str, also: tuple[str, ...] = ()) -> None:
        """``also``: keys the caller checks itself."""
        if value is None and self.nullable:
            return
        if not isinstance(value, dict):
            fail(path or "the document", "a JSON object" + (" or null" if self.nullable
                                                              else ""), value)
        missing = [k for k in (*also, *self.required) if k not in value]
        if missing:
            raise Invalid(f"missing keys{f' in {path}' if path else ''}: {', '.join(missing)}")
        unknown = sorted(str(k) for k in value
                         if k not in self.required and k not in self.optional and k not in also)
        if unknown:
            raise UnknownKeys(f"unknown keys in {path or 'the document'}: {', '.join(unknown)}")
        for name, inner in self.required.items():
            inner.check(value[name], at(path, name))
        for name, inner in self.optional.items():
            if name in value:
                inner.check(value[name], at(path, name))


# ---------------------------------------------------------------------------------------------
# Records: a dataclass whose fields are declared document keys


_NO_DEFAULT: Any = dataclasses.MISSING


def key(value: Value, *, name: str | None = None, optional: bool = False,
        flatten: bool = False, default: Any = _NO_DEFAULT) -> Any:
    """A dataclass field that is a document key holding ``value``. ``name``: the key when it is
    not the field's name. ``optional``: documents may lack the key (written when not None,
    read as None when absent). ``flatten``: a record whose keys sit in this record's object.
    ``default``: the Python default of a required key (code that builds records may leave it
    out; documents still hold the key)."""
    meta = {"value": value, "name": name, "flatten": flatten}
    if optional:
        return dataclasses.field(default=None, metadata={**meta, "optional": True})
    return dataclasses.field(default=default, metadata=meta)


class Record(Keys):
    """A dataclass as a JSON object: its keys, checks, reading and writing from its fields."""

    def __init__(self, cls: type, nullable: bool = False) -> None:
        self.cls, self.members = cls, []  # (field name, key, Value, flattened record)
        required: dict[str, Value] = {}
        optional: dict[str, Value] = {}
        for f in dataclasses.fields(cls):
            if "value" not in f.metadata:
                continue  # not stored (the schema version a document was read from)
            value = f.metadata["value"]
            if f.metadata["flatten"]:
                required.update(value.required)
                optional.update(value.optional)
                self.members.append((f.name, None, value))
                continue
            name = f.metadata["name"] or f.name
            (optional if f.metadata.get("optional") else required)[name] = value
            self.members.append((f.name, name, value))
        super().__init__(required=required, optional=optional, nullable=nullable)

    def load(self, value: Any) -> Any:
        if value is None:
            return None
        return self.cls(**{attr: inner.load(value) if name is None
                           else inner.load(value[name]) if name in value else None
                           for attr, name, inner in self.members})

    def dump(self, value: Any) -> Any:
        if value is None:
            return None
        doc: dict[str, Any] = {}
        for attr, name, inner in self.members:
            item = getattr(value, attr)
            if name is None:
                doc.update(inner.dump(item))
            elif name in self.required or item is not None:
                doc[name] = inner.dump(item)
        return doc


def record_of(cls: type, nullable: bool = False) -> Record:
    """The Record of ``cls``, built once (``cls.RECORD``)."""
    if "RECORD" not in cls.__dict__:
        cls.RECORD = Record(cls)
    if not nullable:
        return cls.RECORD
    return Record(cls, nullable=True)


class Stored:
    """A dataclass stored as a JSON object (the mixin gives it ``to_json``)."""

    def to_json(self) -> dict[str, Any]:
        return record_of(type(self)).dump(self)
