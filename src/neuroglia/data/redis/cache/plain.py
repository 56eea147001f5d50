"""Plain reads, writes and removals of single entries (and of a whole namespace).

Each keeps the first level and the key's running computations consistent
with what it did in Redis: a write or removal tells the key's flight and
refresh not to store their (possibly older) result, before it is sent and
again after, since a flight may have read the older value meanwhile.

A plain read raises :class:`~neuroglia.data.redis.CacheUnavailableError`
when Redis is unavailable, unless fail-safe can answer it from the in-process
copy.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ._library import CacheUnavailableError
from .entry import CacheResult, StoredEntry
from .first_level import FirstLevel
from .flight import SingleFlight
from .keyspace import KeySpace
from .metrics import CacheInstruments
from .options import CacheOptions
from .results import Outcome, Results
from .scripts import CacheScripts
from .shape import ValueShape
from .store import EntryStore
from .timing import EntryClock

if TYPE_CHECKING:
    from ._library import RedisRepository

__all__ = ["PlainAccess"]


class PlainAccess:
    """``get``, ``set``, ``remove``, ``expire`` and ``clear`` of one cache."""

    __slots__ = (
        "_codec",
        "_first",
        "_flights",
        "_instruments",
        "_keys",
        "_refreshes",
        "_repository",
        "_results",
        "_scripts",
        "_store",
        "_timing",
    )

    def __init__(
        self,
        repository: RedisRepository,
        keys: KeySpace,
        scripts: CacheScripts,
        store: EntryStore,
        first: FirstLevel,
        timing: EntryClock,
        flights: SingleFlight[Outcome],
        refreshes: SingleFlight[None],
        results: Results,
        instruments: CacheInstruments,
    ) -> None:
        self._repository = repository
        self._codec = repository.codec
        self._keys = keys
        self._scripts = scripts
        self._store = store
        self._first = first
        self._timing = timing
        self._flights = flights
        self._refreshes = refreshes
        self._results = results
        self._instruments = instruments

    async def get_entry(self, key: str, shape: ValueShape[Any], opts: CacheOptions) -> CacheResult[Any] | None:
        """The fresh (with ``allow_stale_on_read``, or usable stale) entry of ``key``; ``None`` on a miss."""
        entry_key = self._keys.entry(key)
        now_ms = self._timing.now_ms()
        local = self._first.store
        results = self._results
        if local.coherent:
            copy = local.get(key)
            if copy is not None and copy.meta.is_fresh(now_ms):
                results.count_hit(copy, local=True)
                return results.of(copy, shape, "local")
        try:
            entry = await self._store.read(entry_key)
        except CacheUnavailableError as exc:
            self._instruments.redis_error("get")
            copy = self._first.fail_safe_copy(key) if opts.fail_safe else None
            if copy is not None:
                if copy.meta.is_fresh(now_ms):
                    results.count_hit(copy, local=True)
                    return replace(results.of(copy, shape, "local"), error=exc)
                if copy.meta.is_usable_stale(now_ms):
                    return results.stale(copy, shape, "local", "redis_unavailable", exc)
            raise
        if entry is not None:
            if entry.meta.is_fresh(now_ms):
                results.count_hit(entry)
                self._first.keep(key, entry, opts)
                return results.of(entry, shape, "redis")
            if opts.allow_stale_on_read and entry.meta.is_usable_stale(now_ms):
                return results.stale(entry, shape, "redis", "read", None)
        self._instruments.miss()
        return None

    async def set(self, key: str, value: Any, opts: CacheOptions) -> None:
        """Store ``value`` under ``key`` with ``opts``' expiration and tags."""
        self._keys.entry(key)
        data = self._codec.dumps(value)
        timing = self._timing
        entry = StoredEntry(data, timing.meta(timing.now_ms(), opts.expiration_s, opts), tuple(opts.tags))
        self._invalidate_flights(key)
        local = self._first.store
        if not opts.fail_safe and not local.coherent:
            local.remove(key)  # a copy older than this write must never be served
        await self._store.write(key, entry)
        # Again: a flight that started while the write was on its way read the older value.
        self._invalidate_flights(key)
        self._first.keep(key, entry, opts)

    def _invalidate_flights(self, key: str) -> None:
        self._flights.invalidate(key)
        self._refreshes.invalidate(key)

    async def remove(self, key: str) -> bool:
        """Remove ``key`` and its in-process copy; whether it existed in Redis."""
        entry_key = self._keys.entry(key)
        self._invalidate_flights(key)
        self._first.store.remove(key)
        removed = await self._scripts.remove(keys=(entry_key,), args=(self._keys.tag_prefix,))
        self._invalidate_flights(key)
        return bool(removed)

    async def expire(self, key: str) -> bool:
        """Mark ``key`` expired now (kept stale if it was written with fail-safe); whether it existed."""
        entry_key = self._keys.entry(key)
        now_ms = self._timing.now_ms()
        self._first.expire(key, now_ms)
        done = await self._scripts.expire(keys=(entry_key,), args=(now_ms, self._keys.tag_prefix))
        return bool(done)

    async def clear(self) -> int:
        """Remove every entry of the namespace (a SCAN); how many entries were removed."""
        local = self._first.store
        local.clear()
        self._flights.invalidate_all()
        self._refreshes.invalidate_all()
        repository = self._repository
        escape = repository.escape_pattern
        removed = await repository.delete_pattern_async(escape(self._keys.entry_root) + "*")
        await repository.delete_pattern_async(escape(self._keys.internal_root) + "*")
        local.clear()  # again: a read that crossed the deletion may have kept an entry
        return removed
