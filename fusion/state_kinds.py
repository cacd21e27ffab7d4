"""Schema kinds for state snapshots: each node encodes a trusted object to plain values and decodes
untrusted plain values back, checking every type, length and dtype (fusion.state_codec uses them).

Plain values are what msgpack carries: None, bool, int, float, str, bytes and lists. Decoding builds
nothing but what the schema names: attrs classes through their validating constructors (`Obj`), a closed
union picked by index (`OneOf`), numpy arrays of allow-listed dtypes (`Array`), and field dicts that the
caller sets on instances it built itself (`Record`). Errors are `StateCodecError` with the field path.
"""
from __future__ import annotations

import collections
import hashlib
from typing import Any, Callable

import attrs
import numpy as np

# Arrays may only have these dtypes (little-endian float64 / int64 / bool): never `object`.
ARRAY_DTYPES = ("<f8", "<i8", "|b1")
MAX_ARRAY_BYTES = 1 << 30


class StateCodecError(ValueError):
    """A state value does not fit the schema; `path` says where (e.g. `engine.tracker.x`)."""

    def __init__(self, path: str, reason: str):
        self.path, self.reason = path, reason
        super().__init__(f"{path or '<state>'}: {reason}")

    def under(self, prefix: str) -> "StateCodecError":
        sep = "" if not self.path or self.path.startswith("[") else "."
        return StateCodecError(f"{prefix}{sep}{self.path}" if self.path else prefix, self.reason)


def _type_name(value: Any) -> str:
    return type(value).__name__


class Kind:
    """One schema node: `enc` (trusted object -> plain values) and `dec` (untrusted plain values -> object)."""

    __slots__ = ()
    name = "?"

    def enc(self, value):
        raise NotImplementedError

    def dec(self, value):
        raise NotImplementedError

    def describe(self) -> str:
        return self.name


class _Prim(Kind):
    # `enc` is the builtin conversion itself (int, float, ...): one C call per leaf, the hot path of encoding
    __slots__ = ("name", "pytype", "enc")

    def __init__(self, name: str, pytype: type, convert: Callable):
        self.name, self.pytype, self.enc = name, pytype, convert

    def dec(self, value):
        if type(value) is not self.pytype:
            raise StateCodecError("", f"expected {self.name}, got {_type_name(value)}")
        return value


INT = _Prim("int", int, int)
FLOAT = _Prim("float", float, float)
STR = _Prim("str", str, str)
BOOL = _Prim("bool", bool, bool)
BYTES = _Prim("bytes", bytes, bytes)


class Opt(Kind):
    __slots__ = ("kind",)

    def __init__(self, kind: Kind):
        self.kind = kind

    def enc(self, value):
        return None if value is None else self.kind.enc(value)

    def dec(self, value):
        return None if value is None else self.kind.dec(value)

    def describe(self):
        return f"opt({self.kind.describe()})"


def _need_list(value, what: str) -> list:
    if type(value) is not list:
        raise StateCodecError("", f"expected a list ({what}), got {_type_name(value)}")
    return value


class Seq(Kind):
    """list / deque / set / frozenset of one kind (sent as a list)."""

    __slots__ = ("kind", "container")

    def __init__(self, kind: Kind, container: type = list):
        self.kind, self.container = kind, container

    def enc(self, value):
        enc = self.kind.enc
        if self.container in (set, frozenset):
            value = sorted(value)   # the same state gives the same bytes
        return [enc(v) for v in value]

    def dec(self, value):
        dec = self.kind.dec
        out = []
        for i, v in enumerate(_need_list(value, self.describe())):
            try:
                out.append(dec(v))
            except StateCodecError as exc:
                raise exc.under(f"[{i}]") from None
        return out if self.container is list else self.container(out)

    def describe(self):
        return f"{self.container.__name__}({self.kind.describe()})"


class Tup(Kind):
    """A fixed-length tuple, one kind per position."""

    __slots__ = ("kinds",)

    def __init__(self, *kinds: Kind):
        self.kinds = kinds

    def enc(self, value):
        if len(value) != len(self.kinds):
            raise StateCodecError("", f"expected a {len(self.kinds)}-tuple, got {len(value)} items")
        return [k.enc(v) for k, v in zip(self.kinds, value)]

    def dec(self, value):
        value = _need_list(value, self.describe())
        if len(value) != len(self.kinds):
            raise StateCodecError("", f"expected {len(self.kinds)} items, got {len(value)}")
        out = []
        for i, (k, v) in enumerate(zip(self.kinds, value)):
            try:
                out.append(k.dec(v))
            except StateCodecError as exc:
                raise exc.under(f"[{i}]") from None
        return tuple(out)

    def describe(self):
        return "tuple(" + ",".join(k.describe() for k in self.kinds) + ")"


class Map(Kind):
    """dict / Counter, sent as a flat list [k0, v0, k1, v1, ...] (keys may be tuples)."""

    __slots__ = ("key", "value", "container")

    def __init__(self, key: Kind, value: Kind, container: type = dict):
        self.key, self.value, self.container = key, value, container

    def enc(self, value):
        ke, ve = self.key.enc, self.value.enc
        out = []
        for k, v in value.items():
            out.append(ke(k))
            out.append(ve(v))
        return out

    def dec(self, value):
        value = _need_list(value, self.describe())
        if len(value) % 2:
            raise StateCodecError("", f"a map needs an even number of items, got {len(value)}")
        kd, vd = self.key.dec, self.value.dec
        out = self.container()
        for i in range(0, len(value), 2):
            try:
                k = kd(value[i])
            except StateCodecError as exc:
                raise exc.under(f"[key {i // 2}]") from None
            try:
                out[k] = vd(value[i + 1])
            except StateCodecError as exc:
                raise exc.under(f"[{k!r}]") from None
        if len(out) != len(value) // 2:
            raise StateCodecError("", "a map has a duplicate key")
        return out

    def describe(self):
        return f"{self.container.__name__}({self.key.describe()}:{self.value.describe()})"


class Array(Kind):
    """A numpy array as [dtype, shape, bytes]; dtype from ARRAY_DTYPES, `ndim` fixed by the schema."""

    __slots__ = ("dtype", "ndim")

    def __init__(self, dtype: str, ndim: int):
        assert dtype in ARRAY_DTYPES
        self.dtype, self.ndim = dtype, ndim

    def enc(self, value):
        arr = np.ascontiguousarray(value, dtype=np.dtype(self.dtype))
        return [self.dtype, list(arr.shape), arr.tobytes()]

    def dec(self, value):
        value = _need_list(value, "array [dtype, shape, bytes]")
        if len(value) != 3:
            raise StateCodecError("", f"an array is [dtype, shape, bytes], got {len(value)} items")
        dtype, shape, data = value
        if type(dtype) is not str or dtype not in ARRAY_DTYPES:
            raise StateCodecError("", f"array dtype {dtype!r} is not one of {', '.join(ARRAY_DTYPES)}")
        if dtype != self.dtype:
            raise StateCodecError("", f"array dtype {dtype} where the schema has {self.dtype}")
        if type(shape) is not list or len(shape) != self.ndim or any(type(n) is not int or n < 0 for n in shape):
            raise StateCodecError("", f"array shape {shape!r} is not {self.ndim} non-negative ints")
        if type(data) is not bytes:
            raise StateCodecError("", f"array data must be bytes, got {_type_name(data)}")
        size = np.dtype(dtype).itemsize
        for n in shape:
            size *= n
            if size > MAX_ARRAY_BYTES:
                raise StateCodecError("", f"array shape {shape} is too large")
        if size != len(data):
            raise StateCodecError("", f"array of shape {shape} needs {size} bytes, got {len(data)}")
        return np.frombuffer(data, dtype=np.dtype(dtype)).reshape(shape).copy()

    def describe(self):
        return f"array({self.dtype},{self.ndim})"


class Obj(Kind):
    """A project type, its fields in schema order. attrs classes are built through their constructor
    (validators and converters run); `fields` must name every attrs field (checked at import)."""

    __slots__ = ("cls", "fields", "aliases")

    def __init__(self, cls: type, fields: list[tuple[str, Kind]]):
        self.cls, self.fields = cls, fields
        declared = {a.name: a.alias for a in attrs.fields(cls)}
        if set(declared) != {n for n, _ in fields}:
            raise TypeError(f"state schema of {cls.__name__} names {sorted(n for n, _ in fields)}, "
                            f"the class has {sorted(declared)}")
        self.aliases = [declared[n] for n, _ in fields]

    @property
    def name(self):
        return self.cls.__name__

    def enc(self, value):
        if type(value) is not self.cls:
            raise StateCodecError("", f"expected {self.cls.__name__}, got {_type_name(value)}")
        return [k.enc(getattr(value, n)) for n, k in self.fields]

    def dec(self, value):
        kwargs = dec_fields(self.fields, value, self.cls.__name__, self.aliases)
        try:
            return self.cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise StateCodecError("", f"{self.cls.__name__} refused its fields: {exc}") from None

    def describe(self):
        return self.cls.__name__ + "{" + ",".join(f"{n}:{k.describe()}" for n, k in self.fields) + "}"


def dec_fields(fields, value, what: str, names=None) -> dict:
    value = _need_list(value, f"fields of {what}")
    if len(value) != len(fields):
        raise StateCodecError("", f"{what} has {len(fields)} fields, got {len(value)}")
    out = {}
    for (name, kind), key, v in zip(fields, names or [n for n, _ in fields], value):
        try:
            out[key] = kind.dec(v)
        except StateCodecError as exc:
            raise exc.under(name) from None
    return out


class OneOf(Kind):
    """A closed union of project types, sent as [index, value]; the index picks from this list only."""

    __slots__ = ("kinds",)

    def __init__(self, *kinds: Obj):
        self.kinds = kinds

    def enc(self, value):
        for i, k in enumerate(self.kinds):
            if type(value) is k.cls:
                return [i, k.enc(value)]
        raise StateCodecError("", f"{_type_name(value)} is not one of {self.describe()}")

    def dec(self, value):
        value = _need_list(value, "[alternative, value]")
        if len(value) != 2 or type(value[0]) is not int or not 0 <= value[0] < len(self.kinds):
            raise StateCodecError("", f"expected [alternative 0..{len(self.kinds) - 1}, value]")
        return self.kinds[value[0]].dec(value[1])

    def describe(self):
        return "oneof(" + "|".join(k.name for k in self.kinds) + ")"


class Record(Kind):
    """The state fields of a plain (non-attrs) object, as a dict name -> value: restored into an instance
    that already holds its configuration (`restore_into`), never constructed from the data."""

    __slots__ = ("label", "fields")

    def __init__(self, label: str, fields: list[tuple[str, Kind]]):
        self.label, self.fields = label, fields

    @property
    def name(self):
        return self.label

    def enc(self, value):
        get = value.get if isinstance(value, dict) else lambda n: getattr(value, n)
        out = []
        for n, k in self.fields:
            try:
                out.append(k.enc(get(n)))
            except StateCodecError as exc:
                raise exc.under(n) from None
        return out

    def dec(self, value):
        return dec_fields(self.fields, value, self.label)

    def describe(self):
        return self.label + "{" + ",".join(f"{n}:{k.describe()}" for n, k in self.fields) + "}"


def restore_into(target: object, values: dict) -> None:
    for name, value in values.items():
        setattr(target, name, value)


def schema_digest(kind: Kind) -> str:
    """A short digest of the schema's description: a snapshot written under another layout is refused."""
    return hashlib.blake2b(kind.describe().encode(), digest_size=8).hexdigest()
