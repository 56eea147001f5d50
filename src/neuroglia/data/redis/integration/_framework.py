"""The one place the adapters import the Neuroglia framework from.

Every adapter module imports the framework's names from here, so that a
missing ``neuroglia`` extra is reported once, the same way, as a
:class:`~neuroglia.data.redis.integration.FrameworkNotInstalledError` that
says what to install, instead of a bare ``ModuleNotFoundError`` from deep
inside an import.
"""

from __future__ import annotations

from .availability import FrameworkNotInstalledError

try:
    from neuroglia.coordination import CoordinationBackend, LeaderElection
    from neuroglia.core import OperationResult
    from neuroglia.data.abstractions import AggregateRoot, AggregateState, TEntity, TKey
    from neuroglia.data.exceptions import DataAccessException, EntityNotFoundException, OptimisticConcurrencyException
    from neuroglia.data.infrastructure.abstractions import Repository
    from neuroglia.dependency_injection import ServiceCollection, ServiceDescriptor, ServiceProviderBase
    from neuroglia.hosting.abstractions import HostedService
    from neuroglia.mediation.mediator import Command, Mediator, Query, Request
    from neuroglia.mediation.pipeline_behavior import PipelineBehavior
except ImportError as exc:  # the extra is missing (or a framework too old to have these names)
    raise FrameworkNotInstalledError(
        "the Redis adapters of the Neuroglia framework (RedisEntityRepository, LeaseCoordinationBackend, "
        "QueryCachingBehavior) need "
        "the framework: pip install 'neuroglia-redis[neuroglia]' (neuroglia-python >= 0.9.4); "
        f"importing it failed: {exc}"
    ) from exc

__all__ = [
    "AggregateRoot",
    "AggregateState",
    "Command",
    "CoordinationBackend",
    "DataAccessException",
    "EntityNotFoundException",
    "HostedService",
    "LeaderElection",
    "Mediator",
    "OperationResult",
    "OptimisticConcurrencyException",
    "PipelineBehavior",
    "Query",
    "Repository",
    "Request",
    "ServiceCollection",
    "ServiceDescriptor",
    "ServiceProviderBase",
    "TEntity",
    "TKey",
]
