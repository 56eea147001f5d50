"""Integration with the Neuroglia framework (``neuroglia-python``): registration and adapters.

Service registration (:mod:`.hosting`): importing this package (which
importing :mod:`neuroglia.data.redis` does) attaches ``add_redis_repository``
and ``add_redis_hash_repository`` to the framework's ``ServiceCollection``
when the framework is installed, as the framework's page requires; it is the
library's only import-time side effect. :class:`RedisHealthCheck` checks the
shared repository for the framework's observability endpoints.

A service built on the framework meets persistence and coordination through
the framework's interfaces; the adapters implement them on the library:

``RedisEntityRepository[TEntity, TKey]``
    the framework's ``Repository`` (``contains_async``, ``get_async``,
    ``add_async``, ``update_async``, ``remove_async``) on Redis: entities and
    aggregate roots stored through the repository's serialization strategy
    and versioned envelope, domain events published through the mediator
    after each successful write, optimistic concurrency on ``state_version``
    checked atomically by Lua scripts, optional expiration, listing through
    an index kept by the same scripts. Registered like the framework's Mongo
    repository: ``RedisEntityRepository.configure(builder, Order, str)``.
``LeaseCoordinationBackend``
    the framework's ``CoordinationBackend`` (what ``LeaderElection`` runs on)
    on :class:`~neuroglia.data.redis.DistributedLock`: owner-checked
    renewal through the repository's one execute path, a fencing token per
    lease, loss detection; :class:`Leadership` tells a leader whether it may
    still act and fences its writes.
``QueryCachingBehavior``
    the mediator's ``PipelineBehavior`` that answers the queries declared
    :func:`cacheable` from a :class:`~neuroglia.data.redis.RedisCache`
    (stampede protection, fail-safe, tags) and removes what the commands and
    domain events declared :func:`invalidates` make stale; failures are never
    cached, and a cache outage never fails a query. Registered with
    ``builder.services.add_query_caching(...)`` or
    ``QueryCachingBehavior.configure(builder, ...)``.
``RedisRepositoryHealthCheck``
    another name for :class:`neuroglia.data.redis.RedisHealthCheck`, the
    library's health check, which checks the application's shared repository
    and should be preferred over the framework's
    ``neuroglia.observability.RedisHealthCheck(redis_url)`` (a fresh client
    per check); the distinct name lets both be imported side by side.

The framework is an optional dependency (the ``neuroglia`` extra): this
package imports without it, and the names above are loaded on first use.
Using one without the framework raises :class:`FrameworkNotInstalledError`,
which says what to install. With the framework installed, importing the
package also adds ``add_redis_entity_repository``, ``add_redis_coordination``
and ``add_query_caching`` to the framework's ``ServiceCollection``, next to
``add_redis_repository``.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from .availability import FrameworkNotInstalledError
from .hosting import (
    RedisHealthCheck,
    RedisRegistration,
    RedisRepositoryLifetime,
    add_redis_hash_repository,
    add_redis_repository,
)

if TYPE_CHECKING:
    from .coordination import Leadership, LeaseCoordinationBackend
    from .entity_repository import RedisEntityRepository
    from .errors import EntityAlreadyExistsError, EntityConcurrencyError, EntityNotFoundError
    from .query_caching import QueryCachingBehavior, add_query_caching
    from .query_policies import CacheInvalidation, QueryCachePolicy, cacheable, invalidates
    from .registration import add_redis_coordination, add_redis_entity_repository

__all__ = [
    "CacheInvalidation",
    "EntityAlreadyExistsError",
    "EntityConcurrencyError",
    "EntityNotFoundError",
    "FrameworkNotInstalledError",
    "Leadership",
    "LeaseCoordinationBackend",
    "QueryCachePolicy",
    "QueryCachingBehavior",
    "RedisEntityRepository",
    "RedisHealthCheck",
    "RedisRegistration",
    "RedisRepositoryHealthCheck",
    "RedisRepositoryLifetime",
    "add_query_caching",
    "add_redis_coordination",
    "add_redis_entity_repository",
    "add_redis_hash_repository",
    "add_redis_repository",
    "cacheable",
    "framework_available",
    "invalidates",
]

RedisRepositoryHealthCheck = RedisHealthCheck
"""The library's :class:`RedisHealthCheck` under a name distinct from the framework's own
``neuroglia.observability.RedisHealthCheck``, for modules that import both."""

_log = logging.getLogger("neuroglia.data.redis.integration")


# Where each public name lives; loaded on first access (PEP 562), so that this
# package, and the library with it, import without the framework.
_LAZY: dict[str, str] = {
    "RedisEntityRepository": ".entity_repository",
    "LeaseCoordinationBackend": ".coordination",
    "Leadership": ".coordination",
    "EntityAlreadyExistsError": ".errors",
    "EntityConcurrencyError": ".errors",
    "EntityNotFoundError": ".errors",
    "add_redis_entity_repository": ".registration",
    "add_redis_coordination": ".registration",
    "QueryCachingBehavior": ".query_caching",
    "add_query_caching": ".query_caching",
    "QueryCachePolicy": ".query_policies",
    "CacheInvalidation": ".query_policies",
    "cacheable": ".query_policies",
    "invalidates": ".query_policies",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


# -- the framework's ServiceCollection gets the registration methods -----------


def _add_redis_entity_repository(services: Any, entity_type: type[Any], key_type: type[Any], **options: Any) -> Any:
    """Register ``RedisEntityRepository[entity_type, key_type]`` (scoped); see :mod:`.registration`."""
    from .registration import add_redis_entity_repository

    return add_redis_entity_repository(services, entity_type, key_type, **options)


def _add_redis_coordination(services: Any, **options: Any) -> Any:
    """Register a :class:`LeaseCoordinationBackend` as the ``CoordinationBackend``; see :mod:`.registration`."""
    from .registration import add_redis_coordination

    return add_redis_coordination(services, **options)


def _add_query_caching(services: Any, **options: Any) -> Any:
    """Register the :class:`QueryCachingBehavior` as a pipeline behavior of the mediator; see :mod:`.query_caching`."""
    from .query_caching import add_query_caching

    return add_query_caching(services, **options)


_add_redis_entity_repository.__name__ = "add_redis_entity_repository"
_add_redis_coordination.__name__ = "add_redis_coordination"
_add_query_caching.__name__ = "add_query_caching"


def _attach() -> bool:
    """Add the ``add_*`` methods to the framework's ``ServiceCollection``, if it is installed.

    The methods import the adapters only when called, so this costs one
    attribute assignment each (the framework's package is already imported
    by then, being the parent of ``neuroglia.data.redis``).
    """
    try:
        di = importlib.import_module("neuroglia.dependency_injection")
    except ImportError:
        return False
    collection = getattr(di, "ServiceCollection", None)
    if collection is None:  # pragma: no cover - a framework without one
        return False
    for function in (_add_redis_entity_repository, _add_redis_coordination, _add_query_caching):
        current = getattr(collection, function.__name__, None)
        if current is None or getattr(current, "__module__", None) == __name__:
            setattr(collection, function.__name__, function)
        else:  # pragma: no cover - a future framework with its own method keeps it
            _log.debug("ServiceCollection.%s exists already; not replaced", function.__name__)
    return True


framework_available: bool = _attach()
"""Whether the Neuroglia framework was found (and its ``ServiceCollection`` extended)."""
