"""The versioned envelope around values written by the typed helpers.

``set_object_async`` and :class:`RedisHashRepository` store the bytes of the
serialization strategy inside a small header, so a reader can tell which
strategy wrote a value and refuse (rather than misread) a value written by
another one, and so compression can be added without guessing::

    0xC1 'N' 'G'   magic. 0xC1 never starts valid UTF-8, JSON or msgpack
    0x01           envelope version
    flags          bits 0-1: compression (0 none, 1 zlib, 2 zstd); others 0
    n              length of the strategy name, 1..255
    name           the strategy's ``name``, UTF-8 ("json", "msgpack"...)
    payload        the strategy's bytes, compressed when the flag says so

A value without the magic was not written through the envelope (by the
plain ``set_async``, by another program, or before the envelope existed):
it is handed to the strategy as it is, and the strategy decides (a signed
strategy refuses anything it did not sign).

The envelope is not a security boundary: anyone who can write to Redis can
forge one. Integrity against such writers is the job of a signed strategy
(:class:`~neuroglia.data.redis.PickleSerializer`); the envelope only makes
configuration changes safe.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from ..exceptions import ConfigurationError, InvalidArgumentError, SerializationError
from .strategies import SerializationStrategy

__all__ = ["ENVELOPE_VERSION", "Envelope", "EnvelopePolicy", "EnvelopeSerializer", "read_envelope"]

Compression = Literal["auto", "zstd", "zlib", "none"]

MAGIC: Final = b"\xc1NG"
ENVELOPE_VERSION: Final = 1
_NONE, _ZLIB, _ZSTD = 0, 1, 2
_COMPRESSION_NAMES: Final = {_NONE: "none", _ZLIB: "zlib", _ZSTD: "zstd"}
_COMPRESSION_MASK: Final = 0b11
# Redis' proto-max-bulk-len default (as MAX_VALUE_BYTES of the repository): no
# value we write decodes to more than this, so a larger claim is refused.
MAX_PAYLOAD_BYTES: Final = 512 * 1024 * 1024
# What HINCRBY reads and writes: the only bare (unenveloped) hash fields we write.
_CANONICAL_INT: Final = re.compile(rb"-?(?:0|[1-9][0-9]{0,18})")
_INT64: Final = range(-(2**63), 2**63)


def _zstd() -> Any:
    try:
        import zstandard
    except ImportError:
        return None
    return zstandard


@dataclass(frozen=True, kw_only=True, slots=True)
class EnvelopePolicy:
    """How the typed helpers wrap what the strategy produced.

    ``compression``: ``"auto"`` (zstd when the ``zstd`` extra is installed,
    else zlib), ``"zstd"``, ``"zlib"`` or ``"none"``. Payloads of at least
    ``compress_threshold`` bytes are compressed, and kept compressed only if
    that saves space. ``level`` is the compressor's level (``None``: its
    default). Reading understands every compression whatever the policy.
    """

    compression: Compression = "auto"
    compress_threshold: int = 4096
    level: int | None = None

    def __post_init__(self) -> None:
        if self.compression not in ("auto", "zstd", "zlib", "none"):
            raise ConfigurationError(
                f"envelope.compression: expected 'auto', 'zstd', 'zlib' or 'none', got {self.compression!r}"
            )
        if self.compression == "zstd" and _zstd() is None:
            raise ConfigurationError(
                "envelope.compression: 'zstd' needs the zstd extra: pip install 'neuroglia-redis[zstd]'"
            )
        threshold = self.compress_threshold
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
            raise ConfigurationError(f"envelope.compress_threshold: must be an integer >= 1, got {threshold!r}")
        if self.level is not None and (isinstance(self.level, bool) or not isinstance(self.level, int)):
            raise ConfigurationError(f"envelope.level: must be an integer or None, got {self.level!r}")

    @property
    def algorithm(self) -> int:
        """The compression flag written for large payloads."""
        if self.compression == "none":
            return _NONE
        if self.compression == "zlib" or (self.compression == "auto" and _zstd() is None):
            return _ZLIB
        return _ZSTD

    @classmethod
    def coerce(cls, value: EnvelopePolicy | Mapping[str, Any] | None) -> EnvelopePolicy:
        """Accept a policy, a dict of its fields, or ``None`` for the defaults."""
        if value is None:
            return cls()
        if isinstance(value, EnvelopePolicy):
            return value
        if isinstance(value, Mapping):
            allowed = ("compression", "compress_threshold", "level")
            unknown = sorted(set(value) - set(allowed))
            if unknown:
                raise ConfigurationError(f"envelope: unknown keys {unknown}; allowed: {list(allowed)}")
            return cls(**value)
        raise ConfigurationError(f"envelope: expected an EnvelopePolicy or a dict, got {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class Envelope:
    """A decoded envelope: what :func:`read_envelope` returns."""

    version: int
    strategy: str
    compression: str
    payload: bytes
    """The strategy's bytes, decompressed."""


def read_envelope(data: bytes | bytearray | memoryview) -> Envelope | None:
    """Decode the envelope of a stored value; ``None`` when ``data`` has none.

    Raises :class:`~neuroglia.data.redis.SerializationError` for a damaged
    envelope (unknown version or flags, bad compression, a payload that
    would decompress past 512 MiB). Handy to inspect a value by hand::

        envelope = read_envelope(await repo.get_async("menu:special"))
        envelope.strategy, json.loads(envelope.payload)
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        return None
    view = memoryview(data)
    if len(view) < 3 or view[:3].tobytes() != MAGIC:
        return None
    if len(view) < 6:
        raise SerializationError("the value's envelope is truncated")
    version, flags, size = view[3], view[4], view[5]
    if version != ENVELOPE_VERSION:
        raise SerializationError(
            f"the value's envelope has version {version}; this library reads version {ENVELOPE_VERSION}"
        )
    if flags & ~_COMPRESSION_MASK or (flags & _COMPRESSION_MASK) not in _COMPRESSION_NAMES:
        raise SerializationError(f"the value's envelope has unknown flags {flags:#04x}")
    if size == 0 or len(view) < 6 + size:
        raise SerializationError("the value's envelope is truncated")
    try:
        strategy = bytes(view[6 : 6 + size]).decode()
    except UnicodeDecodeError:
        raise SerializationError("the value's envelope names its strategy in invalid UTF-8") from None
    compression = flags & _COMPRESSION_MASK
    payload = _decompress(compression, view[6 + size :])
    return Envelope(ENVELOPE_VERSION, strategy, _COMPRESSION_NAMES[compression], payload)


def _decompress(algorithm: int, data: memoryview) -> bytes:
    if algorithm == _NONE:
        return bytes(data)
    too_large = "the value's compressed payload would expand past 512 MiB; refusing it"
    if algorithm == _ZLIB:
        inflater = zlib.decompressobj()
        try:
            out = inflater.decompress(data, MAX_PAYLOAD_BYTES)
        except zlib.error as exc:
            raise SerializationError(f"the value's zlib payload is damaged: {exc}") from exc
        if inflater.unconsumed_tail:
            raise SerializationError(too_large)
        if not inflater.eof or inflater.unused_data:
            raise SerializationError("the value's zlib payload is truncated or followed by extra bytes")
        return out
    zstandard = _zstd()
    if zstandard is None:
        raise SerializationError("the value is compressed with zstd: pip install 'neuroglia-redis[zstd]' to read it")
    try:
        # Never trust the frame's size claim blindly: a bomb declares a huge one.
        declared = zstandard.get_frame_parameters(data).content_size
        if declared == zstandard.CONTENTSIZE_UNKNOWN:
            raise SerializationError("the value's zstd frame does not declare its size; refusing it")
        if declared > MAX_PAYLOAD_BYTES:
            raise SerializationError(too_large)
        return bytes(zstandard.ZstdDecompressor().decompress(data))
    except zstandard.ZstdError as exc:
        raise SerializationError(f"the value's zstd payload is damaged: {exc}") from exc


def _compress(algorithm: int, data: bytes, level: int | None) -> bytes:
    if algorithm == _ZLIB:
        return zlib.compress(data, -1 if level is None else level)
    zstandard = _zstd()
    compressor = zstandard.ZstdCompressor() if level is None else zstandard.ZstdCompressor(level=level)
    return bytes(compressor.compress(data))


class EnvelopeSerializer:
    """A :class:`SerializationStrategy` that wraps another one in the envelope.

    ``dumps`` runs the strategy, compresses large payloads and prepends the
    header. ``loads`` checks that the header names this strategy (a value
    written by another one raises :class:`SerializationError` naming both,
    and is not decoded), decompresses, and runs the strategy; a value without
    an envelope goes to the strategy unchanged.

    Hash fields (:meth:`dumps_field`/:meth:`loads_field`) follow the same
    rule with one exception: an ``int`` in HINCRBY's 64-bit range is stored
    as bare decimal text, so ``HINCRBY`` keeps working on it, unless the strategy is signed
    (``strategy.signed``), whose fields are all signed.
    """

    def __init__(self, strategy: SerializationStrategy, policy: EnvelopePolicy | None = None) -> None:
        if isinstance(strategy, EnvelopeSerializer):
            strategy = strategy.strategy
        self._strategy = strategy
        self._policy = policy or EnvelopePolicy()
        name = str(getattr(strategy, "name", "") or type(strategy).__name__)
        encoded = name.encode()
        if not 1 <= len(encoded) <= 255:
            raise ConfigurationError(f"serializer: a strategy name must be 1..255 bytes of UTF-8, got {name!r}")
        self.name = name
        self._signed = bool(getattr(strategy, "signed", False))
        self._prefix = {
            flag: MAGIC + bytes((ENVELOPE_VERSION, flag, len(encoded))) + encoded for flag in _COMPRESSION_NAMES
        }
        self._algorithm = self._policy.algorithm

    @property
    def strategy(self) -> SerializationStrategy:
        """The wrapped strategy."""
        return self._strategy

    @property
    def policy(self) -> EnvelopePolicy:
        """The envelope's settings."""
        return self._policy

    def dumps(self, value: Any) -> bytes:
        """Encode ``value`` with the strategy and wrap it."""
        try:
            payload = self._strategy.dumps(value)
        except SerializationError:
            raise
        except (TypeError, ValueError, OverflowError) as exc:
            raise SerializationError(f"{self.name} cannot serialize {type(value).__name__}: {exc}") from exc
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise SerializationError(f"the {self.name!r} strategy returned {type(payload).__name__}, not bytes")
        payload = bytes(payload)
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise InvalidArgumentError("the serialized value is larger than Redis' 512 MiB limit")
        flag = _NONE
        if self._algorithm != _NONE and len(payload) >= self._policy.compress_threshold:
            packed = _compress(self._algorithm, payload, self._policy.level)
            if len(packed) < len(payload):
                payload, flag = packed, self._algorithm
        return self._prefix[flag] + payload

    def loads(self, data: bytes) -> Any:
        """Unwrap (checking the strategy) and decode."""
        envelope = read_envelope(data)
        if envelope is None:
            return self._strategy.loads(bytes(data) if not isinstance(data, bytes) else data)
        if envelope.strategy != self.name:
            raise SerializationError(
                f"the value was written by the {envelope.strategy!r} strategy, but this repository reads with "
                f"{self.name!r}: it was not decoded (switch the serializer back, or delete or rewrite the key)"
            )
        return self._strategy.loads(envelope.payload)

    def dumps_field(self, value: Any) -> bytes:
        """Encode a hash field: bare decimal text for an ``int`` (HINCRBY), else the envelope."""
        if type(value) is int and value in _INT64 and not self._signed:
            return str(value).encode()
        return self.dumps(value)

    def loads_field(self, data: bytes) -> Any:
        """Decode a hash field written by :meth:`dumps_field` (or by ``HINCRBY``)."""
        if not self._signed and _CANONICAL_INT.fullmatch(data):
            return int(data)
        return self.loads(data)

    def __repr__(self) -> str:
        return f"EnvelopeSerializer({self._strategy!r}, {self._policy!r})"
