"""What the query caching behavior caches and what it invalidates: ``cacheable`` and ``invalidates``.

A query says how its results are cached; a command or a domain event says
which cached results its success makes stale::

    @cacheable(expiration=timedelta(minutes=10), key="menu:{category}", tags=["menu"])
    @dataclass
    class GetMenuQuery(Query[OperationResult[MenuDto]]):
        category: str

    @invalidates(tags=["menu"])
    @dataclass
    class AddPizzaCommand(Command[OperationResult[PizzaDto]]):
        name: str
        price: Decimal

Both return a policy object that is also a class decorator, so a domain layer
that must not know about caching declares nothing, and the application says
it where it registers the behavior instead::

    builder.services.add_query_caching(
        queries={GetMenuQuery: cacheable(key="menu:{category}", tags=["menu"])},
        invalidations={PizzaPriceChanged: invalidates(tags=["menu"])},
    )

``cacheable`` takes the cache call's options, FusionCache style: an
``expiration``, any field of :class:`~neuroglia.data.redis.CacheOptions` as a
keyword (``fail_safe=True``, ``factory_soft_timeout=0.1``,
``eager_refresh_threshold=0.8``...) or a whole ``options`` object; what it does
not set comes from the behavior's cache. Keys and tags are templates over the
request's attributes (see :mod:`._request_keys`); without ``key``, a query's
key is its class name and all its attributes. A policy is checked when it is
declared: a field that is not an attribute, ``cacheable`` on something other
than a query, ``invalidates`` without anything to invalidate are refused with
:class:`~neuroglia.data.redis.ConfigurationError`.

A declaration applies to subclasses too (an ``invalidates`` on a base event
class covers every event derived from it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final, TypeVar, Unpack

from ..cache import CacheOptions
from ..cache.options import CallOverrides, Duration, check_tags
from ..exceptions import ConfigurationError, InvalidArgumentError
from ._documents import DocumentCodec
from ._framework import Query
from ._request_keys import RequestTemplate, default_key
from ._results import ResultCodec, declared_result

__all__ = [
    "CacheInvalidation",
    "CachedQuery",
    "InvalidatingRequest",
    "QueryCachePolicy",
    "cacheable",
    "declared_invalidation",
    "declared_policy",
    "invalidates",
]

C = TypeVar("C", bound=type)

_POLICY: Final = "__redis_query_cache__"
_INVALIDATION: Final = "__redis_cache_invalidation__"


def _templates(values: Any, what: str) -> tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, str | bytes):
        raise ConfigurationError(f"{what} must be a list of str, got the single {type(values).__name__} {values!r}")
    if not isinstance(values, Iterable):
        raise ConfigurationError(f"{what} must be a list of str, got {type(values).__name__}")
    try:
        return check_tags(list(values), what)
    except InvalidArgumentError as exc:
        raise ConfigurationError(f"{what}: {exc}") from None


def _request_class(value: Any, what: str) -> type:
    if not isinstance(value, type):
        raise ConfigurationError(f"{what} decorates a class (a query, a command or an event), got {value!r}")
    return value


class QueryCachePolicy:
    """How the results of a query are cached; made by :func:`cacheable`, also a class decorator."""

    __slots__ = ("_call", "cache_none", "expiration", "key", "options", "overrides", "tags")

    def __init__(
        self,
        expiration: Duration | None = None,
        *,
        key: str | None = None,
        tags: Iterable[str] = (),
        cache_none: bool = False,
        options: CacheOptions | None = None,
        **overrides: Unpack[CallOverrides],
    ) -> None:
        if key is not None and (not isinstance(key, str) or not key):
            raise ConfigurationError(f"key must be a non-empty format string over the query's attributes, got {key!r}")
        if not isinstance(cache_none, bool):
            raise ConfigurationError(f"cache_none must be True or False, got {cache_none!r}")
        if options is not None and not isinstance(options, CacheOptions):
            raise ConfigurationError(f"options must be a CacheOptions, got {type(options).__name__}")
        call: dict[str, Any] = dict(overrides)
        if expiration is not None:
            call["expiration"] = expiration
        try:  # the values are checked now, against any base; the call applies them to the cache's defaults
            (options or CacheOptions()).with_(**call)
        except InvalidArgumentError as exc:
            raise ConfigurationError(f"cacheable: {exc}") from None
        self.key = key
        self.tags = _templates(tags, "tags")
        self.expiration = expiration
        self.cache_none = cache_none
        self.options = options
        self.overrides: dict[str, Any] = dict(overrides)

    def __call__(self, query_type: C) -> C:
        """Declare this policy on ``query_type`` (checked now); returns the class."""
        CachedQuery(_request_class(query_type, "cacheable"), self, DocumentCodec())
        setattr(query_type, _POLICY, self)
        return query_type

    def __repr__(self) -> str:
        return f"cacheable(key={self.key!r}, tags={list(self.tags)!r}, expiration={self.expiration!r})"


class CacheInvalidation:
    """Which cached results a request's success makes stale; made by :func:`invalidates`, also a class decorator."""

    __slots__ = ("keys", "tags")

    def __init__(self, *, tags: Iterable[str] = (), keys: Iterable[str] = ()) -> None:
        self.tags = _templates(tags, "tags")
        self.keys = _templates(keys, "keys")
        if not self.tags and not self.keys:
            raise ConfigurationError("invalidates needs tags=[...] or keys=[...]: the cached results it makes stale")

    def __call__(self, request_type: C) -> C:
        """Declare this invalidation on ``request_type`` (checked now; added to one it has already, inherited too)."""
        own = getattr(_request_class(request_type, "invalidates"), _INVALIDATION, None)
        merged = self if own is None else CacheInvalidation(tags=(*own.tags, *self.tags), keys=(*own.keys, *self.keys))
        InvalidatingRequest(request_type, merged)
        setattr(request_type, _INVALIDATION, merged)
        return request_type

    def __repr__(self) -> str:
        return f"invalidates(tags={list(self.tags)!r}, keys={list(self.keys)!r})"


def cacheable(
    expiration: Duration | None = None,
    *,
    key: str | None = None,
    tags: Iterable[str] = (),
    cache_none: bool = False,
    options: CacheOptions | None = None,
    **overrides: Unpack[CallOverrides],
) -> QueryCachePolicy:
    """Cache the results of a query: a class decorator, or a policy for ``add_query_caching(queries=...)``.

    ``key`` and ``tags`` are templates over the query's attributes
    (``"menu:{category}"``); without ``key``, the query's class name and all
    its attributes. ``expiration``, ``options`` and the keyword overrides
    (``fail_safe=True``, ``factory_soft_timeout=0.2``, ``lease=None``...) set
    the cache call's :class:`~neuroglia.data.redis.CacheOptions` over the
    behavior's defaults. A result of ``None`` is not cached unless
    ``cache_none``; an ``OperationResult`` that is not a success never is.
    """
    return QueryCachePolicy(expiration, key=key, tags=tags, cache_none=cache_none, options=options, **overrides)


def invalidates(*, tags: Iterable[str] = (), keys: Iterable[str] = ()) -> CacheInvalidation:
    """Remove cached query results when a command succeeds or a domain event is published.

    ``tags`` and ``keys`` are templates over the request's attributes
    (``"menu:{category}"``, matching the queries' own). A class decorator, or
    a value of ``add_query_caching(invalidations=...)``.
    """
    return CacheInvalidation(tags=tags, keys=keys)


# -- policies bound to a request type ---------------------------------------------


class CachedQuery:
    """A :class:`QueryCachePolicy` bound to one query type: its templates parsed, its result codec."""

    __slots__ = ("_dynamic_tags", "_key", "_static_tags", "codec", "policy", "query_type")

    def __init__(self, query_type: type, policy: QueryCachePolicy, documents: DocumentCodec) -> None:
        name = query_type.__name__
        if not issubclass(query_type, Query):
            raise ConfigurationError(
                f"cacheable: {name} is not a query (neuroglia.mediation.Query): only queries are cached; a command "
                "changes state and must run every time (declare the results it makes stale with invalidates)"
            )
        self.query_type = query_type
        self.policy = policy
        self._key = RequestTemplate(policy.key, "key", query_type) if policy.key is not None else None
        templates = [RequestTemplate(tag, "tag", query_type) for tag in policy.tags]
        self._static_tags = tuple(t.text for t in templates if not t.roots)
        self._dynamic_tags = tuple(t for t in templates if t.roots)
        self.codec = ResultCodec(declared_result(query_type), documents)

    def key_for(self, query: Any) -> str:
        """The cache key of ``query`` (within the behavior's cache namespace)."""
        return self._key.render(query) if self._key is not None else default_key(query)

    def tags_for(self, query: Any) -> tuple[str, ...]:
        """The tags stored with the result of ``query``."""
        if not self._dynamic_tags:
            return self._static_tags
        return (*self._static_tags, *(t.render(query) for t in self._dynamic_tags))


class InvalidatingRequest:
    """A :class:`CacheInvalidation` bound to one command or event type: its templates parsed."""

    __slots__ = ("_keys", "_tags", "invalidation", "request_type")

    def __init__(self, request_type: type, invalidation: CacheInvalidation) -> None:
        if issubclass(request_type, Query):
            raise ConfigurationError(
                f"invalidates: {request_type.__name__} is a query; a query reads and changes nothing. Declare "
                "invalidates on the commands and domain events that change what queries return"
            )
        self.request_type = request_type
        self.invalidation = invalidation
        self._keys = tuple(RequestTemplate(key, "key", request_type) for key in invalidation.keys)
        self._tags = tuple(RequestTemplate(tag, "tag", request_type) for tag in invalidation.tags)

    def keys_for(self, request: Any) -> list[str]:
        """The cache keys ``request`` removes."""
        return [t.render(request) for t in self._keys]

    def tags_for(self, request: Any) -> list[str]:
        """The tags ``request`` removes."""
        return [t.render(request) for t in self._tags]


def _declared(request_type: type, registered: Mapping[type, Any], attribute: str) -> Any:
    for klass in request_type.__mro__:
        found = registered.get(klass)
        if found is None:
            found = klass.__dict__.get(attribute)
        if found is not None:
            return found
    return None


def declared_policy(query_type: type, registered: Mapping[type, QueryCachePolicy]) -> QueryCachePolicy | None:
    """The cache policy of ``query_type``: given at registration, or declared on it or a base class."""
    found = _declared(query_type, registered, _POLICY)
    return found if isinstance(found, QueryCachePolicy) else None


def declared_invalidation(request_type: type, registered: Mapping[type, CacheInvalidation]) -> CacheInvalidation | None:
    """The invalidation of ``request_type``: given at registration, or declared on it or a base class."""
    found = _declared(request_type, registered, _INVALIDATION)
    return found if isinstance(found, CacheInvalidation) else None


def check_registered(
    queries: Mapping[type, QueryCachePolicy] | None, invalidations: Mapping[type, CacheInvalidation] | None
) -> tuple[dict[type, QueryCachePolicy], dict[type, CacheInvalidation]]:
    """The registration's own declarations, each checked against its type now."""
    documents = DocumentCodec()
    policies: dict[type, QueryCachePolicy] = {}
    for query_type, policy in _mapping(queries, "queries").items():
        if not isinstance(policy, QueryCachePolicy):
            raise ConfigurationError(
                f"queries: the value for {getattr(query_type, '__name__', query_type)} must be cacheable(...), "
                f"got {policy!r}"
            )
        query_class = _request_class(query_type, "queries")
        if query_class.__dict__.get(_POLICY) is not None:
            raise ConfigurationError(
                f"queries: {query_class.__name__} declares its cache policy already (@cacheable on the class); "
                "declare it in one place"
            )
        CachedQuery(query_class, policy, documents)
        policies[query_class] = policy
    found: dict[type, CacheInvalidation] = {}
    for request_type, invalidation in _mapping(invalidations, "invalidations").items():
        if not isinstance(invalidation, CacheInvalidation):
            raise ConfigurationError(
                f"invalidations: the value for {getattr(request_type, '__name__', request_type)} must be "
                f"invalidates(...), got {invalidation!r}"
            )
        request_class = _request_class(request_type, "invalidations")
        own = getattr(request_class, _INVALIDATION, None)
        if own is not None:
            invalidation = CacheInvalidation(tags=(*own.tags, *invalidation.tags), keys=(*own.keys, *invalidation.keys))
        InvalidatingRequest(request_class, invalidation)
        found[request_class] = invalidation
    return policies, found


def _mapping(value: Any, what: str) -> Mapping[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{what} must be a dict of classes to policies, got {type(value).__name__}")
    return value
