"""RedisCache: get-or-set without stampedes, fail-safe, eager refresh and tags over a repository.

The facade: each public call checks that the cache is open and resolves the
call's options (:mod:`.resolve`), then hands over to the part of the cache
that does the work (:mod:`.parts` lists them). A hit of ``get_or_set_async``
is one call into :mod:`.getorset` and one read of Redis.

Redis being unavailable never makes ``get_or_set_async`` fail by itself: the
factory runs (stampede protection is then local only) and its value is served.
Plain reads and writes (``get_async``, ``set_async``, removals) raise
:class:`~neuroglia.data.redis.CacheUnavailableError` as the repository does,
unless fail-safe can answer a read from the in-process copy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, Self, TypeVar, Unpack, overload

from ._library import CacheMetrics
from .entry import CacheResult
from .local import LocalStore
from .metrics import CacheStatistics
from .options import CacheOptions, CacheOptionsOverrides, CallOverrides, Duration
from .parts import CacheParts
from .resolve import OptionsResolver
from .shape import shape_for
from .tags import DEFAULT_TAG_BATCH

if TYPE_CHECKING:
    from ._library import RedisRepository
    from .decorator import CachedFunction, KeySpec

__all__ = ["RedisCache"]

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")


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
        self._resolver = OptionsResolver.for_cache(options, default_expiration, defaults)
        self._options = self._resolver.resolve
        self._repo = repository
        self._parts = parts = CacheParts(
            repository, namespace, clock, local_store, local_max_entries, local_max_bytes, metrics, tag_batch_size
        )
        # The hit path's calls, bound once.
        self._check_open = parts.check_open
        self._get_or_set = parts.get_or_set.run

    # -- lifetime and properties ------------------------------------------------

    @property
    def namespace(self) -> str:
        """The namespace of this cache's keys."""
        return self._parts.keys.namespace

    @property
    def repository(self) -> RedisRepository:
        """The repository the cache stores in."""
        return self._repo

    @property
    def default_options(self) -> CacheOptions:
        """The options a call starts from; derive per-call options with ``default_options.with_(...)``."""
        return self._resolver.defaults

    @property
    def metrics(self) -> CacheMetrics:
        """Where the cache's figures go (see :mod:`neuroglia.data.redis.cache.metrics`)."""
        return self._parts.instruments.metrics

    @property
    def local_store(self) -> LocalStore:
        """The in-process level."""
        return self._parts.first.store

    def statistics(self) -> CacheStatistics:
        """A snapshot of this cache's figures: hits, misses, stale served, factory runs, waits..."""
        return self._parts.instruments.statistics()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._parts.tasks.closed

    async def close(self) -> None:
        """Cancel the cache's background work (flights, refreshes); later calls raise ``CacheClosedError``.

        Callers waiting for a cancelled flight get
        :class:`~neuroglia.data.redis.CacheClosedError`. A lease held by a
        cancelled flight is given up (waiting processes take over at once).
        The repository stays open.
        """
        await self._parts.close()

    async def drain_async(self) -> None:
        """Wait until the background work (refreshes, factories finishing after a timeout) has ended."""
        await self._parts.tasks.idle()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"RedisCache(namespace={self.namespace!r}, repository={self._repo!r})"

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

    # -- plain reads, writes and removals ----------------------------------------------

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
        return await self._parts.plain.get_entry(key, shape_for(type_), opts)

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
        await self._parts.plain.set(key, value, self._options(options, overrides, expiration, tags))

    async def remove_async(self, key: str) -> bool:
        """Remove ``key`` (and its in-process copy); returns whether it existed in Redis."""
        self._check_open()
        return await self._parts.plain.remove(key)

    async def expire_async(self, key: str) -> bool:
        """Mark ``key`` expired now: the next call recomputes it, and fail-safe may still serve it stale.

        An entry kept past its expiration (written with fail-safe on) stays, stale;
        any other is removed. Returns whether the entry existed.
        """
        self._check_open()
        return await self._parts.plain.expire(key)

    async def remove_by_tag_async(self, tag: str) -> int:
        """Remove every entry tagged ``tag``, in every process's view; returns how many this call deleted.

        Costs O(entries tagged): no keyspace scan. Every entry written with the
        tag before the call began is gone when it returns; an entry overwritten
        meanwhile without the tag is kept.
        """
        self._check_open()
        return await self._parts.tags.remove(tag)

    async def clear_async(self) -> int:
        """Remove every entry of this namespace (a SCAN of the keyspace: meant for tests and admin tools).

        Returns how many entries were removed.
        """
        self._check_open()
        return await self._parts.plain.clear()

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
