"""Registering the adapters in a Neuroglia application, the framework's way.

Each adapter registers on top of the one shared ``RedisRepository`` that
``add_redis_repository`` (or ``RedisRepository.configure``) put in the
collection, and resolves it from the container when built:

``add_redis_entity_repository(services, Order, str, ...)``
    scoped ``RedisEntityRepository[Order, str]``, ``Repository[Order, str]``
    and the optional ``domain_repository_type``, one instance per scope
    (the lifetime the framework gives its Mongo repositories), built with
    the ``Mediator`` when one is registered.
``add_redis_coordination(services)``
    a singleton :class:`LeaseCoordinationBackend`, also resolved as the
    framework's ``CoordinationBackend``.

Both are attached to the framework's ``ServiceCollection`` as methods
(``builder.services.add_redis_entity_repository(Order, str)``), next to
``add_redis_repository``; ``RedisEntityRepository.configure(builder, ...)``
and ``LeaseCoordinationBackend.configure(builder)`` are the
``MotorRepository.configure`` style. Every refusal is a
:class:`~neuroglia.data.redis.ConfigurationError` raised at registration,
never at the first request, and leaves the collection as it was.
"""

# No ``from __future__ import annotations``: the framework reads the return
# annotations of factories (``inspect.signature``) and needs real classes.

import logging
from typing import Any, cast

from ..exceptions import ConfigurationError
from ..repository import RedisRepository
from ..serialization import SerializationStrategy, resolve_serializer
from ._framework import CoordinationBackend, Mediator, Repository, ServiceCollection, ServiceProviderBase
from .coordination import LeaseCoordinationBackend
from .entity_repository import AUTO_VERSION, EntityModel, Expiration, RedisEntityRepository, _AutoVersion

__all__ = [
    "add_redis_coordination",
    "add_redis_entity_repository",
]

_log = logging.getLogger("neuroglia.data.redis.integration")


def _collection(services: Any, what: str) -> ServiceCollection:
    if not isinstance(services, ServiceCollection):
        raise ConfigurationError(
            f"{what}: expected the framework's ServiceCollection (builder.services), got {type(services).__name__}"
        )
    return services


def _require_redis(services: ServiceCollection, what: str) -> None:
    if not any(d.service_type is RedisRepository for d in services):
        raise ConfigurationError(
            f"{what} needs the shared Redis repository: call builder.services.add_redis_repository(config) "
            "(or RedisRepository.configure(builder)) first"
        )


def _name(service_type: Any) -> str:
    return str(getattr(service_type, "__name__", None) or service_type)


def _claim(services: ServiceCollection, service_types: list[Any], replace: bool) -> list[Any]:
    """The collection without the registrations of ``service_types`` (refused unless ``replace``)."""
    taken = [d for d in services if any(d.service_type == t for t in service_types)]
    if taken and not replace:
        raise ConfigurationError(
            f"{_name(taken[0].service_type)} is already registered in this ServiceCollection; the framework "
            "resolves the first registration of a type, so a second one would be silently ignored. "
            "Pass replace=True to swap it."
        )
    return [d for d in services if not any(d is t for t in taken)]


def _serializer(value: Any) -> SerializationStrategy | None:
    if value is None:
        return None
    try:
        return resolve_serializer(value)
    except ValueError as exc:
        raise ConfigurationError(f"serializer: {exc}") from None


def add_redis_entity_repository(
    services: Any,
    entity_type: type[Any],
    key_type: type[Any],
    *,
    key_prefix: str | None = None,
    expiration: Expiration | None = None,
    version_field: str | _AutoVersion | None = AUTO_VERSION,
    serializer: SerializationStrategy | str | None = None,
    domain_repository_type: type[Any] | None = None,
    implementation_type: type[Any] | None = None,
    publish_events: bool | None = None,
    replace: bool = False,
) -> Any:
    """Register the Redis repository of ``entity_type`` (scoped); returns ``services``.

    Resolvable, one instance per scope, as
    ``RedisEntityRepository[entity_type, key_type]``,
    ``Repository[entity_type, key_type]`` and ``domain_repository_type``.

    - ``key_prefix``: the entities' keys are ``{key_prefix}:{id}`` (default:
      the class name in lower case, as Mongo's collection name).
    - ``expiration``: a time to live given by every write (``timedelta`` or
      seconds; default none).
    - ``version_field``: the optimistic-concurrency version (default:
      ``state_version`` of aggregates and of entities that have one; ``None``
      turns the check off).
    - ``serializer``: a strategy or its name (``"json"``, ``"msgpack"``)
      instead of the repository's.
    - ``implementation_type``: a subclass of ``RedisEntityRepository`` with
      domain-specific methods, built instead (the framework's option of the
      same name).
    - ``publish_events``: ``None`` publishes domain events through the
      ``Mediator`` when one is registered; ``True`` requires one (the
      repository cannot be resolved without it); ``False`` never publishes.
    - ``replace``: swap an earlier registration of the same service types
      instead of refusing it.

    Call ``add_redis_repository`` first.
    """
    collection = _collection(services, "services")
    _require_redis(collection, "add_redis_entity_repository")
    if not isinstance(key_type, type):
        raise ConfigurationError(f"key_type: expected a class (str, int, UUID...), got {key_type!r}")
    model = EntityModel(
        entity_type, key_type, key_prefix=key_prefix, expiration=expiration, version_field=version_field
    )
    strategy = _serializer(serializer)
    if implementation_type is not None and not (
        isinstance(implementation_type, type) and issubclass(implementation_type, RedisEntityRepository)
    ):
        raise ConfigurationError(
            f"implementation_type: {_name(implementation_type)} must extend "
            f"RedisEntityRepository[{entity_type.__name__}, {key_type.__name__}]"
        )
    if domain_repository_type is not None and not isinstance(domain_repository_type, type):
        raise ConfigurationError(f"domain_repository_type: expected a class, got {domain_repository_type!r}")
    if publish_events not in (None, True, False):
        raise ConfigurationError(f"publish_events: expected None, True or False, got {publish_events!r}")

    generic: Any = RedisEntityRepository
    framework_repository: Any = Repository
    concrete = generic[entity_type, key_type]
    abstract = framework_repository[entity_type, key_type]
    service_types = [concrete, abstract]
    if domain_repository_type is not None:
        service_types.append(domain_repository_type)
    remaining = _claim(collection, service_types, replace)
    build = implementation_type or RedisEntityRepository
    name = entity_type.__name__

    def create_repository(provider: ServiceProviderBase) -> RedisEntityRepository:  # type: ignore[type-arg]
        redis = provider.get_required_service(RedisRepository)
        mediator = None
        if publish_events is not False:
            mediator = provider.get_service(Mediator)
            if mediator is None and publish_events:
                raise ConfigurationError(
                    f"RedisEntityRepository[{name}] was registered with publish_events=True, but no Mediator is "
                    "registered: call Mediator.configure(builder, [...]) (or add_mediator)"
                )
        repository: RedisEntityRepository = build(  # type: ignore[type-arg]
            redis, entity_type, key_type, mediator=mediator, serializer=strategy, model=model
        )
        return repository

    def resolve_repository(provider: ServiceProviderBase) -> RedisEntityRepository:  # type: ignore[type-arg]
        return cast(RedisEntityRepository, provider.get_required_service(concrete))  # type: ignore[type-arg]

    services[:] = remaining
    collection.add_scoped(concrete, implementation_factory=create_repository)
    collection.add_scoped(abstract, implementation_factory=resolve_repository)
    if domain_repository_type is not None:
        collection.add_scoped(domain_repository_type, implementation_factory=resolve_repository)
    _log.debug("registered RedisEntityRepository[%s] under %r", name, model.key_prefix)
    return services


def add_redis_coordination(services: Any, *, auto_renew: bool = True, replace: bool = False) -> Any:
    """Register a :class:`LeaseCoordinationBackend` on the shared repository; returns ``services``.

    A singleton, resolvable as ``LeaseCoordinationBackend`` and as the
    framework's ``CoordinationBackend``, so code written for
    ``LeaderElection(provider.get_required_service(CoordinationBackend), config)``
    runs on the library's lease. Call ``add_redis_repository`` first.
    """
    collection = _collection(services, "services")
    _require_redis(collection, "add_redis_coordination")
    remaining = _claim(collection, [LeaseCoordinationBackend, CoordinationBackend], replace)
    backends: list[LeaseCoordinationBackend] = []

    def create_backend(provider: ServiceProviderBase) -> LeaseCoordinationBackend:
        # One backend per registration, whichever type is resolved first.
        if not backends:
            backends.append(
                LeaseCoordinationBackend(provider.get_required_service(RedisRepository), auto_renew=auto_renew)
            )
        return backends[0]

    services[:] = remaining
    collection.add_singleton(LeaseCoordinationBackend, implementation_factory=create_backend)
    collection.add_singleton(CoordinationBackend, implementation_factory=create_backend)
    return services
