"""The cache layer: :class:`RedisCache`, get-or-set over a repository.

What a FusionCache user expects, on Redis: one factory run per key across
processes (local single-flight plus a distributed lease whose waiters are
notified), fail-safe with stale values, soft and hard factory timeouts, eager
refresh (threshold or XFetch), tags removed in O(entries tagged), TTL jitter,
metrics and traces, and a decorator deriving keys from arguments.

Modules (each small, each with its own docstring):

``facade``       :class:`RedisCache`: checks and resolves each call, hands it to a part
``parts``        the parts of one cache, wired together
``getorset``     the get-or-set path: hits, flights, fail-safe, soft and hard timeouts
``compute``      computing a missing key under the lease; storing its result
``refresh``      early refresh in the background (threshold or XFetch)
``plain``        plain get, set, remove, expire and clear
``tags``         tag invalidation in batches
``first_level``  which in-process store, and what it keeps
``local``        the in-process level (:class:`LocalStore`, :class:`BoundedLocalStore`)
``near``         the coherent first level on the repository's near cache (:class:`NearCacheLocalStore`)
``store``        the cache's entries and leases in Redis
``lease``        the distributed lease and its notified waiters
``flight``       single-flight and the cache's background tasks
``timing``       the cache's clock and the lifetime of an entry
``results``      what a call returns (:class:`CacheResult` objects), counted
``resolve``      the options of one call
``options``      :class:`CacheOptions`: per-instance defaults, per-call overrides
``entry``        how an entry is stored (hash v/m/t); :class:`CacheResult`
``keyspace``     the names of the cache's keys in Redis
``scripts``      the Lua scripts of ``lua/``
``factory``      :class:`FactoryContext`: what a factory may tell the cache
``shape``        rebuilding typed values from what the serializer decoded
``metrics``      figures (:class:`CacheStatistics`) and OpenTelemetry spans
``decorator``    ``@cache.cached(...)``
``templates``    key and tag format strings, parsed once (also the query caching behavior's)
``framework``    the Neuroglia framework's ``OperationResult`` as a cached value

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
