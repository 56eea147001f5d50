"""RedisCache: get-or-set without stampedes, fail-safe, eager refresh and tags over a repository.

The read path of a call, in order:

1. One ``HMGET`` of the entry. Fresh: served (and, past the eager-refresh
   threshold or by XFetch's draw, refreshed in the background).
2. Missing or expired: the call joins the key's *flight* in this process, or
   starts it. The flight takes the key's distributed lease (or waits,
   notified, for the process that holds it) and runs the factory once; its
   result is written and shared with every caller.
3. With fail-safe on, an expired value kept within its staleness limit is
   served, flagged stale, when the factory fails or exceeds a timeout, or when
   Redis is unavailable (then from the in-process copy).

Redis being unavailable never makes ``get_or_set_async`` fail by itself: the
factory runs (stampede protection is then local only) and its value is served.
Plain reads and writes (``get_async``, ``set_async``, removals) raise
:class:`~neuroglia.data.redis.CacheUnavailableError` as the repository does,
unless fail-safe can answer a read from the in-process copy.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import os
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from time import perf_counter
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, ParamSpec, Self, TypeVar, Unpack, overload

from ._library import CacheException, CacheMetrics, CacheUnavailableError, InvalidArgumentError, read_entry
from .entry import FLAG_FAILSAFE_COPY, CacheResult, EntryMeta, StoredEntry, ValueSource
from .errors import CacheClosedError, FactoryTimeoutError
from .factory import FactoryContext, call_factory
from .flight import Flight, SingleFlight, TaskTracker
from .keyspace import KeySpace
from .lease import DistributedLease, LeaseState
from .local import BoundedLocalStore, LocalStore
from .metrics import CacheInstruments, CacheStatistics
from .near import NearCacheLocalStore, fail_safe_copy, near_cache_store
from .options import CacheOptions, CacheOptionsOverrides, CallOverrides, Duration, check_tags
from .scripts import CacheScripts
from .shape import ValueShape, shape_for
from .tags import DEFAULT_TAG_BATCH, remove_tag

if TYPE_CHECKING:
    from ._library import RedisRepository
    from .decorator import CachedFunction, KeySpec

__all__ = ["RedisCache"]

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")
_log = logging.getLogger("neuroglia.data.redis.cache")
_MEMO_SIZE: Final = 256
_RELEASE_TIMEOUT: Final = 1.0


class _Outcome:
    """What a flight produced: the factory's own value and/or the stored entry."""

    __slots__ = ("entry", "has_value", "source", "value")

    def __init__(self, source: ValueSource, entry: StoredEntry | None, value: Any = None, has_value: bool = False):
        self.source = source
        self.entry = entry
        self.value = value
        self.has_value = has_value


class RedisCache:
    """A typed cache of slow work's results over a :class:`~neuroglia.data.redis.RedisRepository`.

    ::

        cache = RedisCache(repo, namespace="menu", default_expiration=timedelta(minutes=5))
        item = await cache.get_or_set_async("item:margherita", load_item, expiration=timedelta(minutes=10))

    ``namespace`` prefixes every key of this cache (after the repository's own
    ``key_prefix``). ``default_expiration`` and the keyword ``defaults`` (any
    field of :class:`~neuroglia.data.redis.CacheOptions`) set the default
    options; ``options`` is a whole default options object to start from.
    Values go through the repository's serialization strategy and envelope
    (``repo.codec``).

    ``clock`` (wall-clock seconds, :func:`time.time` by default) decides
    logical expiration; processes sharing a cache should have synchronized
    clocks (NTP), as with any distributed cache that stores expiry times.
    ``local_store`` is the in-process level: by default the repository's near
    cache when it has one (``RedisConfig(near_cache=...)``: a coherent first
    level, read before Redis; see :mod:`neuroglia.data.redis.cache.near`),
    else a :class:`BoundedLocalStore` of ``local_max_entries``/``local_max_bytes``
    for fail-safe copies (see its module).
    ``metrics`` receives the cache's figures (the repository's own when it has
    ``enable_metrics=True``, else one the cache creates).

    The cache owns background tasks (flights, refreshes): ``await cache.close()``
    or ``async with RedisCache(...) as cache:`` cancels them. It does not close
    the repository.
    """

    def __init__(
        self,
        repository: RedisRepository,
        namespace: str = "cache",
        default_expiration: Duration | None = None,
        *,
        options: CacheOptions | None = None,
        clock: Callable[[], float] | None = None,
        local_store: LocalStore | None = None,
        local_max_entries: int = 10_000,
        local_max_bytes: int = 64 * 1024 * 1024,
        metrics: CacheMetrics | None = None,
        tag_batch_size: int = DEFAULT_TAG_BATCH,
        **defaults: Unpack[CacheOptionsOverrides],
    ) -> None:
        base = options if options is not None else CacheOptions()
        if not isinstance(base, CacheOptions):
            raise InvalidArgumentError(f"options must be a CacheOptions, got {type(base).__name__}")
        if default_expiration is not None:
            defaults["expiration"] = default_expiration
        self._defaults = base.with_(**defaults)
        if isinstance(tag_batch_size, bool) or not isinstance(tag_batch_size, int) or tag_batch_size < 1:
            raise InvalidArgumentError(f"tag_batch_size must be an integer >= 1, got {tag_batch_size!r}")
        self._tag_batch = tag_batch_size
        self._repo = repository
        self._codec = repository.codec
        self._keys = KeySpace(namespace, repository.config.key_prefix)
        self._full_prefix = repository.config.key_prefix
        self._scripts = CacheScripts(repository)
        self._clock = clock or time.time
        owned = metrics if metrics is not None else repository.metrics
        self._instruments = CacheInstruments(owned if owned is not None else CacheMetrics("rediscache"), namespace)
        if local_store is None:
            # The repository's near cache, when it keeps this cache's reads, is the coherent first level.
            local_store = near_cache_store(
                getattr(repository, "near_cache", None),
                self._full_prefix,
                self._keys.entry_root,
                self._instruments,
                local_max_entries,
                local_max_bytes,
            )
        self._local: LocalStore = (
            local_store if local_store is not None else BoundedLocalStore(local_max_entries, local_max_bytes)
        )
        self._fail_safe_copy = fail_safe_copy(self._local)
        self._tasks = TaskTracker()
        self._flights: SingleFlight[_Outcome] = SingleFlight(self._tasks)
        self._refreshes: SingleFlight[None] = SingleFlight(self._tasks)
        # Unique per cache object (and per process after a fork): names this
        # cache as a waiter and prefixes its lease tokens.
        self._id = os.urandom(8).hex()
        self._tokens = itertools.count(1)
        self._lease = DistributedLease(repository, self._scripts, self._keys, self._id)
        # Its own generator: early refresh never disturbs the application's global random state.
        self._random: Callable[[], float] = random.Random().random
        self._memo: dict[tuple[Any, ...], tuple[CacheOptions, CacheOptions]] = {}
        self._closed = False

    # -- lifetime and properties ------------------------------------------------

    @property
    def namespace(self) -> str:
        """The namespace of this cache's keys."""
        return self._keys.namespace

    @property
    def repository(self) -> RedisRepository:
        """The repository the cache stores in."""
        return self._repo

    @property
    def default_options(self) -> CacheOptions:
        """The options a call starts from; derive per-call options with ``default_options.with_(...)``."""
        return self._defaults

    @property
    def metrics(self) -> CacheMetrics:
        """Where the cache's figures go (see :mod:`neuroglia.data.redis.cache.metrics`)."""
        return self._instruments.metrics

    @property
    def local_store(self) -> LocalStore:
        """The in-process level."""
        return self._local

    def statistics(self) -> CacheStatistics:
        """A snapshot of this cache's figures: hits, misses, stale served, factory runs, waits..."""
        return self._instruments.statistics()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    async def close(self) -> None:
        """Cancel the cache's background work (flights, refreshes); later calls raise ``CacheClosedError``.

        Callers waiting for a cancelled flight get
        :class:`~neuroglia.data.redis.CacheClosedError`. A lease held by a
        cancelled flight is given up (waiting processes take over at once).
        The repository stays open.
        """
        self._closed = True
        if isinstance(self._local, NearCacheLocalStore):
            self._local.close()
        await self._tasks.close()

    async def drain_async(self) -> None:
        """Wait until the background work (refreshes, factories finishing after a timeout) has ended."""
        await self._tasks.idle()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"RedisCache(namespace={self.namespace!r}, repository={self._repo!r})"

    def _check_open(self) -> None:
        if self._closed:
            raise CacheClosedError(f"the cache {self.namespace!r} is closed")

    # -- options -------------------------------------------------------------------

    def _options(
        self,
        options: CacheOptions | None,
        overrides: Mapping[str, Any],
        expiration: Duration | None = None,
        tags: Iterable[str] | None = None,
    ) -> CacheOptions:
        base = self._defaults if options is None else options
        if not isinstance(base, CacheOptions):
            raise InvalidArgumentError(f"options must be a CacheOptions, got {type(base).__name__}")
        if expiration is not None or tags is not None:
            overrides = dict(overrides)
            if expiration is not None:
                overrides["expiration"] = expiration
            if tags is not None:
                overrides["tags"] = check_tags(tags)
        if not overrides:
            return base
        # Resolved variants are remembered: building a frozen options object
        # (with its checks) on every call would cost more than the Redis read.
        try:
            memo_key = (id(base), *sorted(overrides.items()))
            found = self._memo.get(memo_key)
        except TypeError:  # an unhashable override value
            return base.with_(**overrides)
        if found is not None and found[0] is base:
            return found[1]
        resolved = base.with_(**overrides)
        if len(self._memo) >= _MEMO_SIZE:
            self._memo.clear()
        self._memo[memo_key] = (base, resolved)
        return resolved

    # -- time and metadata ----------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _meta(self, now_ms: int, expiration_s: float, options: CacheOptions, duration_ms: int = 0) -> EntryMeta:
        fresh_ms = expiration_s * 1000
        if options.jitter:
            fresh_ms *= 1 + self._random() * options.jitter
        expires = now_ms + max(1, round(fresh_ms))
        stale_until = expires
        if options.keeps_stale:
            assert options.max_staleness_s is not None
            stale_until += round(options.max_staleness_s * 1000)
        return EntryMeta(expires, stale_until, now_ms, duration_ms)

    def _should_refresh(self, meta: EntryMeta, options: CacheOptions, now_ms: int) -> bool:
        if meta.is_failsafe_copy:
            return False  # the fail-safe throttle keeps the factory quiet until it ends
        if options.eager is not None:
            start = meta.created_ms + (meta.expires_ms - meta.created_ms) * options.eager
            if now_ms >= start:
                return True
        if options.xfetch_beta and meta.duration_ms:
            # XFetch: refresh when now - delta * beta * ln(U) >= expiry, U uniform in (0, 1].
            draw = -meta.duration_ms * options.xfetch_beta * math.log(1.0 - self._random())
            return now_ms + draw >= meta.expires_ms
        return False

    def _result(self, entry: StoredEntry, shape: ValueShape[Any], source: ValueSource) -> CacheResult[Any]:
        meta = entry.meta
        return CacheResult(
            shape.load(self._codec.loads(entry.data)),
            source,
            meta.is_failsafe_copy,
            None,
            meta.expires_ms / 1000,
            meta.created_ms / 1000,
            entry.tags,
        )

    def _count_hit(self, entry: StoredEntry, *, local: bool = False) -> None:
        if entry.meta.is_failsafe_copy:
            self._instruments.stale("throttle")  # a stale value, re-served during the fail-safe throttle
        else:
            self._instruments.hit(local=local)

    def _stale_result(
        self,
        entry: StoredEntry,
        shape: ValueShape[Any],
        source: ValueSource,
        reason: str,
        error: BaseException | None,
    ) -> CacheResult[Any]:
        self._instruments.stale(reason)
        return replace(self._result(entry, shape, source), is_stale=True, error=error)

    # -- Redis access ---------------------------------------------------------------

    async def _read(self, entry_key: str) -> StoredEntry | None:
        v, m, t = await read_entry(self._repo, self._full_prefix + entry_key)
        return StoredEntry.from_fields(v, m, t)

    async def _write(self, key: str, entry: StoredEntry, token: str = "") -> bool:
        """Write ``entry`` (releasing ``token``'s lease, waking waiters); ``False`` if it is already dead."""
        ttl_ms = entry.meta.stale_until_ms - self._now_ms()
        if ttl_ms <= 0:
            if token:
                await self._lease.release(key, token)
            return False
        keys = self._keys
        await self._scripts.set(
            keys=(keys.entry(key), keys.lease(key), keys.waiters(key)),
            args=(entry.data, entry.meta.encode(), ttl_ms, keys.tag_prefix, keys.wake_prefix(key), token, *entry.tags),
        )
        return True

    async def _release(self, key: str, token: str | None) -> None:
        """Give a lease up, best effort: if Redis cannot be told, the lease runs out by itself."""
        if not token:
            return
        try:
            # Bounded: a release must not hold up a failing call or close() during an outage.
            async with asyncio.timeout(_RELEASE_TIMEOUT):
                await self._lease.release(key, token)
        except (CacheException, TimeoutError) as exc:
            _log.debug("cache %s: could not release the lease of %r: %r", self.namespace, key, exc)

    def _keep_local(self, key: str, entry: StoredEntry, options: CacheOptions) -> None:
        if options.fail_safe or self._local.coherent:
            self._local.set(key, entry)

    def _new_token(self) -> str:
        return f"{self._id}:{next(self._tokens):x}"

    # -- get-or-set --------------------------------------------------------------------

    @overload
    async def get_or_set_async(
        self,
        key: str,
        factory: Callable[..., Awaitable[Any]],
        expiration: Duration | None = None,
        *,
        type_: type[T],
        tags: Iterable[str] | None = None,
        options: CacheOptions | None = None,
        **overrides: Unpack[CallOverrides],
    ) -> T: ...

    @overload
    async def get_or_set_async(
        self,
        key: str,
        factory: Callable[..., Awaitable[Any]],
        expiration: Duration | None = None,
        *,
        type_: None = None,
        tags: Iterable[str] | None = None,
        options: CacheOptions | None = None,
        **overrides: Unpack[CallOverrides],
    ) -> Any: ...

    async def get_or_set_async(
        self,
        key: str,
        factory: Callable[..., Awaitable[Any]],
        expiration: Duration | None = None,
        *,
        type_: type[T] | None = None,
        tags: Iterable[str] | None = None,
        options: CacheOptions | None = None,
        **overrides: Unpack[CallOverrides],
    ) -> Any:
        """The value of ``key``: from the cache, or computed once by ``factory`` and stored.

        ``factory`` is an async callable taking nothing or a
        :class:`~neuroglia.data.redis.FactoryContext`. Concurrent callers of one
        key share one factory run per process, and processes share one run
        through the key's lease. ``type_`` rebuilds the value on a hit (a
        dataclass or pydantic model); without it, hit and miss both return the
        serializer's decoding (dicts and lists for JSON). ``expiration``,
        ``tags``, ``options`` and keyword overrides set the call's
        :class:`~neuroglia.data.redis.CacheOptions`.

        Raises what the factory raised when there is no stale value to serve,
        :class:`~neuroglia.data.redis.FactoryTimeoutError` after the hard
        timeout, :class:`~neuroglia.data.redis.SerializationError` when the value
        cannot be stored (nothing is written). Use :meth:`get_or_set_entry_async`
        to learn whether the value was served stale.
        """
        opts = self._options(options, overrides, expiration, tags)
        return await self._get_or_set(key, factory, opts, shape_for(type_), plain=True)

    async def get_or_set_entry_async(
        self,
        key: str,
        factory: Callable[..., Awaitable[Any]],
        expiration: Duration | None = None,
        *,
        type_: type[T] | None = None,
        tags: Iterable[str] | None = None,
        options: CacheOptions | None = None,
        **overrides: Unpack[CallOverrides],
    ) -> CacheResult[Any]:
        """:meth:`get_or_set_async`, returning the value with its flags (stale? from where? why?)."""
        opts = self._options(options, overrides, expiration, tags)
        result: CacheResult[Any] = await self._get_or_set(key, factory, opts, shape_for(type_))
        return result

    async def _get_or_set(
        self, key: str, factory: Callable[..., Any], opts: CacheOptions, shape: ValueShape[Any], *, plain: bool = False
    ) -> Any:
        """The value (``plain``) or the :class:`CacheResult` of ``key``; see :meth:`get_or_set_async`.

        A hit is the common path: with ``plain`` it builds no result object.
        """
        self._check_open()
        entry_key = self._keys.entry(key)
        now_ms = self._now_ms()
        local = self._local
        instruments = self._instruments
        stale: StoredEntry | None = None
        stale_source: ValueSource = "redis"
        unavailable: CacheUnavailableError | None = None
        if local.coherent:
            copy = local.get(key)
            if copy is not None and copy.meta.is_fresh(now_ms):
                self._count_hit(copy, local=True)
                result = self._result(copy, shape, "local")
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
                        self._count_hit(copy, local=True)
                        result = replace(self._result(copy, shape, "local"), error=exc)
                        return result.value if plain else result
                    if copy.meta.is_usable_stale(now_ms):
                        stale, stale_source = copy, "local"
        else:
            if entry is not None:
                meta = entry.meta
                if now_ms < meta.expires_ms:  # fresh
                    if meta.flags:
                        self._count_hit(entry)
                    else:
                        instruments.hit()
                    if opts.fail_safe or local.coherent:
                        local.set(key, entry)
                    if (opts.eager is not None or opts.xfetch_beta) and self._should_refresh(meta, opts, now_ms):
                        self._start_refresh(key, factory, opts, shape, entry)
                    if plain:
                        return shape.load(self._codec.loads(entry.data))
                    return self._result(entry, shape, "redis")
                if opts.fail_safe and meta.is_usable_stale(now_ms):
                    stale = entry
        instruments.miss()
        flight = self._flights.get(key)
        if flight is None:
            redis_down = unavailable is not None

            def make(flight: Flight[_Outcome]) -> Any:
                return self._fly(flight, key, factory, opts, shape, stale, redis_down)

            flight = self._flights.start(key, make, f"rediscache-flight:{self.namespace}:{key}")
        else:
            instruments.wait("local")
        result = await self._wait_for(flight, key, opts, shape, stale, stale_source, unavailable)
        return result.value if plain else result

    async def _wait_for(
        self,
        flight: Flight[_Outcome],
        key: str,
        opts: CacheOptions,
        shape: ValueShape[Any],
        stale: StoredEntry | None,
        stale_source: ValueSource,
        unavailable: CacheUnavailableError | None,
    ) -> CacheResult[Any]:
        task = flight.task
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
                    return self._stale_result(
                        stale, shape, stale_source, "soft_timeout", FactoryTimeoutError(key, soft)
                    )
            if hard is not None:
                left = hard - (asyncio.get_running_loop().time() - started)
                done, _ = await asyncio.wait((task,), timeout=max(left, 0.0))
                if not done:
                    timed_out = FactoryTimeoutError(key, hard)
                    if stale is not None and opts.fail_safe:
                        return self._stale_result(stale, shape, stale_source, "hard_timeout", timed_out)
                    raise timed_out
            else:
                await asyncio.wait((task,))
        if task.cancelled():
            if self._closed:
                raise CacheClosedError(f"the cache {self.namespace!r} was closed while {key!r} was being computed")
            raise CacheException(f"the computation of cache key {key!r} was cancelled (its factory was cancelled)")
        try:
            # result() re-raises a failure with its original traceback for each
            # caller (a bare ``raise`` of the shared exception would grow it).
            outcome = task.result()
        except Exception as error:
            if opts.fail_safe and stale is not None:
                reason = "hard_timeout" if isinstance(error, FactoryTimeoutError) else "factory_error"
                return self._stale_result(stale, shape, stale_source, reason, error)
            raise
        entry = outcome.entry
        if outcome.has_value and (entry is None or shape.keeps(outcome.value)):
            if entry is None:
                result: CacheResult[Any] = CacheResult(outcome.value, outcome.source)
            else:
                meta = entry.meta
                result = CacheResult(
                    outcome.value,
                    outcome.source,
                    False,
                    None,
                    meta.expires_ms / 1000,
                    meta.created_ms / 1000,
                    entry.tags,
                )
        else:
            assert entry is not None
            result = self._result(entry, shape, outcome.source)
        # The value was computed while Redis could not be read: say why it was not a hit.
        return replace(result, error=unavailable) if unavailable is not None else result

    async def _fly(
        self,
        flight: Flight[_Outcome],
        key: str,
        factory: Callable[..., Any],
        opts: CacheOptions,
        shape: ValueShape[Any],
        stale: StoredEntry | None,
        redis_down: bool,
    ) -> _Outcome:
        """The flight of a missing key: wait for another process's value, or compute it."""
        token: str | None = None
        if opts.lease_s is not None and not redis_down:
            token = self._new_token()
            try:
                got = await self._lease.acquire(
                    key,
                    token,
                    max(1, round(opts.lease_s * 1000)),
                    self._now_ms,
                    wait=True,
                    on_wait=lambda: self._instruments.wait("distributed"),
                )
            except CacheUnavailableError:
                self._instruments.redis_error("lease")
                token, redis_down = None, True
            else:
                if got.state is LeaseState.FRESH:
                    assert got.entry is not None
                    self._keep_local(key, got.entry, opts)
                    return _Outcome("redis", got.entry)
        return await self._compute(flight, key, factory, opts, shape, stale, token, redis_down)

    async def _compute(
        self,
        flight: Flight[Any],
        key: str,
        factory: Callable[..., Any],
        opts: CacheOptions,
        shape: ValueShape[Any],
        stale: StoredEntry | None,
        token: str | None,
        redis_down: bool,
    ) -> _Outcome:
        """Run the factory (holding ``token``'s lease, if any) and store its result."""
        ctx = FactoryContext(key, opts, stale, self._codec)
        try:
            value, duration_ms = await self._run_factory(key, factory, ctx, opts)
        except Exception:
            await self._fail_safe_throttle(flight, key, opts, stale, token, redis_down)
            raise
        except BaseException:
            # Cancelled (the cache is closing, or the factory was): give the lease
            # up so that another process takes over now rather than at its end.
            if not redis_down:
                await self._release(key, token)
            raise
        if ctx.do_not_cache:
            if not redis_down:
                await self._release(key, token)
            return _Outcome("factory", None, value, True)
        try:
            data = self._codec.dumps(shape.dump(value))
        except BaseException:
            if not redis_down:
                await self._release(key, token)
            raise
        now_ms = self._now_ms()
        entry = StoredEntry(data, self._meta(now_ms, ctx.expiration, opts, duration_ms), ctx.tags)
        if not flight.may_store(entry.tags):
            # Written, removed or its tag removed while the factory ran: the
            # result may be older than that, so it is served but not stored.
            if not redis_down:
                await self._release(key, token)
            return _Outcome("factory", entry, value, True)
        if not redis_down:
            try:
                await self._write(key, entry, token or "")
            except CacheUnavailableError as exc:
                self._instruments.redis_error("set")
                _log.warning("cache %s: could not store %r, Redis is unavailable: %s", self.namespace, key, exc)
        self._keep_local(key, entry, opts)
        return _Outcome("factory", entry, value, True)

    async def _run_factory(
        self, key: str, factory: Callable[..., Any], ctx: FactoryContext, opts: CacheOptions
    ) -> tuple[Any, int]:
        """Run the factory once: traced, timed, counted; bounded by the hard timeout if it may not finish late."""
        instruments = self._instruments
        started = perf_counter()
        clock_started = self._clock()  # XFetch's delta is kept in the cache clock's time
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
        return value, max(0, round((self._clock() - clock_started) * 1000))

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
        now_ms = self._now_ms()
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
            self._keep_local(key, throttled, opts)
            if not redis_down:
                try:
                    await self._write(key, throttled, token or "")
                    return
                except CacheException as exc:
                    _log.debug("cache %s: could not store the fail-safe copy of %r: %s", self.namespace, key, exc)
        if not redis_down:
            await self._release(key, token)

    # -- eager refresh -------------------------------------------------------------

    def _start_refresh(
        self, key: str, factory: Callable[..., Any], opts: CacheOptions, shape: ValueShape[Any], entry: StoredEntry
    ) -> None:
        if self._refreshes.get(key) is not None or self._flights.get(key) is not None:
            return  # one refresh at a time per key, and none while the key is being computed anyway

        def make(flight: Flight[None]) -> Any:
            return self._refresh(flight, key, factory, opts, shape, entry)

        self._refreshes.start(key, make, f"rediscache-refresh:{self.namespace}:{key}")

    async def _refresh(
        self,
        flight: Flight[None],
        key: str,
        factory: Callable[..., Any],
        opts: CacheOptions,
        shape: ValueShape[Any],
        entry: StoredEntry,
    ) -> None:
        """Recompute a key that is still fresh, in the background, unless another process already does."""
        instruments = self._instruments
        token: str | None = None
        try:
            if opts.lease_s is not None:
                token = self._new_token()
                expires = entry.meta.expires_ms
                got = await self._lease.acquire(
                    key, token, max(1, round(opts.lease_s * 1000)), lambda: expires, wait=False
                )
                if got.state is not LeaseState.ACQUIRED:
                    instruments.eager_refresh("skipped")  # refreshed meanwhile, or being refreshed elsewhere
                    return
            # No stale value: a failed refresh must not turn the fresh entry into a fail-safe copy.
            await self._compute(flight, key, factory, opts, shape, None, token, False)
            instruments.eager_refresh("ok")
        except CacheUnavailableError as exc:
            instruments.eager_refresh("skipped")
            _log.debug("cache %s: eager refresh of %r skipped, Redis is unavailable: %s", self.namespace, key, exc)
        except Exception as exc:
            instruments.eager_refresh("error")
            _log.warning("cache %s: eager refresh of %r failed: %r", self.namespace, key, exc)

    # -- plain reads -------------------------------------------------------------------

    @overload
    async def get_async(
        self, key: str, type_: type[T], *, options: CacheOptions | None = None, **overrides: Unpack[CallOverrides]
    ) -> T | None: ...

    @overload
    async def get_async(
        self, key: str, type_: None = None, *, options: CacheOptions | None = None, **overrides: Unpack[CallOverrides]
    ) -> Any: ...

    async def get_async(
        self,
        key: str,
        type_: type[T] | None = None,
        *,
        options: CacheOptions | None = None,
        **overrides: Unpack[CallOverrides],
    ) -> Any:
        """The fresh value of ``key`` (rebuilt as ``type_``), or ``None`` on a miss.

        A value cached as ``None`` also reads as ``None``: use
        :meth:`get_entry_async` to tell them apart. With ``allow_stale_on_read``
        an expired value kept by fail-safe is returned too. When Redis is
        unavailable, fail-safe answers from the in-process copy if it has one;
        otherwise :class:`~neuroglia.data.redis.CacheUnavailableError` is raised.
        """
        result = await self.get_entry_async(key, type_, options=options, **overrides)
        return None if result is None else result.value

    async def get_entry_async(
        self,
        key: str,
        type_: type[T] | None = None,
        *,
        options: CacheOptions | None = None,
        **overrides: Unpack[CallOverrides],
    ) -> CacheResult[Any] | None:
        """:meth:`get_async` with the value's flags; ``None`` on a miss."""
        self._check_open()
        opts = self._options(options, overrides)
        shape = shape_for(type_)
        entry_key = self._keys.entry(key)
        now_ms = self._now_ms()
        local = self._local
        instruments = self._instruments
        if local.coherent:
            copy = local.get(key)
            if copy is not None and copy.meta.is_fresh(now_ms):
                self._count_hit(copy, local=True)
                return self._result(copy, shape, "local")
        try:
            entry = await self._read(entry_key)
        except CacheUnavailableError as exc:
            instruments.redis_error("get")
            copy = self._fail_safe_copy(key) if opts.fail_safe else None
            if copy is not None:
                if copy.meta.is_fresh(now_ms):
                    self._count_hit(copy, local=True)
                    return replace(self._result(copy, shape, "local"), error=exc)
                if copy.meta.is_usable_stale(now_ms):
                    return self._stale_result(copy, shape, "local", "redis_unavailable", exc)
            raise
        if entry is not None:
            if entry.meta.is_fresh(now_ms):
                self._count_hit(entry)
                self._keep_local(key, entry, opts)
                return self._result(entry, shape, "redis")
            if opts.allow_stale_on_read and entry.meta.is_usable_stale(now_ms):
                return self._stale_result(entry, shape, "redis", "read", None)
        instruments.miss()
        return None

    # -- writes and removals --------------------------------------------------------

    async def set_async(
        self,
        key: str,
        value: Any,
        expiration: Duration | None = None,
        *,
        tags: Iterable[str] | None = None,
        options: CacheOptions | None = None,
        **overrides: Unpack[CallOverrides],
    ) -> None:
        """Store ``value`` under ``key`` (with ``tags``), replacing what was there.

        A value the serialization strategy cannot represent raises
        :class:`~neuroglia.data.redis.SerializationError` and nothing is written.
        A factory running for ``key`` in this process at the time will not
        overwrite this value with its (possibly older) result.
        """
        self._check_open()
        opts = self._options(options, overrides, expiration, tags)
        self._keys.entry(key)
        data = self._codec.dumps(value)
        entry = StoredEntry(data, self._meta(self._now_ms(), opts.expiration_s, opts), tuple(opts.tags))
        self._invalidate_flights(key)
        if not opts.fail_safe and not self._local.coherent:
            self._local.remove(key)  # a copy older than this write must never be served
        await self._write(key, entry)
        # Again: a flight that started while the write was on its way read the older value.
        self._invalidate_flights(key)
        self._keep_local(key, entry, opts)

    def _invalidate_flights(self, key: str) -> None:
        self._flights.invalidate(key)
        self._refreshes.invalidate(key)

    async def remove_async(self, key: str) -> bool:
        """Remove ``key`` (and its in-process copy); returns whether it existed in Redis."""
        self._check_open()
        entry_key = self._keys.entry(key)
        self._invalidate_flights(key)
        self._local.remove(key)
        removed = await self._scripts.remove(keys=(entry_key,), args=(self._keys.tag_prefix,))
        self._invalidate_flights(key)
        return bool(removed)

    async def expire_async(self, key: str) -> bool:
        """Mark ``key`` expired now: the next call recomputes it, and fail-safe may still serve it stale.

        An entry kept past its expiration (written with fail-safe on) stays, stale;
        any other is removed. Returns whether the entry existed.
        """
        self._check_open()
        entry_key = self._keys.entry(key)
        now_ms = self._now_ms()
        copy = self._local.get(key)
        if copy is not None and copy.meta.is_fresh(now_ms):
            if copy.meta.stale_until_ms > copy.meta.expires_ms:  # kept for fail-safe, as in Redis
                self._local.set(key, copy._replace(meta=copy.meta._replace(expires_ms=now_ms)))
            else:
                self._local.remove(key)
        done = await self._scripts.expire(keys=(entry_key,), args=(now_ms, self._keys.tag_prefix))
        return bool(done)

    async def remove_by_tag_async(self, tag: str) -> int:
        """Remove every entry tagged ``tag``, in every process's view; returns how many this call deleted.

        Costs O(entries tagged): no keyspace scan. Every entry written with the
        tag before the call began is gone when it returns; an entry overwritten
        meanwhile without the tag is kept.
        """
        self._check_open()
        (checked,) = check_tags([tag], "tag")
        self._local.remove_by_tag(checked)
        self._flights.tag_removed(checked)
        self._refreshes.tag_removed(checked)
        deleted = await remove_tag(self._scripts, self._keys, checked, self._tag_batch)
        # Again: a read that crossed the removal may have kept an entry it deleted.
        self._local.remove_by_tag(checked)
        self._flights.tag_removed(checked)
        self._refreshes.tag_removed(checked)
        self._instruments.tag_invalidation(deleted)
        return deleted

    async def clear_async(self) -> int:
        """Remove every entry of this namespace (a SCAN of the keyspace: meant for tests and admin tools).

        Returns how many entries were removed.
        """
        self._check_open()
        self._local.clear()
        self._flights.invalidate_all()
        self._refreshes.invalidate_all()
        escape = self._repo.escape_pattern
        removed = await self._repo.delete_pattern_async(escape(self._keys.entry_root) + "*")
        await self._repo.delete_pattern_async(escape(self._keys.internal_root) + "*")
        self._local.clear()  # again: a read that crossed the deletion may have kept an entry
        return removed

    # -- the decorator -----------------------------------------------------------------

    def cached(
        self,
        expiration: Duration | None = None,
        *,
        key: KeySpec | None = None,
        tags: Iterable[str] = (),
        cache_none: bool = False,
        type_: Any = None,
        options: CacheOptions | None = None,
        **overrides: Unpack[CallOverrides],
    ) -> Callable[[Callable[P, Awaitable[R]]], CachedFunction[P, R]]:
        """Cache an async function's (or method's, or query handler's) results by its arguments.

        ``key`` is a format string over the parameters (``"item:{item_id}"``,
        ``"menu:{query.category}"``) or a callable taking the same arguments;
        by default the function's qualified name and all its arguments.
        ``tags`` may use the same fields. ``None`` results are not cached unless
        ``cache_none``. ``type_`` rebuilds hits (by default the return annotation:
        a class, ``X | None``, ``list[X]``, or the framework's ``OperationResult[X]``,
        of which only successful results are cached). The decorated function
        has ``invalidate_async(*args, **kwargs)`` and ``key_for(*args, **kwargs)``.
        See :mod:`neuroglia.data.redis.cache.decorator`.
        """
        from .decorator import make_cached

        opts = self._options(options, overrides, expiration)
        return make_cached(self, opts, key=key, tags=tags, cache_none=cache_none, type_=type_)

    async def _get_or_set_shaped(
        self, key: str, factory: Callable[..., Any], opts: CacheOptions, shape: ValueShape[Any]
    ) -> Any:
        """The decorator's entry point: a prepared options object and shape; returns the value."""
        return await self._get_or_set(key, factory, opts, shape, plain=True)
