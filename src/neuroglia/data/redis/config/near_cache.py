"""NearCacheOptions: the settings of the near cache, an in-process level in front of Redis.

Given to :class:`~neuroglia.data.redis.RedisConfig` as ``near_cache=``:
``True`` (these defaults), a :class:`NearCacheOptions`, or a dict of its
fields; ``None``/``False`` (the default) turn it off. ``REDIS_NEAR_CACHE*``
environment variables set the same fields (see ``docs/usage.md``). How the
near cache stays coherent is told in ``docs/caching.md``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, Literal

from .checks import fail, known_fields

__all__ = ["NEAR_CACHE_COMMANDS", "NearCacheMode", "NearCacheOptions"]

NearCacheMode = Literal["default", "broadcast"]

NEAR_CACHE_COMMANDS: Final[tuple[str, ...]] = ("GET", "MGET", "HGET", "HMGET", "HGETALL", "SMEMBERS")
"""The read commands whose replies the near cache can keep (all of them by default)."""

_MODES: Final[tuple[str, ...]] = ("default", "broadcast")
_WHERE = "near_cache"


def _seconds(name: str, value: Any, *, allow_off: bool) -> float | None:
    if value is None:
        if allow_off:
            return None
        raise fail(f"{_WHERE}.{name}", "is required (seconds > 0)")
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise fail(f"{_WHERE}.{name}", f"expected a timedelta or seconds, got {type(value).__name__}")
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise fail(f"{_WHERE}.{name}", f"must be a finite duration >= 0, got {value!r}")
    if seconds == 0:
        if allow_off:
            return None
        raise fail(f"{_WHERE}.{name}", f"must be > 0, got {value!r}")
    return seconds


def _names(name: str, value: Any) -> tuple[str, ...]:
    """A tuple of str from a list, a tuple or a comma-separated str."""
    if isinstance(value, str):
        items: Iterable[Any] = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, bytes) or not isinstance(value, Iterable):
        raise fail(f"{_WHERE}.{name}", f"expected a list of str, got {type(value).__name__}")
    else:
        items = value
    out: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item:
            raise fail(f"{_WHERE}.{name}", f"each entry must be a non-empty str, got {item!r}")
        if item not in out:
            out.append(item)
    return tuple(out)


@dataclass(frozen=True, kw_only=True, slots=True)
class NearCacheOptions:
    """Settings of the near cache (``RedisConfig(near_cache=...)``).

    ``max_entries`` / ``max_bytes``
        Bounds of the in-process level: the least recently used entries go
        first. Bytes count the cached replies' payloads plus a small fixed
        overhead per entry.
    ``max_age``
        A safety net: an entry is dropped this long after it was read, even
        if no invalidation came (seconds or a ``timedelta``; ``0``/``None``:
        no limit). A key's own time to live in Redis always bounds its entry.
    ``mode``
        ``"default"``: Redis remembers the keys this process read and tells it
        when one of them changes (``CLIENT TRACKING ON``). ``"broadcast"``:
        Redis tells it about every change to keys under ``prefixes``
        (``CLIENT TRACKING ON BCAST PREFIX ...``), whether read or not: no
        server memory per key read, more messages.
    ``prefixes``
        Only keys starting with one of these (the application's keys, before
        the repository's ``key_prefix``) are cached; empty: every key. In
        broadcast mode they are also the prefixes Redis reports on (empty:
        the repository's ``key_prefix``, or every key without one).
    ``commands``
        Which read commands are served from the near cache, among
        :data:`NEAR_CACHE_COMMANDS` (``GET`` serves ``get_async`` and
        ``get_object_async``; ``MGET`` ``get_many_async``; ``HMGET`` also
        serves :class:`~neuroglia.data.redis.RedisCache`).
    ``heartbeat_interval``
        Seconds between the near cache's ``PING`` on its tracked connection.
        An answer proves that every invalidation Redis sent before it has been
        received; without one for two intervals the near cache stops serving
        (a network cut that leaves the connection open would otherwise leave
        it stale). ``0``/``None``: no heartbeat (only a closed connection is
        noticed).
    """

    max_entries: int = 10_000
    max_bytes: int = 64 * 1024 * 1024
    max_age: float | timedelta | None = 300.0
    mode: NearCacheMode = "default"
    prefixes: tuple[str, ...] = ()
    commands: tuple[str, ...] = NEAR_CACHE_COMMANDS
    heartbeat_interval: float | timedelta | None = 1.0

    def __post_init__(self) -> None:
        put = object.__setattr__
        for name in ("max_entries", "max_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise fail(f"{_WHERE}.{name}", f"must be an integer >= 1, got {value!r}")
        put(self, "max_age", _seconds("max_age", self.max_age, allow_off=True))
        put(self, "heartbeat_interval", _seconds("heartbeat_interval", self.heartbeat_interval, allow_off=True))
        mode = self.mode.strip().lower() if isinstance(self.mode, str) else self.mode
        if mode not in _MODES:
            raise fail(f"{_WHERE}.mode", f"allowed values: {list(_MODES)}, got {self.mode!r}")
        put(self, "mode", mode)
        prefixes = _names("prefixes", self.prefixes)
        for prefix in prefixes:
            covered = [other for other in prefixes if other != prefix and other.startswith(prefix)]
            if covered:
                # Redis refuses overlapping BCAST prefixes; in default mode they would say nothing more.
                raise fail(f"{_WHERE}.prefixes", f"{prefix!r} already covers {covered}: give only the shorter one")
        put(self, "prefixes", prefixes)
        commands = tuple(name.upper() for name in _names("commands", self.commands))
        unknown = sorted(set(commands) - set(NEAR_CACHE_COMMANDS))
        if unknown:
            raise fail(f"{_WHERE}.commands", f"cannot cache {unknown}; allowed: {list(NEAR_CACHE_COMMANDS)}")
        if not commands:
            raise fail(f"{_WHERE}.commands", "is empty: name at least one command, or turn the near cache off")
        put(self, "commands", commands)

    @property
    def max_age_seconds(self) -> float | None:
        """``max_age`` in seconds (``None``: no limit)."""
        return self.max_age  # type: ignore[return-value]  # normalized to seconds in __post_init__

    @property
    def heartbeat_seconds(self) -> float | None:
        """``heartbeat_interval`` in seconds (``None``: no heartbeat)."""
        return self.heartbeat_interval  # type: ignore[return-value]  # normalized in __post_init__

    @classmethod
    def coerce(cls, value: NearCacheOptions | Mapping[str, Any] | bool | None) -> NearCacheOptions | None:
        """Accept options, a dict of their fields, ``True`` (defaults), or ``None``/``False`` (off)."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, NearCacheOptions):
            return value
        if isinstance(value, Mapping):
            return cls(**known_fields(cls, value, _WHERE))
        raise fail(_WHERE, f"expected True/False, a NearCacheOptions or a dict, got {type(value).__name__}")

    def with_(self, **changes: Any) -> NearCacheOptions:
        """A copy with some fields replaced."""
        known_fields(NearCacheOptions, changes, _WHERE)
        return dataclasses.replace(self, **changes)
