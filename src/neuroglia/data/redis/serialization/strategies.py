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
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

from ..exceptions import SerializationError
from .signed_pickle import PickleSerializer

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

T = TypeVar("T")


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


def from_plain(data: Any, type_: type[T] | None) -> T:
    """Rebuild an object of ``type_`` from decoded data (``None``: return it as is).

    Pydantic models are validated with ``model_validate``; dataclasses are
    called with the decoded mapping's items as keyword arguments.
    """
    if type_ is None or isinstance(data, type_):
        return cast(T, data)
    try:
        if type_ is str and isinstance(data, bytes):
            # str(b"x") would give "b'x'"; the raw strategy hands back UTF-8 bytes.
            return cast(T, data.decode())
        validate = getattr(type_, "model_validate", None)
        if callable(validate):
            return cast(T, validate(data))
        if dataclasses.is_dataclass(type_) and isinstance(data, Mapping):
            return cast(T, type_(**data))
        return type_(data)  # type: ignore[call-arg]
    except (TypeError, ValueError) as exc:
        raise SerializationError(f"cannot build {type_.__name__} from the stored value: {exc}") from exc


class JsonSerializer:
    """JSON through orjson when installed, else the standard library."""

    name = "json"

    def __init__(self, *, default: Callable[[Any], Any] = to_plain) -> None:
        self._default = default
        try:
            import orjson
        except ImportError:  # pragma: no cover - exercised without the extra
            self._orjson: Any = None
        else:
            self._orjson = orjson

    def dumps(self, value: Any) -> bytes:
        """Encode ``value`` as UTF-8 JSON."""
        try:
            if self._orjson is not None:
                return cast(
                    bytes, self._orjson.dumps(value, default=self._default, option=self._orjson.OPT_NON_STR_KEYS)
                )
            return json.dumps(value, default=self._default, separators=(",", ":"), allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            raise SerializationError(f"json cannot serialize {type(value).__name__}: {exc}") from exc

    def loads(self, data: bytes) -> Any:
        """Decode JSON."""
        try:
            if self._orjson is not None:
                return self._orjson.loads(data)
            return json.loads(data)
        except (TypeError, ValueError) as exc:
            raise SerializationError(f"stored value is not valid JSON: {exc}") from exc


class MsgPackSerializer:
    """MessagePack (needs the ``msgpack`` extra)."""

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
        except Exception as exc:  # msgpack raises several unrelated types
            raise SerializationError(f"stored value is not valid msgpack: {exc}") from exc


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
