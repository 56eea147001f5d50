"""The errors the cache layer adds to the library's tree.

::

    CacheException
    ├── FactoryTimeoutError   the factory did not finish within the hard timeout
    │                         and no stale value could be served (also a TimeoutError)
    └── CacheClosedError      the cache was closed; no new work is accepted

A factory's own exception is never wrapped: when no stale value can be served
the caller gets exactly what the factory raised.
"""

from __future__ import annotations

from ._library import CacheException

__all__ = ["CacheClosedError", "FactoryTimeoutError"]


class FactoryTimeoutError(CacheException, TimeoutError):
    """The factory exceeded ``factory_hard_timeout`` and there was no stale value to serve.

    ``key`` is the cache key; ``timeout`` the hard timeout in seconds.
    """

    def __init__(self, key: str, timeout: float) -> None:
        super().__init__(f"the factory of cache key {key!r} did not finish within {timeout:g}s (factory_hard_timeout)")
        self.key = key
        self.timeout = timeout


class CacheClosedError(CacheException):
    """The :class:`~neuroglia.data.redis.RedisCache` was closed."""
