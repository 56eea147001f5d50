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

With a signed strategy (:class:`~neuroglia.data.redis.PickleSerializer`) a
compressed payload is the signed value of one flag byte (the compression,
again) followed by the compressed pickle: compressed first, then signed, so
that the signature is checked before anything is decompressed.

A value without the magic was not written through the envelope (by the
plain ``set_async``, by another program, or before the envelope existed):
it is handed to the strategy as it is, and the strategy decides (a signed
strategy refuses anything it did not sign).

Reading is bounded (:class:`EnvelopePolicy`): no payload may be or inflate
to more than ``max_value_bytes``, nor inflate to more than ``max_ratio``
times its compressed size; decompression streams and stops at the bound.
A value whose decoding may take long (more than ``offload_threshold``
bytes to verify, inflate or parse) finishes in a worker thread
(:mod:`.deferred`), off the event loop.

The envelope is not a security boundary: anyone who can write to Redis can
forge one. Integrity against such writers is the job of a signed strategy;
the envelope only makes configuration changes safe, and bounds what a
forged value can cost.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol, TypeVar, runtime_checkable

from ..exceptions import ConfigurationError, InvalidArgumentError, SerializationError
from .compression import NAMES as _COMPRESSION_NAMES
from .compression import NONE as _NONE
from .compression import ZLIB as _ZLIB
from .compression import ZSTD as _ZSTD
from .compression import Inflater
from .compression import compress as _compress
from .compression import zstd_module as _zstd_module
from .deferred import Deferred, Steps, finish, start
from .strategies import SerializationStrategy
from .typed import from_plain

__all__ = ["ENVELOPE_VERSION", "Envelope", "EnvelopePolicy", "EnvelopeSerializer", "read_envelope"]

Compression = Literal["auto", "zstd", "zlib", "none"]
T = TypeVar("T")

MAGIC: Final = b"\xc1NG"
ENVELOPE_VERSION: Final = 1
_COMPRESSION_MASK: Final = 0b11
MiB: Final = 1024 * 1024
# Redis' proto-max-bulk-len default (as MAX_VALUE_BYTES of the repository): the
# ceiling of max_value_bytes; no value can be larger than this in Redis.
MAX_PAYLOAD_BYTES: Final = 512 * MiB
# Below this, the ratio bound does not apply: a value this small costs little.
_RATIO_FLOOR: Final = MiB
# What HINCRBY reads and writes: the only bare (unenveloped) hash fields we write.
_CANONICAL_INT: Final = re.compile(rb"-?(?:0|[1-9][0-9]{0,18})")
_INT64: Final = range(-(2**63), 2**63)
_ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"


def _zstd() -> Any:
    return _zstd_module()


def _size(n: int) -> str:
    return f"{n // MiB} MiB" if n % MiB == 0 else f"{n} bytes"


@dataclass(frozen=True, kw_only=True, slots=True)
class EnvelopePolicy:
    """How the typed helpers wrap what the strategy produced, and how far a read may go.

    ``compression``: ``"auto"`` (zstd when the ``zstd`` extra is installed,
    else zlib), ``"zstd"``, ``"zlib"`` or ``"none"``. Payloads of at least
    ``compress_threshold`` bytes are compressed, and kept compressed only if
    that saves space and stays within ``max_ratio``. ``level`` is the
    compressor's level (``None``: its default). Reading understands every
    compression whatever the policy.

    The bounds of a read (what a planted value may cost):
    ``max_value_bytes`` (default 64 MiB, at most 512 MiB) is the largest
    payload read or written, compressed or not; a compressed payload may
    not inflate to more than ``max_ratio`` (default 256) times its size.
    Decompression stops at the bound with
    :class:`~neuroglia.data.redis.SerializationError`. A value with more than
    ``offload_threshold`` bytes (default 1 MiB) to verify, inflate or decode
    finishes decoding in a worker thread, off the event loop.
    """

    compression: Compression = "auto"
    compress_threshold: int = 4096
    level: int | None = None
    max_value_bytes: int = 64 * MiB
    max_ratio: int = 256
    offload_threshold: int = 256 * 1024

    def __post_init__(self) -> None:
        if self.compression not in ("auto", "zstd", "zlib", "none"):
            raise ConfigurationError(
                f"envelope.compression: expected 'auto', 'zstd', 'zlib' or 'none', got {self.compression!r}"
            )
        if self.compression == "zstd" and _zstd() is None:
            raise ConfigurationError(
                "envelope.compression: 'zstd' needs the zstd extra: pip install 'neuroglia-redis[zstd]'"
            )
        _check_int("compress_threshold", self.compress_threshold, 1)
        if self.level is not None and (isinstance(self.level, bool) or not isinstance(self.level, int)):
            raise ConfigurationError(f"envelope.level: must be an integer or None, got {self.level!r}")
        _check_int("max_value_bytes", self.max_value_bytes, 1, MAX_PAYLOAD_BYTES)
        _check_int("max_ratio", self.max_ratio, 2)
        _check_int("offload_threshold", self.offload_threshold, 1)

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
            allowed = tuple(cls.__dataclass_fields__)
            unknown = sorted(set(value) - set(allowed))
            if unknown:
                raise ConfigurationError(f"envelope: unknown keys {unknown}; allowed: {list(allowed)}")
            return cls(**value)
        raise ConfigurationError(f"envelope: expected an EnvelopePolicy or a dict, got {type(value).__name__}")

    def inflate_limit(self, compressed: int) -> int:
        """The most a payload of ``compressed`` bytes may inflate to.

        ``max_ratio`` times its size, but never less than 1 MiB (small,
        very repetitive values may compress far better than 256:1), and
        never more than ``max_value_bytes``.
        """
        return min(self.max_value_bytes, max(self.max_ratio * compressed, _RATIO_FLOOR))


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in {low}..{high}"
        raise ConfigurationError(f"envelope.{name}: must be an integer {bound}, got {value!r}")


_DEFAULT_POLICY: Final = EnvelopePolicy(compression="none")


@dataclass(frozen=True, slots=True)
class Envelope:
    """A decoded envelope: what :func:`read_envelope` returns."""

    version: int
    strategy: str
    compression: str
    payload: bytes
    """The strategy's bytes, decompressed."""


def _header(view: memoryview) -> tuple[str, int, memoryview] | None:
    """``(strategy, compression, payload)`` of an enveloped value; ``None`` when it has no envelope."""
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
    return strategy, flags & _COMPRESSION_MASK, view[6 + size :]


def _inflate(policy: EnvelopePolicy, algorithm: int, data: memoryview) -> Steps[bytes]:
    """Decompress within the policy's bounds: the first step here, the rest after a yield if there is more."""
    if algorithm == _NONE:
        return bytes(data)
    limit = policy.inflate_limit(len(data))
    if limit == policy.max_value_bytes:
        too_large = f"the value's compressed payload would expand past max_value_bytes ({_size(limit)}); refusing it"
    else:
        too_large = (
            f"the value's compressed payload ({len(data)} bytes) would expand past {policy.max_ratio} times "
            "its size (max_ratio); refusing it"
        )
    inflater = Inflater(algorithm, data, limit, too_large)
    if not inflater.step(policy.offload_threshold):
        yield  # more than offload_threshold to inflate: the rest may run off the loop
    return inflater.finish()


def _looks_compressed(data: memoryview) -> bool:
    """Whether ``data`` starts as a zlib stream (deflate, any window) or a zstd frame."""
    if len(data) < 4:
        return False
    zlib_header = (data[0] & 0x0F) == 8 and (data[0] << 8 | data[1]) % 31 == 0
    return zlib_header or data[:4].tobytes() == _ZSTD_MAGIC


def read_envelope(data: bytes | bytearray | memoryview) -> Envelope | None:
    """Decode the envelope of a stored value; ``None`` when ``data`` has none.

    Raises :class:`~neuroglia.data.redis.SerializationError` for a damaged
    envelope (unknown version or flags, bad compression, a payload past the
    default bounds of :class:`EnvelopePolicy`: 64 MiB, or 256 times its
    compressed size). It checks no signature, so it does not decompress a
    signed strategy's payload either (signed after compression: the payload
    is returned as stored, to verify with the strategy first). Handy to
    inspect a value by hand::

        envelope = read_envelope(await repo.get_async("menu:special"))
        envelope.strategy, json.loads(envelope.payload)
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        return None
    header = _header(memoryview(data))
    if header is None:
        return None
    strategy, algorithm, payload = header
    if algorithm != _NONE and not _looks_compressed(payload):
        return Envelope(ENVELOPE_VERSION, strategy, _COMPRESSION_NAMES[algorithm], bytes(payload))  # signed
    body = finish(_inflate(_DEFAULT_POLICY, algorithm, payload))
    return Envelope(ENVELOPE_VERSION, strategy, _COMPRESSION_NAMES[algorithm], body)


@runtime_checkable
class _SealedStrategy(Protocol):
    """A signed strategy whose steps the envelope can take apart (``PickleSerializer``)."""

    signed: bool

    def encode(self, value: Any) -> bytes: ...
    def sign(self, body: bytes | memoryview) -> bytes: ...
    def verify(self, data: bytes | memoryview) -> memoryview: ...
    def decode(self, body: bytes | memoryview) -> Any: ...


class EnvelopeSerializer:
    """A :class:`SerializationStrategy` that wraps another one in the envelope.

    ``dumps`` runs the strategy, compresses large payloads and prepends the
    header. ``loads`` checks that the header names this strategy (a value
    written by another one raises :class:`SerializationError` naming both,
    and is not decoded), decompresses within the policy's bounds, and runs
    the strategy; a value without an envelope goes to the strategy
    unchanged. With a signed strategy the signature is checked before
    anything is decompressed.

    Hash fields (:meth:`dumps_field`/:meth:`loads_field`) follow the same
    rule with one exception: an ``int`` in HINCRBY's 64-bit range is stored
    as bare decimal text, so ``HINCRBY`` keeps working on it, unless the strategy is signed
    (``strategy.signed``), whose fields are all signed.

    :meth:`begin` and :meth:`begin_field` are the event loop's way to
    decode: small values at once, large ones as a
    :class:`~neuroglia.data.redis.serialization.deferred.Deferred` that
    finishes in a worker thread when awaited.
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
        # A signed strategy the envelope cannot take apart is never compressed
        # by it: compressing after signing would mean inflating before verifying.
        self._sealed: _SealedStrategy | None = (
            strategy if self._signed and isinstance(strategy, _SealedStrategy) else None
        )
        self._prefix = {
            flag: MAGIC + bytes((ENVELOPE_VERSION, flag, len(encoded))) + encoded for flag in _COMPRESSION_NAMES
        }
        self._algorithm = self._policy.algorithm if not self._signed or self._sealed is not None else _NONE

    @property
    def strategy(self) -> SerializationStrategy:
        """The wrapped strategy."""
        return self._strategy

    @property
    def policy(self) -> EnvelopePolicy:
        """The envelope's settings."""
        return self._policy

    # -- writing -------------------------------------------------------------------

    def dumps(self, value: Any) -> bytes:
        """Encode ``value`` with the strategy and wrap it."""
        sealed = self._sealed
        try:
            payload = sealed.encode(value) if sealed is not None else self._strategy.dumps(value)
        except SerializationError:
            raise
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            raise SerializationError(f"{self.name} cannot serialize {type(value).__name__}: {exc}") from exc
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise SerializationError(f"the {self.name!r} strategy returned {type(payload).__name__}, not bytes")
        payload = bytes(payload)
        policy = self._policy
        if len(payload) > policy.max_value_bytes:
            # What a reader with the same policy would refuse is never written.
            limit = "Redis' 512 MiB limit" if policy.max_value_bytes == MAX_PAYLOAD_BYTES else "max_value_bytes"
            raise InvalidArgumentError(
                f"the serialized value is {len(payload)} bytes, larger than {limit} ({_size(policy.max_value_bytes)})"
            )
        flag = _NONE
        if self._algorithm != _NONE and len(payload) >= policy.compress_threshold:
            packed = _compress(self._algorithm, payload, policy.level)
            # Kept only if it saves space and a reader would inflate it (the ratio bound).
            if len(packed) < len(payload) and len(payload) <= policy.inflate_limit(len(packed)):
                payload, flag = packed, self._algorithm
        if sealed is not None:
            # Compressed first, then signed: the flag is signed with the data.
            payload = sealed.sign(payload if flag == _NONE else bytes((flag,)) + payload)
        return self._prefix[flag] + payload

    def dumps_field(self, value: Any) -> bytes:
        """Encode a hash field: bare decimal text for an ``int`` (HINCRBY), else the envelope."""
        if type(value) is int and value in _INT64 and not self._signed:
            return str(value).encode()
        return self.dumps(value)

    # -- reading -------------------------------------------------------------------

    def loads(self, data: bytes) -> Any:
        """Unwrap (checking the strategy) and decode, on this thread."""
        return finish(self._steps(data, None))

    def loads_field(self, data: bytes) -> Any:
        """Decode a hash field written by :meth:`dumps_field` (or by ``HINCRBY``), on this thread."""
        return finish(self._field_steps(data, None))

    def begin(self, data: bytes, type_: type[T] | None = None) -> T | Deferred[T]:
        """Decode (and rebuild as ``type_``) at once when small; a :class:`Deferred` of the rest when large."""
        return start(self._steps(data, type_))

    def begin_fields(self, fields: Mapping[Any, Any], type_: type[T] | None = None) -> T | Deferred[T]:
        """Decode hash fields (raw names to raw values) into a dict rebuilt as ``type_``; see :meth:`begin`."""
        return start(self._fields_steps(fields, type_))

    def _field_steps(self, data: bytes, type_: Any) -> Steps[Any]:
        if not self._signed and _CANONICAL_INT.fullmatch(data):
            return from_plain(int(data), type_)
        return (yield from self._steps(data, type_))

    def _fields_steps(self, fields: Mapping[Any, Any], type_: Any) -> Steps[Any]:
        if sum(len(value) for value in fields.values()) > self._policy.offload_threshold:
            yield  # the fields together are large: decode them all off the loop
        decoded: dict[str, Any] = {}
        for name, value in fields.items():
            raw = value if isinstance(value, bytes) else str(value).encode()
            decoded[name.decode() if isinstance(name, bytes) else str(name)] = yield from self._field_steps(raw, None)
        return from_plain(decoded, type_)

    def _steps(self, data: bytes, type_: Any) -> Steps[Any]:
        policy = self._policy
        view = memoryview(data)
        header = _header(view)
        if header is None:
            if len(view) > policy.offload_threshold:
                yield
            return from_plain(self._strategy.loads(bytes(data) if not isinstance(data, bytes) else data), type_)
        strategy, algorithm, payload = header
        if strategy != self.name:
            raise SerializationError(
                f"the value was written by the {strategy!r} strategy, but this repository reads with "
                f"{self.name!r}: it was not decoded (switch the serializer back, or delete or rewrite the key)"
            )
        if len(payload) > policy.max_value_bytes:
            raise SerializationError(
                f"the value's payload is {len(payload)} bytes, more than max_value_bytes "
                f"({_size(policy.max_value_bytes)}); refusing it"
            )
        if len(payload) > policy.offload_threshold:
            yield  # large to verify or parse
        if self._signed:
            value = yield from self._signed_steps(algorithm, payload)
        else:
            body = yield from _inflate(policy, algorithm, payload)
            if len(body) > policy.offload_threshold and len(payload) <= policy.offload_threshold:
                yield  # it inflated large: parse it off the loop
            value = self._strategy.loads(body)
        return from_plain(value, type_)

    def _signed_steps(self, algorithm: int, payload: memoryview) -> Steps[Any]:
        sealed = self._sealed
        if algorithm == _NONE:
            return self._strategy.loads(bytes(payload))
        legacy = SerializationError(
            "refusing a signed value that was compressed after it was signed (the layout of release 0.1): "
            "its signature cannot be checked before decompressing it; delete or rewrite the key"
        )
        if sealed is None:
            raise legacy
        try:
            body = sealed.verify(payload)  # before a single byte is decompressed
        except SerializationError:
            if _looks_compressed(payload):
                raise legacy from None
            raise
        if len(body) < 1 or body[0] != algorithm:
            raise SerializationError("the signed value's compression does not match its envelope")
        inflated = yield from _inflate(self._policy, algorithm, body[1:])
        if len(inflated) > self._policy.offload_threshold and len(payload) <= self._policy.offload_threshold:
            yield
        return sealed.decode(inflated)

    def __repr__(self) -> str:
        return f"EnvelopeSerializer({self._strategy!r}, {self._policy!r})"
