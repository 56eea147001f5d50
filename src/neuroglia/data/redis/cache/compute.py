"""Computing a missing key: the lease across processes, the factory run, storing its result.

A flight (see :mod:`.flight`) of a missing key first takes the key's
distributed lease, or waits, notified, while another process computes it
and then uses that process's value (see :mod:`.lease`). Holding the lease, or
without one (no lease configured, or Redis unavailable: stampede protection
is then local only), it runs the factory once: traced, timed, counted, and
bounded by the hard timeout unless it may complete in the background.

Its result is written (releasing the lease and waking the waiters) unless the
factory said not to cache it, or the key was written, removed or its tag
removed while the factory ran. A failed factory with a stale value to serve
keeps that value for the fail-safe throttle instead, so that the factory is
not called again at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any

from ._library import CacheException, CacheUnavailableError
from .entry import FLAG_FAILSAFE_COPY, EntryMeta, StoredEntry
from .errors import FactoryTimeoutError
from .factory import FactoryContext, call_factory
from .first_level import FirstLevel
from .flight import Flight
from .lease import LeaseState
from .metrics import CacheInstruments
from .options import CacheOptions
from .results import Outcome
from .shape import ValueShape
from .store import EntryStore
from .timing import EntryClock

if TYPE_CHECKING:
    from ._library import EnvelopeSerializer

__all__ = ["Computation"]

_log = logging.getLogger("neuroglia.data.redis.cache")


class Computation:
    """How one cache computes, stores and shares the value of a missing key."""

    __slots__ = ("_codec", "_first", "_instruments", "_namespace", "_store", "_timing")

    def __init__(
        self,
        store: EntryStore,
        first: FirstLevel,
        timing: EntryClock,
        codec: EnvelopeSerializer,
        instruments: CacheInstruments,
        namespace: str,
    ) -> None:
        self._store = store
        self._first = first
        self._timing = timing
        self._codec = codec
        self._instruments = instruments
        self._namespace = namespace

    async def fly(
        self,
        flight: Flight[Outcome],
        key: str,
        factory: Callable[..., Any],
        opts: CacheOptions,
        shape: ValueShape[Any],
        stale: StoredEntry | None,
        redis_down: bool,
    ) -> Outcome:
        """The flight of a missing key: wait for another process's value, or compute it."""
        token: str | None = None
        if opts.lease_s is not None and not redis_down:
            token = self._store.new_token()
            try:
                got = await self._store.lease.acquire(
                    key,
                    token,
                    max(1, round(opts.lease_s * 1000)),
                    self._timing.now_ms,
                    wait=True,
                    on_wait=lambda: self._instruments.wait("distributed"),
                )
            except CacheUnavailableError:
                self._instruments.redis_error("lease")
                token, redis_down = None, True
            else:
                if got.state is LeaseState.FRESH:
                    assert got.entry is not None
                    self._first.keep(key, got.entry, opts)
                    return Outcome("redis", got.entry)
        return await self.compute(flight, key, factory, opts, shape, stale, token, redis_down)

    async def compute(
        self,
        flight: Flight[Any],
        key: str,
        factory: Callable[..., Any],
        opts: CacheOptions,
        shape: ValueShape[Any],
        stale: StoredEntry | None,
        token: str | None,
        redis_down: bool,
    ) -> Outcome:
        """Run the factory (holding ``token``'s lease, if any) and store its result."""
        ctx = FactoryContext(key, opts, stale, self._codec)
        release = self._store.release
        try:
            value, duration_ms = await self._run_factory(key, factory, ctx, opts)
        except Exception:
            await self._fail_safe_throttle(flight, key, opts, stale, token, redis_down)
            raise
        except BaseException:
            # Cancelled (the cache is closing, or the factory was): give the lease
            # up so that another process takes over now rather than at its end.
            if not redis_down:
                await release(key, token)
            raise
        if ctx.do_not_cache:
            if not redis_down:
                await release(key, token)
            return Outcome("factory", None, value, True)
        try:
            data = self._codec.dumps(shape.dump(value))
        except BaseException:
            if not redis_down:
                await release(key, token)
            raise
        timing = self._timing
        entry = StoredEntry(data, timing.meta(timing.now_ms(), ctx.expiration, opts, duration_ms), ctx.tags)
        if not flight.may_store(entry.tags):
            # Written, removed or its tag removed while the factory ran: the
            # result may be older than that, so it is served but not stored.
            if not redis_down:
                await release(key, token)
            return Outcome("factory", entry, value, True)
        if not redis_down:
            try:
                await self._store.write(key, entry, token or "")
            except CacheUnavailableError as exc:
                self._instruments.redis_error("set")
                _log.warning("cache %s: could not store %r, Redis is unavailable: %s", self._namespace, key, exc)
        self._first.keep(key, entry, opts)
        return Outcome("factory", entry, value, True)

    async def _run_factory(
        self, key: str, factory: Callable[..., Any], ctx: FactoryContext, opts: CacheOptions
    ) -> tuple[Any, int]:
        """Run the factory once: traced, timed, counted; bounded by the hard timeout if it may not finish late."""
        instruments = self._instruments
        clock = self._timing.clock
        started = perf_counter()
        clock_started = clock()  # XFetch's delta is kept in the cache clock's time
        outcome = "error"
        with instruments.factory_span(key) as span:
            try:
                hard = opts.hard_timeout_s
                if hard is not None and not opts.allow_background_completion:
                    try:
                        async with asyncio.timeout(hard) as scope:
                            value = await call_factory(factory, ctx)
                    except TimeoutError:
                        if scope.expired():
                            outcome = "timeout"
                            raise FactoryTimeoutError(key, hard) from None
                        raise
                else:
                    value = await call_factory(factory, ctx)
                outcome = "ok"
            finally:  # (the span records a raised exception and its status by itself)
                elapsed = perf_counter() - started
                if span is not None:
                    span.set_attribute("cache.outcome", outcome)
                instruments.factory(outcome, elapsed)
        return value, max(0, round((clock() - clock_started) * 1000))

    async def _fail_safe_throttle(
        self,
        flight: Flight[Any],
        key: str,
        opts: CacheOptions,
        stale: StoredEntry | None,
        token: str | None,
        redis_down: bool,
    ) -> None:
        """After a failed factory: keep serving the stale value for the throttle, without calling the factory."""
        now_ms = self._timing.now_ms()
        if opts.fail_safe and stale is not None and opts.throttle_s is not None and flight.may_store(stale.tags):
            meta = stale.meta
            expires = min(now_ms + round(opts.throttle_s * 1000), meta.stale_until_ms)
            throttled = StoredEntry(
                stale.data,
                EntryMeta(
                    expires, meta.stale_until_ms, meta.created_ms, meta.duration_ms, meta.flags | FLAG_FAILSAFE_COPY
                ),
                stale.tags,
            )
            self._first.keep(key, throttled, opts)
            if not redis_down:
                try:
                    await self._store.write(key, throttled, token or "")
                    return
                except CacheException as exc:
                    _log.debug("cache %s: could not store the fail-safe copy of %r: %s", self._namespace, key, exc)
        if not redis_down:
            await self._store.release(key, token)
