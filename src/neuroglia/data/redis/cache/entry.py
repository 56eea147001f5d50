"""How an entry is stored, and what a caller learns about the value it got.

Each entry is one Redis hash under ``<namespace>:<key>`` with three fields::

    v   the value: the repository's serialization strategy inside the
        versioned envelope (``repo.codec``), exactly what ``set_object_async``
        writes
    m   metadata, decimal integers joined by commas (milliseconds of the
        cache's clock, wall-clock time by default):
            e  logical expiration: fresh before it
            s  stale limit: a fail-safe read may serve it until then; the
               hash's own TTL ends there too (s == e without fail-safe)
            c  when it was written
            d  how long the factory took (0: written by set_async)
            f  flags: 1 = a stale value re-served by fail-safe throttling
    t   the entry's tags joined by \\x1f ("" for none)

A hit is one ``HMGET v m t``. The Lua scripts read ``e`` (the first number of
``m``) and ``t``; everything else is read in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Literal, NamedTuple, TypeVar

from ._library import SerializationError
from .options import TAG_SEPARATOR

__all__ = ["FLAG_FAILSAFE_COPY", "CacheResult", "EntryMeta", "StoredEntry", "ValueSource", "join_tags", "split_tags"]

T = TypeVar("T")

FLAG_FAILSAFE_COPY = 1
"""Flag of ``m``: the value is a stale one, re-served for the fail-safe throttle."""

ValueSource = Literal["redis", "local", "factory"]


class EntryMeta(NamedTuple):
    """The ``m`` field of an entry, in milliseconds of the cache's clock.

    A named tuple: built on every hit, it must be cheap.
    """

    expires_ms: int
    stale_until_ms: int
    created_ms: int
    duration_ms: int = 0
    flags: int = 0

    def encode(self) -> str:
        """The text stored in ``m``."""
        return f"{self.expires_ms},{self.stale_until_ms},{self.created_ms},{self.duration_ms},{self.flags}"

    @classmethod
    def decode(cls, text: str | bytes) -> EntryMeta:
        """Parse ``m``; a value that is not ours raises :class:`SerializationError`."""
        if isinstance(text, bytes):
            text = text.decode("ascii", "replace")
        try:
            e, s, c, d, f = map(int, text.split(","))
        except ValueError:
            raise SerializationError(
                f"the cache entry's metadata {text[:40]!r} is not in this library's format"
            ) from None
        return cls(e, s, c, d, f)

    def is_fresh(self, now_ms: int) -> bool:
        """Before its logical expiration."""
        return now_ms < self.expires_ms

    def is_usable_stale(self, now_ms: int) -> bool:
        """Expired, but within the stale limit fail-safe may serve it until."""
        return now_ms < self.stale_until_ms

    @property
    def is_failsafe_copy(self) -> bool:
        """A stale value re-served during the fail-safe throttle."""
        return bool(self.flags & FLAG_FAILSAFE_COPY)


def join_tags(tags: tuple[str, ...]) -> str:
    """The ``t`` field of an entry with ``tags``."""
    return TAG_SEPARATOR.join(tags)


def split_tags(text: Any) -> tuple[str, ...]:
    """Tags from a stored ``t`` field (``str``, ``bytes`` or ``None``)."""
    if not text:
        return ()
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return tuple(t for t in str(text).split(TAG_SEPARATOR) if t)


class StoredEntry(NamedTuple):
    """An entry as stored: the encoded value, its metadata and tags."""

    data: bytes
    meta: EntryMeta
    tags: tuple[str, ...] = ()

    @classmethod
    def from_fields(cls, v: Any, m: Any, t: Any) -> StoredEntry | None:
        """Build from the raw fields of ``HMGET v m t``; ``None`` when the entry does not exist."""
        if v is None or m is None:
            return None
        data = v if v.__class__ is bytes else (v.encode() if isinstance(v, str) else bytes(v))
        return cls(data, EntryMeta.decode(m), split_tags(t) if t else ())


@dataclass(frozen=True, slots=True)
class CacheResult(Generic[T]):
    """A value with what the cache knows about it: the answer of ``*_entry_async`` calls.

    ``is_stale``
        The value is past its expiration and was served by fail-safe (the
        factory failed or timed out, or Redis was unavailable); ``error`` says why.
    ``source``
        ``"redis"`` (a hit, or a value another process computed while this one
        waited), ``"factory"`` (computed for this call, possibly shared with
        concurrent callers), ``"local"`` (the in-process copy, while Redis was
        unavailable).
    ``error``
        The factory's exception, a :class:`~neuroglia.data.redis.FactoryTimeoutError`
        or the :class:`~neuroglia.data.redis.CacheUnavailableError` that made the
        cache fall back; ``None`` on the normal path.
    ``expires_at`` / ``created_at``
        Logical expiration and write time, in seconds of the cache's clock
        (``time.time()`` by default); ``None`` for a value that was not stored.
    ``tags``
        The tags stored with the value.
    """

    value: T
    source: ValueSource
    is_stale: bool = False
    error: BaseException | None = None
    expires_at: float | None = None
    created_at: float | None = None
    tags: tuple[str, ...] = ()
