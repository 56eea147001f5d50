"""Serialization: the strategies that turn objects into bytes, the versioned envelope, signed pickle.

A :class:`SerializationStrategy` (``dumps``/``loads``) is what the typed
helpers use: JSON by default (orjson when installed), msgpack, raw, or the
signed :class:`PickleSerializer`. The :mod:`.envelope` wraps a strategy's
bytes with a header naming the format, and compresses large values.
"""

from .envelope import ENVELOPE_VERSION, Envelope, EnvelopePolicy, EnvelopeSerializer, read_envelope
from .signed_pickle import MIN_SECRET_BYTES, PickleSerializer
from .strategies import (
    JsonSerializer,
    MsgPackSerializer,
    RawSerializer,
    SerializationStrategy,
    from_plain,
    resolve_serializer,
    to_plain,
)

__all__ = [
    "ENVELOPE_VERSION",
    "MIN_SECRET_BYTES",
    "Envelope",
    "EnvelopePolicy",
    "EnvelopeSerializer",
    "JsonSerializer",
    "MsgPackSerializer",
    "PickleSerializer",
    "RawSerializer",
    "SerializationStrategy",
    "from_plain",
    "read_envelope",
    "resolve_serializer",
    "to_plain",
]
