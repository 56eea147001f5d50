"""Serialization strategies for the typed layer.

A :class:`SerializationStrategy` turns Python objects into the bytes stored in
Redis and back. The repository's plain ``set_async``/``get_async`` never
serialize (they store the ``str``/``bytes``/number they are given, as the
framework's page does with ``json.dumps``); the typed helpers
(``set_object_async``/``get_object_async`` and :class:`RedisHashRepository`)
go through the configured strategy.

Strategies shipped: ``"json"`` (the default; orjson when installed),
``"msgpack"`` (extra ``msgpack``) and ``"raw"`` (``str``/``bytes`` only).
Pickle has no name here: unpickling data from a shared cache runs arbitrary
code, so it exists only signed, as :class:`PickleSerializer` built with a
secret (HMAC-SHA256 checked before anything is unpickled).

The typed helpers wrap the strategy's bytes in a versioned envelope (see
``envelope.py``); the strategies themselves know nothing about it, so
``strategy.dumps``/``strategy.loads`` stay plain encoders.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import decimal
import enum
import json
import math
import uuid
from collections.abc import Callable
from typing import Any, Final, Protocol, cast, runtime_checkable

from ..exceptions import SerializationError
from .signed_pickle import PickleSerializer
from .typed import from_plain

__all__ = [
    "JsonSerializer",
    "MsgPackSerializer",
    "PickleSerializer",
    "RawSerializer",
    "SerializationStrategy",
    "from_plain",
    "resolve_serializer",
    "to_plain",
]


@runtime_checkable
class SerializationStrategy(Protocol):
    """Turns objects into bytes and back.

    ``name`` identifies the format. ``dumps`` must raise
    :class:`~neuroglia.data.redis.SerializationError` (or ``TypeError``/
    ``ValueError``, which the repository wraps) for values it cannot encode.
    """

    name: str

    def dumps(self, value: Any) -> bytes:
        """Encode ``value``."""
        ...

    def loads(self, data: bytes) -> Any:
        """Decode what :meth:`dumps` produced."""
        ...


def to_plain(value: Any) -> Any:
    """Convert dataclasses, pydantic models and common scalars to JSON-friendly data.

    Used as the ``default`` hook of the JSON and msgpack encoders: it is only
    called for objects the encoder does not know.
    """
    convert = _PLAIN_BY_CLASS.get(value.__class__)
    if convert is not None:  # the common leaves, at the cost of one lookup
        return convert(value)
    dump = getattr(value, "model_dump", None)
    if callable(dump):  # pydantic v2
        return dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, _dt.datetime | _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"objects of type {type(value).__name__} are not serializable")


_PLAIN_BY_CLASS: Final[dict[type, Callable[[Any], Any]]] = {
    decimal.Decimal: str,
    uuid.UUID: str,
    set: list,
    frozenset: list,
    tuple: list,
    _dt.timedelta: _dt.timedelta.total_seconds,
    _dt.datetime: _dt.datetime.isoformat,
    _dt.date: _dt.date.isoformat,
    _dt.time: _dt.time.isoformat,
}


class JsonSerializer:
    """JSON through orjson when installed, else the standard library; the same rules either way.

    JSON holds text keys, finite numbers, text, booleans, null, arrays and
    objects. What it cannot hold faithfully is refused with
    :class:`~neuroglia.data.redis.SerializationError` rather than stored
    changed: ``NaN`` and infinities (orjson would write ``null``, which
    reads back as ``None``), dict keys that are not text (``{1: "a"}``
    would read back as ``{"1": "a"}``, ``{True: "x"}`` as ``{"true": "x"}``,
    and ``{1: "a", "1": "b"}`` would lose an entry) and integers beyond
    orjson's 64 bits. Subclasses of ``str`` as keys (a ``StrEnum``) are
    stored as their text. Dataclasses, pydantic models, ``datetime``,
    ``UUID``, ``Decimal``, enums, sets and tuples are written as JSON's own
    types, and a typed read (``get_object_async(key, Order)``) converts them
    back by the annotations (see ``typed.py``).
    """

    name = "json"

    def __init__(self, *, default: Callable[[Any], Any] = to_plain) -> None:
        self._default = default
        try:
            import orjson
        except ImportError:  # exercised with orjson hidden (tests/serialization)
            self._orjson: Any = None
        else:
            self._orjson = orjson

    def dumps(self, value: Any) -> bytes:
        """Encode ``value`` as UTF-8 JSON, or raise :class:`SerializationError` (see the class docstring)."""
        try:
            orjson = self._orjson
            if orjson is None:
                plain = _json_ready(value, self._default)
                return json.dumps(plain, default=self._default, separators=(",", ":"), allow_nan=False).encode()
            try:
                out = cast(bytes, orjson.dumps(value, default=self._default))
            except TypeError:
                # A key that is not text (some str subclasses too), or something
                # no hook encodes: the slow path rebuilds it, or says what is wrong.
                return cast(bytes, orjson.dumps(_json_ready(value, self._default), default=self._default))
            if b"null" in out:
                # orjson writes NaN and infinities as null: look for them in
                # the value (only then: many values hold no null at all).
                _refuse_non_finite(value, self._default)
            return out
        except SerializationError:
            raise
        except (TypeError, ValueError, RecursionError) as exc:
            raise SerializationError(f"json cannot serialize {type(value).__name__}: {exc}") from exc

    def loads(self, data: bytes) -> Any:
        """Decode JSON."""
        try:
            if self._orjson is not None:
                return self._orjson.loads(data)
            return json.loads(data)
        except (TypeError, ValueError) as exc:
            # Not chained: the decoder's error holds the whole document (.doc).
            raise SerializationError(f"stored value is not valid JSON: {exc}") from None


# Leaves both encoders write as text through their own rules or the hook.
_JSON_LEAVES: Final = (_dt.date, _dt.time, _dt.timedelta, uuid.UUID, decimal.Decimal)


_LEAVES_WITHOUT_FLOATS: Final = (str, int, bytes, _dt.date, _dt.time, _dt.timedelta, uuid.UUID, decimal.Decimal)
_NO_FLOATS_INSIDE: Final = frozenset({str, int, bool, bytes, _dt.datetime, _dt.date, uuid.UUID, decimal.Decimal})


def _refuse_non_finite(value: Any, default: Callable[[Any], Any]) -> None:
    """Raise :class:`SerializationError` if a NaN or an infinity is anywhere in ``value``.

    A search only (nothing is rebuilt), through containers, dataclasses,
    pydantic models and what the hook makes of other objects: the check of
    the fast path, which must cost little next to orjson itself.
    """
    stack = [value]
    seen = 0
    while stack:
        item = stack.pop()
        seen += 1
        if seen > 1_000_000:
            raise SerializationError("json cannot check a value of more than a million parts")
        cls = item.__class__
        if cls is float:
            if item - item != 0.0:  # NaN and infinities only
                _json_ready(item, default)  # raises with the usual message
        elif cls in _NO_FLOATS_INSIDE or item is None:
            continue
        elif cls is dict:
            stack.extend(item.values())
        elif cls is list or cls is tuple or cls is set or cls is frozenset:
            stack.extend(item)
        elif hasattr(cls, "__dataclass_fields__") and hasattr(item, "__dict__"):
            stack.extend(item.__dict__.values())  # a dataclass's fields, and any other attribute
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
        elif isinstance(item, float):
            stack.append(float(item))
        elif isinstance(item, enum.Enum):
            stack.append(item.value)
        elif isinstance(item, _LEAVES_WITHOUT_FLOATS):
            continue
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            stack.extend(getattr(item, f.name) for f in dataclasses.fields(item))
        else:
            stack.append(default(item))


def _json_ready(value: Any, default: Callable[[Any], Any], depth: int = 0) -> Any:
    """``value`` with every container checked for JSON: text keys, finite floats; raises otherwise.

    Containers are rebuilt (dataclasses as dicts, sets and tuples as lists,
    str subclasses as keys as plain text); leaves are left to the encoder.
    """
    if depth > 200:
        raise SerializationError("json cannot serialize a value nested more than 200 levels deep")
    cls = value.__class__
    if cls is str or cls is int or cls is bool or value is None:
        return value
    if cls is float:
        if not math.isfinite(value):
            raise SerializationError(
                f"json cannot store {value!r} faithfully (it would read back as null); "
                "store it as text, or use the msgpack or pickle serializer"
            )
        return value
    if isinstance(value, dict):
        ready: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise SerializationError(
                    f"json stores dict keys as text: the key {key!r} ({type(key).__name__}) would read back "
                    "as a different key; use str keys, or the msgpack serializer"
                )
            text = str.__str__(key)
            if text in ready:
                raise SerializationError(f"json: two dict keys are both stored as {text!r}; one would be lost")
            ready[text] = _json_ready(item, default, depth + 1)
        return ready
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_ready(item, default, depth + 1) for item in value]
    if isinstance(value, str | int):  # an enum on str or int, a subclass: the encoder writes its value
        return value
    if isinstance(value, float):
        return _json_ready(float(value), default, depth)
    if isinstance(value, _JSON_LEAVES):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _json_ready(getattr(value, f.name), default, depth + 1) for f in dataclasses.fields(value)}
    converted = default(value)  # pydantic models, enums, custom hooks; TypeError when none applies
    if converted is value:
        raise SerializationError(f"json cannot serialize {type(value).__name__}: the default hook returned it as is")
    return _json_ready(converted, default, depth + 1)


class MsgPackSerializer:
    """MessagePack (needs the ``msgpack`` extra).

    MessagePack holds keys of any scalar type, NaN and infinities, so
    ``{1: "a", "1": "b"}``, ``{True: "x"}`` and ``float("nan")`` read back as
    written. A tuple used as a key is written as an array and read back as a
    tuple. Like JSON, it writes sets and tuples (as values) as arrays and
    dataclasses as maps; a typed read converts them back.
    """

    name = "msgpack"

    def __init__(self, *, default: Callable[[Any], Any] = to_plain) -> None:
        try:
            import msgpack
        except ImportError as exc:
            raise ValueError("the msgpack serializer needs the extra: pip install 'neuroglia-redis[msgpack]'") from exc
        self._msgpack: Any = msgpack
        self._default = default

    def dumps(self, value: Any) -> bytes:
        """Encode ``value`` as MessagePack."""
        try:
            return cast(bytes, self._msgpack.packb(value, default=self._default, use_bin_type=True))
        except (TypeError, ValueError, OverflowError) as exc:
            raise SerializationError(f"msgpack cannot serialize {type(value).__name__}: {exc}") from exc

    def loads(self, data: bytes) -> Any:
        """Decode MessagePack."""
        try:
            return self._msgpack.unpackb(data, raw=False, strict_map_key=False)
        except TypeError as exc:
            if "unhashable" not in str(exc):
                raise SerializationError(f"stored value is not valid msgpack: {exc}") from None
        except Exception as exc:  # msgpack raises several unrelated types, some holding the data: not chained
            raise SerializationError(f"stored value is not valid msgpack: {exc}") from None
        # A map key that was written as an array (a tuple key): read it back as a tuple.
        try:
            return self._msgpack.unpackb(data, raw=False, strict_map_key=False, object_pairs_hook=_tuple_keys)
        except Exception as exc:
            raise SerializationError(f"stored value is not valid msgpack: {exc}") from None


def _tuple_keys(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    return {_hashable(key): item for key, item in pairs}


def _hashable(key: Any) -> Any:
    if isinstance(key, list):
        return tuple(_hashable(part) for part in key)
    if isinstance(key, dict):
        raise TypeError("a map key that is itself a map cannot be read back")
    return key


class RawSerializer:
    """Stores ``str`` and ``bytes`` as they are; anything else is refused."""

    name = "raw"

    def dumps(self, value: Any) -> bytes:
        """Encode ``str`` as UTF-8, pass ``bytes`` through."""
        if isinstance(value, bytes):
            return value
        if isinstance(value, str):
            return value.encode()
        raise SerializationError(f"the raw serializer stores str or bytes, not {type(value).__name__}")

    def loads(self, data: bytes) -> Any:
        """Return the stored bytes unchanged."""
        return data


_BUILTIN: dict[str, Callable[[], SerializationStrategy]] = {
    "json": JsonSerializer,
    "msgpack": MsgPackSerializer,
    "raw": RawSerializer,
}


def resolve_serializer(value: str | SerializationStrategy) -> SerializationStrategy:
    """Return the strategy named by ``value`` (or ``value`` itself if it is one).

    Raises :class:`ValueError` naming the allowed names for anything else.
    """
    if isinstance(value, str):
        factory = _BUILTIN.get(value)
        if factory is None:
            hint = (
                " (pickle exists only signed: serializer=PickleSerializer(secret=...), see docs/security.md)"
                if "pickle" in value.lower()
                else ""
            )
            raise ValueError(
                f"unknown serializer {value!r}; allowed: {sorted(_BUILTIN)} or a SerializationStrategy{hint}"
            )
        return factory()
    if isinstance(value, SerializationStrategy):
        return value
    raise ValueError(f"expected a serializer name or a SerializationStrategy, got {type(value).__name__}")
