"""The get-or-set path: a hit, or a share of the key's one computation, with fail-safe and timeouts.

In order:

1. A coherent first level answers a fresh entry at once (see :mod:`.first_level`).
2. One ``HMGET`` of the entry. Fresh: served (and, past the eager-refresh
   threshold or by XFetch's draw, refreshed in the background: :mod:`.refresh`).
   This is the common path: a plain call builds no result object.
3. Missing or expired: the call joins the key's flight in this process, or
   starts it (:mod:`.compute` runs it), and waits without cancelling it.
4. With fail-safe on, an expired value kept within its staleness limit is
   served, flagged stale, when the factory fails or exceeds the soft timeout
   (the flight goes on), or when Redis is unavailable (then from the
   in-process copy). Past the hard timeout the call stops waiting:
   :class:`~neuroglia.data.redis.FactoryTimeoutError`, or the stale value.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ._library import CacheException, CacheUnavailableError
from .compute import Computation
from .entry import CacheResult, StoredEntry, ValueSource
from .errors import CacheClosedError, FactoryTimeoutError
from .first_level import FirstLevel
from .flight import Flight, SingleFlight, TaskTracker
from .keyspace import KeySpace
from .metrics import CacheInstruments
from .options import CacheOptions
from .refresh import EarlyRefresh
from .results import Outcome, Results
from .shape import ValueShape
from .store import EntryStore
from .timing import EntryClock

if TYPE_CHECKING:
    from ._library import EnvelopeSerializer

__all__ = ["GetOrSet"]


class GetOrSet:
    """The get-or-set calls of one cache."""

    __slots__ = (
        "_check_open",
        "_codec",
        "_computation",
        "_entry_key",
        "_fail_safe_copy",
        "_flights",
        "_instruments",
        "_local",
        "_namespace",
        "_now_ms",
        "_read",
        "_refresh",
        "_results",
        "_tasks",
    )

    def __init__(
        self,
        keys: KeySpace,
        timing: EntryClock,
        store: EntryStore,
        first: FirstLevel,
        flights: SingleFlight[Outcome],
        computation: Computation,
        refresh: EarlyRefresh,
        results: Results,
        codec: EnvelopeSerializer,
        instruments: CacheInstruments,
        tasks: TaskTracker,
        check_open: Callable[[], None],
    ) -> None:
        # Bound methods and plain objects, looked up once: the hit path is a
        # handful of attribute reads and one await of the repository.
        self._entry_key = keys.entry
        self._namespace = keys.namespace
        self._now_ms = timing.now_ms
        self._read = store.read
        self._local = first.store
        self._fail_safe_copy = first.fail_safe_copy
        self._flights = flights
        self._computation = computation
        self._refresh = refresh
        self._results = results
        self._codec = codec
        self._instruments = instruments
        self._tasks = tasks
        self._check_open = check_open

    async def run(
        self, key: str, factory: Callable[..., Any], opts: CacheOptions, shape: ValueShape[Any], *, plain: bool = False
    ) -> Any:
        """The value (``plain``) or the :class:`CacheResult` of ``key``; see ``RedisCache.get_or_set_async``."""
        self._check_open()
        entry_key = self._entry_key(key)
        now_ms = self._now_ms()
        local = self._local
        instruments = self._instruments
        results = self._results
        stale: StoredEntry | None = None
        stale_source: ValueSource = "redis"
        unavailable: CacheUnavailableError | None = None
        if local.coherent:
            copy = local.get(key)
            if copy is not None and copy.meta.is_fresh(now_ms):
                results.count_hit(copy, local=True)
                result = results.of(copy, shape, "local")
                return result.value if plain else result
        try:
            entry = await self._read(entry_key)
        except CacheUnavailableError as exc:
            unavailable = exc
            instruments.redis_error("get")
            if opts.fail_safe:
                copy = self._fail_safe_copy(key)
                if copy is not None:
                    if copy.meta.is_fresh(now_ms):
                        results.count_hit(copy, local=True)
                        result = replace(results.of(copy, shape, "local"), error=exc)
                        return result.value if plain else result
                    if copy.meta.is_usable_stale(now_ms):
                        stale, stale_source = copy, "local"
        else:
            if entry is not None:
                meta = entry.meta
                if now_ms < meta.expires_ms:  # fresh
                    if meta.flags:
                        results.count_hit(entry)
                    else:
                        instruments.hit()
                    if opts.fail_safe or local.coherent:
                        local.set(key, entry)
                    if (opts.eager is not None or opts.xfetch_beta) and self._refresh.due(meta, opts, now_ms):
                        self._refresh.start(key, factory, opts, shape, entry)
                    if plain:
                        return shape.load(self._codec.loads(entry.data))
                    return results.of(entry, shape, "redis")
                if opts.fail_safe and meta.is_usable_stale(now_ms):
                    stale = entry
        instruments.miss()
        flight = self._flights.get(key)
        if flight is None:
            redis_down = unavailable is not None
            fly = self._computation.fly

            def make(flight: Flight[Outcome]) -> Any:
                return fly(flight, key, factory, opts, shape, stale, redis_down)

            flight = self._flights.start(key, make, f"rediscache-flight:{self._namespace}:{key}")
        else:
            instruments.wait("local")
        result = await self._wait_for(flight, key, opts, shape, stale, stale_source, unavailable)
        return result.value if plain else result

    async def _wait_for(
        self,
        flight: Flight[Outcome],
        key: str,
        opts: CacheOptions,
        shape: ValueShape[Any],
        stale: StoredEntry | None,
        stale_source: ValueSource,
        unavailable: CacheUnavailableError | None,
    ) -> CacheResult[Any]:
        task = flight.task
        results = self._results
        if not task.done():
            # asyncio.wait never cancels what it waits on: a caller that stops
            # waiting (timeout, cancellation) leaves the flight running for the others.
            soft = opts.soft_timeout_s if stale is not None and opts.fail_safe else None
            hard = opts.hard_timeout_s
            started = asyncio.get_running_loop().time()
            if soft is not None:
                done, _ = await asyncio.wait((task,), timeout=soft)
                if not done:
                    assert stale is not None
                    return results.stale(stale, shape, stale_source, "soft_timeout", FactoryTimeoutError(key, soft))
            if hard is not None:
                left = hard - (asyncio.get_running_loop().time() - started)
                done, _ = await asyncio.wait((task,), timeout=max(left, 0.0))
                if not done:
                    timed_out = FactoryTimeoutError(key, hard)
                    if stale is not None and opts.fail_safe:
                        return results.stale(stale, shape, stale_source, "hard_timeout", timed_out)
                    raise timed_out
            else:
                await asyncio.wait((task,))
        if task.cancelled():
            if self._tasks.closed:
                raise CacheClosedError(f"the cache {self._namespace!r} was closed while {key!r} was being computed")
            raise CacheException(f"the computation of cache key {key!r} was cancelled (its factory was cancelled)")
        try:
            # result() re-raises a failure with its original traceback for each
            # caller (a bare ``raise`` of the shared exception would grow it).
            outcome = task.result()
        except Exception as error:
            if opts.fail_safe and stale is not None:
                reason = "hard_timeout" if isinstance(error, FactoryTimeoutError) else "factory_error"
                return results.stale(stale, shape, stale_source, reason, error)
            raise
        result = results.of_outcome(outcome, shape)
        # The value was computed while Redis could not be read: say why it was not a hit.
        return replace(result, error=unavailable) if unavailable is not None else result
