"""NearCache: the in-process level the executor consults before Redis.

The executor (:class:`~neuroglia.data.redis.core.near_executor.NearCachingExecutor`)
asks it three things:

* :meth:`NearCache.get`: the reply cached for a read command, or
  :data:`~.store.MISS`. Served only while the tracking session is trusted
  (see :mod:`.tracking`).
* :meth:`NearCache.fetch`: how to read a cacheable command from Redis so
  that its reply can be kept: the command and ``PTTL`` of its key in one
  round trip (an entry never outlives the key's time to live), with the
  read registered as in flight, so that an invalidation arriving before the
  reply leaves it unstored. ``MGET`` reads only its keys that are not cached.
* :meth:`NearCache.wrote`: a command that may change keys is about to be
  sent, or has completed: its keys are dropped at once, both times, so this
  process never reads its own write stale (Redis' own message may come
  later), and no read in flight across the write stores what it read.

Invalidations from Redis come through :mod:`.tracking`, which also flushes
everything when the tracking session may have missed some.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ..config.near_cache import NearCacheOptions
from ..observability.metrics import CacheMetrics
from ..transport.contract import Args, Transport
from ..transport.invalidation import written_keys
from .store import MAX_KEY_LENGTH, MISS, Entry, NearCacheStore, ReadTicket

if TYPE_CHECKING:
    from .tracking import Tracker

__all__ = ["Fetch", "NearCache", "NearCacheStatistics", "RemovalListener"]

_log = logging.getLogger("neuroglia.data.redis")
_INF: Final = float("inf")

RemovalListener = Callable[[list[Entry], str], None]
"""Told of entries removed and why (``invalidated``, ``written``, ``evicted``, ``expired``, ``flushed``)."""

# Where a removal is counted: (counter, labels).
_REMOVALS: Final[dict[str, tuple[str, dict[str, str]]]] = {
    "invalidated": ("near_cache_invalidations_total", {"source": "redis"}),
    "written": ("near_cache_invalidations_total", {"source": "local"}),
    "evicted": ("near_cache_evictions_total", {"reason": "size"}),
    "expired": ("near_cache_evictions_total", {"reason": "expired"}),
}


@dataclass(frozen=True, slots=True)
class NearCacheStatistics:
    """A snapshot of a near cache's figures (``repo.near_cache.statistics()``)."""

    hits: int
    misses: int
    evictions: int
    """Entries dropped to stay within ``max_entries``/``max_bytes``, or past their deadline."""
    invalidations: int
    """Entries dropped because their key changed (a message from Redis, or a write of this process)."""
    flushes: int
    """Times everything was dropped (connection lost, ``FLUSHDB``, disconnect...)."""
    entries: int
    bytes: int
    serving: bool
    """Whether hits are served now (the tracking session is confirmed and recently heard from)."""

    @property
    def hit_ratio(self) -> float:
        """Hits / (hits + misses); 0.0 before any read."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


class NearCache:
    """A bounded in-process level in front of Redis, kept coherent by server-assisted invalidation.

    Built by the repository from ``RedisConfig(near_cache=...)``; reach it as
    ``repo.near_cache``. ``key_prefix`` is the repository's (the options'
    ``prefixes`` are below it); ``metrics`` receives the figures when the
    repository has them; ``clock`` is monotonic seconds.
    """

    def __init__(
        self,
        options: NearCacheOptions,
        *,
        key_prefix: str = "",
        metrics: CacheMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.options = options
        self.key_prefix = key_prefix
        self._clock = clock
        self._metrics = metrics
        self._store = NearCacheStore(
            options.max_entries, options.max_bytes, options.max_age_seconds, clock=clock, on_remove=self._removed
        )
        self._table = self._store.table
        self._commands = frozenset(options.commands)
        full = tuple(key_prefix + prefix for prefix in options.prefixes)
        self._prefixes: tuple[str, ...] = full
        self._byte_prefixes: tuple[bytes, ...] = tuple(prefix.encode() for prefix in full)
        heartbeat = options.heartbeat_seconds
        self.trust_window = 2 * heartbeat if heartbeat is not None else _INF
        # Set by the tracker: whether a confirmed tracking session exists (reads
        # may be stored), and until when hits may be served.
        self.ready = False
        self.trusted_until = 0.0
        self._tracker: Tracker | None = None
        self._listeners: list[RemovalListener] = []
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.invalidations = 0
        self.flushes = 0

    # -- figures -------------------------------------------------------------------------

    @property
    def store(self) -> NearCacheStore:
        """The entries (for inspection and tests)."""
        return self._store

    @property
    def serving(self) -> bool:
        """Whether a hit would be served now."""
        return self._clock() < self.trusted_until

    @property
    def tracking_mode(self) -> str:
        """``"default"``, ``"broadcast"``, or ``"in-process"`` (``memory://``) once attached; else ``"detached"``."""
        return self._tracker.mode if self._tracker is not None else "detached"

    def statistics(self) -> NearCacheStatistics:
        """The near cache's figures since it was built."""
        return NearCacheStatistics(
            self.hits,
            self.misses,
            self.evictions,
            self.invalidations,
            self.flushes,
            len(self._store),
            self._store.size_bytes,
            self.serving,
        )

    def _count(self, name: str, value: int = 1, labels: dict[str, str] | None = None) -> None:
        if self._metrics is not None:
            self._metrics.increment_counter(name, value, labels)

    def _removed(self, entries: list[Entry], reason: str) -> None:
        count = len(entries)
        if reason in ("invalidated", "written"):
            self.invalidations += count
        elif reason in ("evicted", "expired"):
            self.evictions += count
        where = _REMOVALS.get(reason)
        if where is not None:
            self._count(where[0], count, where[1])
        for listener in list(self._listeners):
            try:
                listener(entries, reason)
            except Exception:
                _log.exception("neuroglia-redis: a near cache removal listener failed")

    def add_listener(self, listener: RemovalListener) -> None:
        """Call ``listener(entries, reason)`` whenever entries are removed (not on the hit path)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: RemovalListener) -> None:
        """Stop calling ``listener``."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    # -- the executor's questions ---------------------------------------------------------

    def get(self, args: Args) -> Any:
        """The reply cached for the read ``args``, or :data:`MISS`."""
        entry = self._table.get(args)
        if entry is None:
            return MISS
        now = self._clock()
        if now < entry.expires and now < self.trusted_until:
            self._table.move_to_end(args)
            self.hits += 1
            if self._metrics is not None:
                self._metrics.increment_counter("near_cache_hits_total")
            return entry.reply
        if now >= entry.expires:
            self._store.get(args)  # drops it, counted as expired
        # Else not heard from Redis lately: the entry may be stale, Redis answers.
        return MISS

    def cacheable(self, key: Any) -> bool:
        """Whether replies read from ``key`` (a full Redis key) may be kept."""
        cls = key.__class__
        if cls is str:
            prefixes: tuple[Any, ...] = self._prefixes
        elif cls is bytes:
            prefixes = self._byte_prefixes
        else:
            return False
        if not key or len(key) > MAX_KEY_LENGTH:
            return False
        return not prefixes or key.startswith(prefixes)

    def fetch(self, args: Args) -> Fetch | None:
        """How to read ``args`` from Redis and keep the reply; ``None`` when it is not cached."""
        name = args[0]
        if name not in self._commands or len(args) < 2:
            return None
        cacheable = self.cacheable
        if name == "MGET":
            return self._fetch_many(args[1:])
        key = args[1]
        if not cacheable(key):
            return None
        self.misses += 1
        self._count("near_cache_misses_total")
        return Fetch(self, args, (args, ("PTTL", key)), self._store.begin((key,)))

    def _fetch_many(self, keys: tuple[Any, ...]) -> Fetch | None:
        """``MGET``: the cacheable keys held are answered here; the others are read, and the cacheable kept."""
        get = self.get
        cacheable = self.cacheable
        cached: list[Any] = []
        missing: list[Any] = []
        kept: list[Any] = []  # the missing keys that may be kept, in order
        for key in keys:
            if cacheable(key):
                reply = get(("GET", key))
                if reply is MISS:
                    missing.append(key)
                    kept.append(key)
            else:
                reply = MISS
                missing.append(key)
            cached.append(reply)
        if not missing:
            return Fetch(self, ("MGET", *keys), (), None, reply=cached)
        if not kept and len(missing) == len(keys):
            return None  # nothing here is cacheable: the plain path
        self.misses += 1
        self._count("near_cache_misses_total")
        commands = (("MGET", *missing), *(("PTTL", key) for key in kept))
        fetch = Fetch(self, ("MGET", *keys), commands, self._store.begin(kept))
        fetch.cached = cached
        return fetch

    def wrote(self, commands: tuple[Args, ...]) -> None:
        """``commands`` may change keys: drop them now (called before sending, and again when done)."""
        store = self._store
        for args in commands:
            if not store.tracked_keys():
                return  # nothing held, nothing being read
            keys = written_keys(args)
            if keys is None:
                self.flush("flushdb")
            elif keys:
                store.invalidate(keys, "written")

    # -- invalidation and flushes ---------------------------------------------------------

    def on_push(self, message: list[Any]) -> None:
        """A push message from Redis (RESP2 shapes): invalidations, or a broken tracking redirection."""
        if not message:
            return
        kind = message[0]
        if kind == b"invalidate" or kind == "invalidate":
            keys = message[1] if len(message) > 1 else None
            if keys is None:
                self.flush("server")  # FLUSHDB/FLUSHALL, or the server's tracking table overflowed
            else:
                self._store.invalidate(keys, "invalidated")
        elif kind == b"tracking-redir-broken" or kind == "tracking-redir-broken":
            self.flush("redirect_broken")

    def invalidate(self, keys: list[Any]) -> int:
        """Forget ``keys`` (full Redis keys); reads of them in flight will not be kept. Returns entries dropped."""
        return self._store.invalidate(keys, "written")

    def invalidate_where(self, keep: Callable[[Any], bool]) -> int:
        """Forget every key, held or being read, for which ``keep(key)`` is false."""
        return self._store.invalidate_where(keep, "written")

    def keys_being_read(self) -> list[Any]:
        """Keys (as indexed: ``str`` when UTF-8) with reads in flight."""
        return self._store.keys_being_read()

    def flush(self, reason: str) -> None:
        """Forget everything; reads in flight will not be kept."""
        self.flushes += 1
        self._count("near_cache_flushes_total", 1, {"reason": reason})
        dropped = self._store.flush()
        _log.debug("near cache flushed (%s): %d entries dropped", reason, dropped)

    def entries(self) -> Iterator[Entry]:
        """A snapshot of the entries, least recently used first."""
        return self._store.entries()

    def peek(self, args: Args) -> Any:
        """:meth:`get`, for the cache layer's first level (counted as a hit)."""
        return self.get(args)

    # -- lifetime --------------------------------------------------------------------------

    def attach(self, transport: Transport) -> None:
        """Start tracking on ``transport`` (the repository's, when it opens it).

        Raises :class:`~neuroglia.data.redis.ConfigurationError` when the
        transport cannot deliver invalidations.
        """
        from .tracking import Tracker

        tracker = self._tracker
        if tracker is not None:
            if tracker.transport is transport and tracker.active:
                return
            tracker.stop()
        self._tracker = Tracker.start(self, transport)

    async def detach(self) -> None:
        """Stop tracking (the repository disconnects) and forget everything."""
        tracker, self._tracker = self._tracker, None
        if tracker is not None:
            tracker.stop()
            await tracker.stopped()
        self.ready = False
        self.trusted_until = 0.0
        if len(self._store):
            self.flush("disconnect")

    def __repr__(self) -> str:
        return f"NearCache({self._store!r}, mode={self.tracking_mode}, serving={self.serving})"


class Fetch:
    """One cacheable read on its way to Redis: what to send, and what to keep of the replies.

    ``commands`` is the batch to send (the read and ``PTTL`` of each key);
    when it is empty, ``reply`` is already complete (an ``MGET`` whose keys
    were all cached). :meth:`finish` turns the batch's replies into the raw
    reply of the original command and keeps what may be kept; :meth:`close`
    ends the read, whatever happened.
    """

    __slots__ = ("args", "cached", "commands", "near", "reply", "started", "ticket")

    def __init__(
        self,
        near: NearCache,
        args: Args,
        commands: tuple[Args, ...],
        ticket: ReadTicket | None,
        *,
        reply: Any = None,
    ) -> None:
        self.near = near
        self.args = args
        self.commands = commands
        self.ticket = ticket
        self.reply = reply
        self.cached: list[Any] | None = None
        self.started = near._clock()

    @property
    def done(self) -> bool:
        """Whether the reply is complete without asking Redis."""
        return not self.commands

    def finish(self, replies: list[Any]) -> Any:
        """The raw reply of the original command, from the batch's ``replies``; keeps what it may."""
        value = replies[0]
        if isinstance(value, BaseException):
            raise value  # the read itself failed (WRONGTYPE...): as if sent alone
        near = self.near
        ticket = self.ticket
        assert ticket is not None
        elapsed = near._clock() - self.started
        if near.ready:
            # A reply proves the connection delivered every message sent before it.
            near.trusted_until = max(near.trusted_until, self.started + near.trust_window)
        store = near._store
        if self.cached is None:
            if near.ready:
                _keep(store, ticket, 0, self.args, value, replies[1], elapsed)
            return value
        merged: list[Any] = []
        fetched = iter(value)
        index = 0  # among the keys that may be kept (the ticket's, and their PTTL replies)
        cacheable = near.cacheable
        for reply in self.cached:
            if reply is MISS:
                reply = next(fetched)
                key = self.args[1 + len(merged)]
                if cacheable(key):
                    if near.ready:
                        _keep(store, ticket, index, ("GET", key), reply, replies[1 + index], elapsed)
                    index += 1
            merged.append(reply)
        return merged

    def close(self) -> None:
        """End the read (the batch was answered, failed or cancelled)."""
        ticket, self.ticket = self.ticket, None
        if ticket is not None:
            self.near._store.end(ticket)


def _keep(
    store: NearCacheStore, ticket: ReadTicket, index: int, args: Args, reply: Any, pttl: Any, elapsed: float
) -> None:
    """Store ``reply`` unless its key's time to live is unknown (``PTTL`` failed)."""
    if pttl.__class__ is not int:
        return
    ttl = None if pttl < 0 else pttl / 1000 - elapsed  # -1: no TTL; -2: no key (a cached miss)
    store.store(ticket, index, args, reply, ttl)
