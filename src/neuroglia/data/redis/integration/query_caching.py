"""QueryCachingBehavior: the mediator's pipeline behavior that answers cacheable queries from Redis.

The framework's mediator runs every registered ``PipelineBehavior`` around
each request it executes (commands and queries) and each notification it
publishes (domain events). This behavior:

* answers a query declared :func:`~.query_policies.cacheable` through
  :meth:`RedisCache.get_or_set_async <neuroglia.data.redis.RedisCache.get_or_set_async>`:
  a hit never reaches the handler; concurrent misses of one key run the
  handler once per process, and once across processes through the cache's
  lease (stampede protection); fail-safe, timeouts and eager refresh are the
  cache's options;
* caches only what may be served again: a result of ``None`` (unless
  ``cache_none``) and an ``OperationResult`` that is not a success are
  returned and not stored, and an exception of the handler stores nothing;
* removes the entries a command declared :func:`~.query_policies.invalidates`
  makes stale once it has succeeded (no exception, no failed
  ``OperationResult``), and those a domain event makes stale once its
  handlers have run (the event happened, whatever they did);
* never fails a query because of the cache: when Redis cannot be read the
  handler runs (the cache's own rule), and when the cache cannot serve at all
  (closed, a stored value that no longer fits the result type) the handler
  is called directly. A failed invalidation is logged and counted
  (``rediscache_invalidation_failures_total{cache, request}``); the command's
  result is returned all the same, and the stale entries expire with their
  expiration.

Any other request passes through at the cost of one dict lookup.

Registered with one call (see :func:`add_query_caching`)::

    builder.services.add_query_caching(expiration=timedelta(minutes=5))
    QueryCachingBehavior.configure(builder, expiration=timedelta(minutes=5))   # the framework's style

Metrics and traces are the cache's (``rediscache_*`` with ``cache=<namespace>``,
spans ``cache.factory``), exported with the repository's when its config has
``enable_metrics=True``.
"""

# No ``from __future__ import annotations``: the framework reads the return
# annotations of factories (``inspect.signature``) and needs real classes.

import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, Unpack

from ..cache import CacheOptions, FactoryContext, FactoryTimeoutError, RedisCache
from ..cache.options import CacheOptionsOverrides
from ..exceptions import CacheException, ConfigurationError, InvalidArgumentError, SerializationError
from ..repository import RedisRepository
from ._documents import DocumentCodec
from ._framework import (
    HostedService,
    PipelineBehavior,
    Query,
    Request,
    ServiceCollection,
    ServiceProviderBase,
)
from ._results import is_failure
from .query_policies import (
    CachedQuery,
    CacheInvalidation,
    InvalidatingRequest,
    QueryCachePolicy,
    check_registered,
    declared_invalidation,
    declared_policy,
)

__all__ = ["QueryCacheLifetime", "QueryCachingBehavior", "add_query_caching"]

_log = logging.getLogger("neuroglia.data.redis.integration")

DEFAULT_NAMESPACE: Final = "queries"
_INVALIDATION_FAILURES: Final = "rediscache_invalidation_failures_total"


class _HandlerFailed(Exception):
    """The handler's own exception, carried through the cache so that it is told apart from the cache's."""

    def __init__(self, error: Exception) -> None:
        super().__init__(repr(error))
        self.error = error


class _Uncached:
    """A result returned to the callers of one flight without being stored (shared as it is)."""

    __slots__ = ("result",)

    def __init__(self, result: Any) -> None:
        self.result = result


class _Plan:
    """What the behavior does with one request type: cache it, invalidate after it, or nothing."""

    __slots__ = ("invalidation", "notification", "query")

    def __init__(self, query: CachedQuery | None, invalidation: InvalidatingRequest | None, notification: bool) -> None:
        self.query = query
        self.invalidation = invalidation
        self.notification = notification


_NOTHING: Final = _Plan(None, None, False)


class QueryCachingBehavior(PipelineBehavior[Any, Any]):
    """Answers cacheable queries from a ``RedisCache``; invalidates after commands and events.

    ``cache`` is a :class:`~neuroglia.data.redis.RedisCache` (used as it is,
    never closed here) or a :class:`~neuroglia.data.redis.RedisRepository`, on
    which the behavior creates its own cache in ``namespace`` with
    ``options`` and the keyword ``defaults`` (any
    :class:`~neuroglia.data.redis.CacheOptions` field: ``expiration``,
    ``fail_safe``...). ``queries`` and ``invalidations`` declare policies for
    classes that do not carry them (see :mod:`.query_policies`).

    In an application, register it with :func:`add_query_caching` (or
    :meth:`configure`) rather than by hand.
    """

    def __init__(
        self,
        cache: RedisCache | RedisRepository,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        options: CacheOptions | None = None,
        queries: Mapping[type, QueryCachePolicy] | None = None,
        invalidations: Mapping[type, CacheInvalidation] | None = None,
        **defaults: Unpack[CacheOptionsOverrides],
    ) -> None:
        self._owned = False
        self._make_cache: Callable[[], RedisCache] | None = None
        if isinstance(cache, RedisCache):
            if options is not None or defaults or namespace != DEFAULT_NAMESPACE:
                raise ConfigurationError(
                    "namespace, options and cache defaults configure a cache the behavior creates; the RedisCache "
                    "given has its own"
                )
            self._cache: RedisCache | None = cache
        elif isinstance(cache, RedisRepository):
            repository = cache
            _check_cache_settings(namespace, options, defaults)

            def make() -> RedisCache:
                return RedisCache(repository, namespace, options=options, **defaults)

            self._make_cache = make
            self._cache = None
            self._owned = True
        else:
            raise ConfigurationError(f"cache: expected a RedisCache or a RedisRepository, got {type(cache).__name__}")
        self._queries, self._invalidations = check_registered(queries, invalidations)
        self._documents = DocumentCodec()
        self._plans: dict[type, _Plan] = {}

    # -- what it is --------------------------------------------------------------------

    @property
    def cache(self) -> RedisCache:
        """The cache queries are answered from (created on first use when the behavior owns it)."""
        cache = self._cache
        if cache is None:
            assert self._make_cache is not None
            cache = self._cache = self._make_cache()
        return cache

    def key_for(self, query: Any) -> str:
        """The cache key of ``query`` (in the cache's namespace); ``ConfigurationError`` if it is not cacheable."""
        plan = self._plan(type(query))
        if plan.query is None:
            raise ConfigurationError(f"{type(query).__name__} is not declared cacheable")
        return plan.query.key_for(query)

    async def close(self) -> None:
        """Close the cache the behavior created (a later query creates a new one); a cache given is left open."""
        cache, self._cache = (self._cache, None) if self._owned else (None, self._cache)
        if cache is not None:
            await cache.close()

    def __repr__(self) -> str:
        where = self._cache.namespace if self._cache is not None else "(not created yet)"
        return f"QueryCachingBehavior(cache={where})"

    # -- the pipeline ------------------------------------------------------------------

    async def handle_async(self, request: Any, next_handler: Callable[[], Awaitable[Any]]) -> Any:
        """Serve a cacheable query from the cache; invalidate after an invalidating request; else pass it on."""
        plan = self._plans.get(type(request))
        if plan is None:
            plan = self._plan(type(request))
        if plan is _NOTHING:
            return await next_handler()
        if plan.query is not None:
            return await self._query(request, plan.query, next_handler)
        assert plan.invalidation is not None
        if plan.notification:
            try:
                result = await next_handler()
            except Exception:
                await self._invalidate(request, plan.invalidation)
                raise
            await self._invalidate(request, plan.invalidation)
            return result
        result = await next_handler()
        if not is_failure(result):
            await self._invalidate(request, plan.invalidation)
        return result

    async def invalidate_async(self, request: Any) -> None:
        """Remove what ``request`` (a command or an event) is declared to make stale, as after its success."""
        plan = self._plan(type(request))
        if plan.invalidation is None:
            raise ConfigurationError(f"{type(request).__name__} declares no invalidation (invalidates)")
        await self._invalidate(request, plan.invalidation)

    def _plan(self, request_type: type) -> _Plan:
        plan = self._plans.get(request_type)
        if plan is not None:
            return plan
        plan = _NOTHING
        if issubclass(request_type, Query):
            policy = declared_policy(request_type, self._queries)
            if policy is not None:
                plan = _Plan(CachedQuery(request_type, policy, self._documents), None, False)
        else:
            invalidation = declared_invalidation(request_type, self._invalidations)
            if invalidation is not None:
                # A request (a command) is executed; anything else reaches the behavior through publish_async.
                notification = not issubclass(request_type, Request)
                plan = _Plan(None, InvalidatingRequest(request_type, invalidation), notification)
        self._plans[request_type] = plan
        return plan

    async def _query(self, query: Any, cached: CachedQuery, next_handler: Callable[[], Awaitable[Any]]) -> Any:
        key = cached.key_for(query)
        tags = cached.tags_for(query)
        policy = cached.policy
        codec = cached.codec
        produced: list[Any] = []  # the handler's own result, when this call ran it

        async def factory(ctx: FactoryContext) -> Any:
            try:
                result = await next_handler()
            except Exception as error:
                raise _HandlerFailed(error) from error
            produced.append(result)
            if (result is None and not policy.cache_none) or is_failure(result):
                ctx.do_not_cache = True
                return _Uncached(result)
            try:
                return codec.dump(result)
            except SerializationError as exc:
                _log.warning("%s: its result is returned but not cached: %s", type(query).__name__, exc)
                ctx.do_not_cache = True
                return _Uncached(result)

        try:
            value = await self.cache.get_or_set_async(
                key, factory, policy.expiration, tags=tags, options=policy.options, **policy.overrides
            )
        except _HandlerFailed as failed:
            raise failed.error.with_traceback(failed.error.__traceback__) from None
        except (FactoryTimeoutError, InvalidArgumentError):
            raise  # the timeout the query asked for; a key or tag that cannot be built
        except CacheException as exc:
            # The cache could not serve at all (closed, or failing where get-or-set does not fall back).
            _log.warning("%s: answered without the cache (%s: %s)", type(query).__name__, type(exc).__name__, exc)
            if produced:
                return produced[0]
            return await next_handler()
        if produced:
            return produced[0]
        if isinstance(value, _Uncached):
            return value.result
        try:
            return codec.load(value)
        except SerializationError as exc:
            # A value stored by an older shape of the result type: answer, and let the next call replace it.
            _log.warning(
                "%s: the cached result under %r cannot be rebuilt (%s); the handler answers",
                type(query).__name__,
                key,
                exc,
            )
            with contextlib.suppress(CacheException):
                await self.cache.remove_async(key)
            return await next_handler()

    async def _invalidate(self, request: Any, invalidating: InvalidatingRequest) -> None:
        """Remove the keys and tags ``request`` declares; never raises (a failure is logged and counted)."""
        name = type(request).__name__
        try:
            keys = invalidating.keys_for(request)
            tags = invalidating.tags_for(request)
        except InvalidArgumentError as exc:
            self._invalidation_failed(name, f"its keys or tags cannot be built: {exc}")
            return
        cache = self.cache
        for key in keys:
            try:
                await cache.remove_async(key)
            except CacheException as exc:
                self._invalidation_failed(name, f"key {key!r}: {type(exc).__name__}: {exc}")
        for tag in tags:
            try:
                await cache.remove_by_tag_async(tag)
            except CacheException as exc:
                self._invalidation_failed(name, f"tag {tag!r}: {type(exc).__name__}: {exc}")

    def _invalidation_failed(self, request_name: str, why: str) -> None:
        _log.error(
            "%s succeeded, but the cached query results it makes stale could not be removed (%s); they are "
            "served until they expire",
            request_name,
            why,
        )
        cache = self.cache
        cache.metrics.increment_counter(_INVALIDATION_FAILURES, 1, {"cache": cache.namespace, "request": request_name})

    # -- registration ------------------------------------------------------------------

    @staticmethod
    def configure(
        builder: Any,
        *,
        cache: RedisCache | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        options: CacheOptions | None = None,
        queries: Mapping[type, QueryCachePolicy] | None = None,
        invalidations: Mapping[type, CacheInvalidation] | None = None,
        connection_string_name: str = "redis",
        replace: bool = False,
        **defaults: Unpack[CacheOptionsOverrides],
    ) -> Any:
        """Register the behavior in an application builder; returns the builder.

        The framework's way (as ``TracingPipelineBehavior.configure``). When
        no Redis repository is registered yet, registers one first from the
        builder settings' ``connection_strings[connection_string_name]``
        (else the ``REDIS_*`` environment variables). See
        :func:`add_query_caching` for the options.
        """
        services = builder.services
        if cache is None and not any(d.service_type is RedisRepository for d in services):
            RedisRepository.configure(builder, connection_string_name=connection_string_name)
        add_query_caching(
            services,
            cache=cache,
            namespace=namespace,
            options=options,
            queries=queries,
            invalidations=invalidations,
            replace=replace,
            **defaults,
        )
        return builder


class QueryCacheLifetime:
    """A hosted service that closes the behavior's own cache when the application stops."""

    def __init__(self, behavior: QueryCachingBehavior) -> None:
        self.behavior = behavior

    async def start_async(self) -> None:
        """Nothing to do: the cache is created on first use."""

    async def stop_async(self) -> None:
        """Cancel the cache's background work (flights, refreshes); a later query creates a new cache."""
        await self.behavior.close()


def _check_cache_settings(namespace: Any, options: Any, defaults: Mapping[str, Any]) -> None:
    if not isinstance(namespace, str) or not namespace or "#" in namespace:
        raise ConfigurationError(f"namespace: expected a non-empty str without '#', got {namespace!r}")
    if options is not None and not isinstance(options, CacheOptions):
        raise ConfigurationError(f"options: expected a CacheOptions, got {type(options).__name__}")
    try:
        (options or CacheOptions()).with_(**defaults)
    except InvalidArgumentError as exc:
        raise ConfigurationError(f"query caching defaults: {exc}") from None


def _marked(descriptor: Any) -> bool:
    return getattr(descriptor.implementation_factory, "_query_caching", False) is True


def add_query_caching(
    services: Any,
    *,
    cache: RedisCache | None = None,
    namespace: str = DEFAULT_NAMESPACE,
    options: CacheOptions | None = None,
    queries: Mapping[type, QueryCachePolicy] | None = None,
    invalidations: Mapping[type, CacheInvalidation] | None = None,
    replace: bool = False,
    **defaults: Unpack[CacheOptionsOverrides],
) -> Any:
    """Register the :class:`QueryCachingBehavior` as a pipeline behavior of the mediator; returns ``services``.

    One singleton, resolvable as ``QueryCachingBehavior`` and run by the
    mediator as a ``PipelineBehavior`` (for every request and published
    event). By default it creates its own :class:`~neuroglia.data.redis.RedisCache`
    on the shared repository (call ``add_redis_repository`` first) in
    ``namespace``, with ``options`` and the keyword ``defaults``
    (``expiration=timedelta(minutes=5)``, ``fail_safe=True``...), closed when the
    application stops; ``cache=`` uses one of the application's instead.
    ``queries`` and ``invalidations`` declare policies for classes that do not
    carry ``@cacheable`` / ``@invalidates``.

    Every refusal is a :class:`~neuroglia.data.redis.ConfigurationError` raised
    here, never at the first request, and leaves the collection as it was: no
    shared repository, bad cache settings, a policy that does not fit its
    class, a second registration (``replace=True`` swaps it).
    """
    if not isinstance(services, ServiceCollection):
        raise ConfigurationError(
            f"services: expected the framework's ServiceCollection (builder.services), got {type(services).__name__}"
        )
    if cache is not None:
        if not isinstance(cache, RedisCache):
            raise ConfigurationError(f"cache: expected a RedisCache, got {type(cache).__name__}")
        if options is not None or defaults or namespace != DEFAULT_NAMESPACE:
            raise ConfigurationError(
                "namespace, options and cache defaults configure the cache add_query_caching creates; the RedisCache "
                "given as cache= has its own"
            )
    else:
        if not any(d.service_type is RedisRepository for d in services):
            raise ConfigurationError(
                "add_query_caching needs the shared Redis repository: call "
                "builder.services.add_redis_repository(config) (or RedisRepository.configure(builder)) first, "
                "or pass cache=RedisCache(...)"
            )
        _check_cache_settings(namespace, options, defaults)
    declared_queries, declared_invalidations = check_registered(queries, invalidations)

    ours = [d for d in services if d.service_type is QueryCachingBehavior or _marked(d)]
    if ours and not replace:
        raise ConfigurationError(
            "QueryCachingBehavior is already registered in this ServiceCollection; a second one would cache every "
            "query twice. Pass replace=True to swap it."
        )
    behaviors: list[QueryCachingBehavior] = []

    def create_behavior(provider: ServiceProviderBase) -> QueryCachingBehavior:
        # One behavior per registration, whichever way it is resolved first: the
        # single-flight that protects against stampedes lives in its one cache.
        if not behaviors:
            source: RedisCache | RedisRepository = (
                cache if cache is not None else provider.get_required_service(RedisRepository)
            )
            extra: dict[str, Any] = (
                {} if cache is not None else {"namespace": namespace, "options": options, **defaults}
            )
            behaviors.append(
                QueryCachingBehavior(source, queries=declared_queries, invalidations=declared_invalidations, **extra)
            )
        return behaviors[0]

    def create_pipeline_behavior(provider: ServiceProviderBase) -> QueryCachingBehavior:
        return create_behavior(provider)

    def create_lifetime(provider: ServiceProviderBase) -> QueryCacheLifetime:
        return QueryCacheLifetime(create_behavior(provider))

    create_pipeline_behavior._query_caching = True  # type: ignore[attr-defined]
    create_lifetime._query_caching = True  # type: ignore[attr-defined]
    services[:] = [d for d in services if not any(d is o for o in ours)]
    services.add_singleton(QueryCachingBehavior, implementation_factory=create_behavior)
    services.add_singleton(PipelineBehavior, implementation_factory=create_pipeline_behavior)
    if cache is None:
        services.add_singleton(HostedService, implementation_factory=create_lifetime)
    _log.debug("registered QueryCachingBehavior (cache namespace %r)", namespace if cache is None else cache.namespace)
    return services
