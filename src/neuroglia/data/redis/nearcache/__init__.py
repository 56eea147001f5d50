"""The near cache: a bounded in-process level in front of Redis, kept coherent by Redis itself.

Turned on by ``RedisConfig(near_cache=True)`` (or
:class:`~neuroglia.data.redis.NearCacheOptions`); the repository's executor
consults it for reads (``get_async``, ``get_many_async``, ``hget_async``,
``hmget_async``, ``hgetall_async``, ``smembers_async``,
``get_object_async``) and :class:`~neuroglia.data.redis.RedisCache` uses it
as its coherent first level. Between the transport (whose push messages and
session hooks it needs) and the executor (which calls it).

Modules:

``store``     the entries: bounds (count, bytes, age), per-key state, what a read may store
``near``      :class:`NearCache`: what the executor asks (get, fetch, wrote), figures
``tracking``  ``CLIENT TRACKING`` on the transport, flushes, the heartbeat

See ``docs/caching.md``.
"""

from .near import Fetch, NearCache, NearCacheStatistics, RemovalListener
from .store import MISS, Entry, NearCacheStore
from .tracking import Tracker, tracking_commands

__all__ = [
    "MISS",
    "Entry",
    "Fetch",
    "NearCache",
    "NearCacheStatistics",
    "NearCacheStore",
    "RemovalListener",
    "Tracker",
    "tracking_commands",
]
