"""The cache layer: :class:`RedisCache`, get-or-set over a repository.

What a FusionCache user expects, on Redis: one factory run per key across
processes (local single-flight plus a distributed lease whose waiters are
notified), fail-safe with stale values, soft and hard factory timeouts, eager
refresh (threshold or XFetch), tags removed in O(entries tagged), TTL jitter,
metrics and traces, and a decorator deriving keys from arguments.

Modules (each small, each with its own docstring):

``options``    :class:`CacheOptions`: per-instance defaults, per-call overrides
``entry``      how an entry is stored (hash v/m/t); :class:`CacheResult`
``keyspace``   the names of the cache's keys in Redis
``scripts``    the Lua scripts of ``lua/``
``flight``     single-flight and the cache's background tasks
``lease``      the distributed lease and its notified waiters
``tags``       tag invalidation in batches
``local``      the in-process level (:class:`LocalStore`, :class:`BoundedLocalStore`)
``near``       the coherent first level on the repository's near cache (:class:`NearCacheLocalStore`)
``factory``    :class:`FactoryContext`: what a factory may tell the cache
``shape``      rebuilding typed values from what the serializer decoded
``metrics``    figures (:class:`CacheStatistics`) and OpenTelemetry spans
``decorator``  ``@cache.cached(...)``
``framework``  the Neuroglia framework's ``OperationResult`` as a cached value
``facade``     :class:`RedisCache`

See ``docs/caching.md``.
"""

from .decorator import BoundCachedFunction, CachedFunction
from .entry import CacheResult
from .errors import CacheClosedError, FactoryTimeoutError
from .facade import RedisCache
from .factory import FactoryContext
from .local import BoundedLocalStore, LocalStore
from .metrics import CacheStatistics
from .near import NearCacheLocalStore
from .options import CacheOptions

__all__ = [
    "BoundCachedFunction",
    "BoundedLocalStore",
    "CacheClosedError",
    "CacheOptions",
    "CacheResult",
    "CacheStatistics",
    "CachedFunction",
    "FactoryContext",
    "FactoryTimeoutError",
    "LocalStore",
    "NearCacheLocalStore",
    "RedisCache",
]
