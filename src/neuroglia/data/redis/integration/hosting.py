"""Service registration in a Neuroglia application (the framework, ``neuroglia-python``).

With the framework installed, importing :mod:`neuroglia.data.redis` attaches
``add_redis_repository`` and ``add_redis_hash_repository`` to its
``ServiceCollection``, the way the framework adds its own extensions
(``add_mediator``...), so the documentation page runs as written::

    builder = WebApplicationBuilder()
    builder.services.add_redis_repository(RedisConfig(host="localhost", port=6379))
    app = builder.build()
    redis = app.services.get_service(RedisRepository)

``RedisRepository.configure(builder, config)`` does the same in the style of
the framework's other integrations (without a config it reads the
``"redis"`` connection string of the builder's settings, then ``REDIS_*``
environment variables), by calling the attached method. Without the framework this module still imports;
only the attachment is absent.

Registered (all singletons; nothing connects before first use):

==========================  ====================================================
``RedisRepository``         one shared repository, created on first resolution
``RedisConfig``             its config
``CacheMetrics``            ``repository.metrics`` (only with ``enable_metrics``)
``RedisHealthCheck``        a health check for the framework's observability
``RedisHashRepository[T]``  per entity type, with ``add_redis_hash_repository``
``HostedService``           closes the repository when the application stops
==========================  ====================================================

The framework's container has surprises this module works around:

* Every ``WebApplicationBuilder`` shares one class-level ``ServiceCollection``
  unless given its own, so building a second application in the same process
  registers into the first one's collection. A second registration is
  refused with :class:`~neuroglia.data.redis.ConfigurationError`; pass
  ``replace=True`` to swap it, or give each builder a fresh collection.
* ``get_service`` returns the *first* registration of a type, so a second
  registration would be silently ignored: it is refused instead, also when
  the earlier one was made by hand.
* Constructor parameters with defaults are injected as ``None`` when the
  container has no service of their annotated type. Every service here is
  built by a factory, never by the container calling a constructor.
"""

# No ``from __future__ import annotations`` here: the framework reads the
# return annotation of factories (``inspect.signature``) and needs real classes.

import importlib
import importlib.util
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from ..config import RedisConfig
from ..core.arguments import Expiration
from ..entities.hash_repository import RedisHashRepository
from ..exceptions import ConfigurationError
from ..observability.health import DEFAULT_POOL_BUSY_RATIO, DEFAULT_SLOW_MS, DEFAULT_TIMEOUT, HealthReport, check_health
from ..observability.metrics import CacheMetrics
from ..repository import RedisRepository
from ..serialization import SerializationStrategy

__all__ = [
    "RedisHealthCheck",
    "RedisRegistration",
    "RedisRepositoryLifetime",
    "add_redis_hash_repository",
    "add_redis_repository",
    "framework_available",
]

T = TypeVar("T")
_log = logging.getLogger("neuroglia.data.redis.hosting")
_SHARED_COLLECTION_HINT = (
    "the framework's builders share one class-level ServiceCollection unless each is given its own, "
    "so a second application built in the same process registers into the first one's collection"
)


class RedisRegistration:
    """What one ``add_redis_repository`` call registered.

    Holds the config and the one repository shared by every service provider
    built from the collection, created (not connected) on first resolution.
    """

    def __init__(self, config: RedisConfig) -> None:
        self.config = config
        self._repository: RedisRepository | None = None
        self.descriptors: list[Any] = []  # the framework's ServiceDescriptor objects added for it

    @property
    def repository(self) -> RedisRepository:
        """The shared repository (created here on first access; it connects on first use)."""
        if self._repository is None:
            self._repository = RedisRepository(self.config)
        return self._repository

    @property
    def created(self) -> bool:
        """Whether the repository exists yet."""
        return self._repository is not None

    async def close(self) -> None:
        """Close the repository's connections (a later use reconnects lazily)."""
        if self._repository is not None:
            await self._repository.disconnect()

    def __repr__(self) -> str:
        return f"RedisRegistration({self.config.redacted_url}, created={self.created})"


class RedisRepositoryLifetime:
    """A hosted service (``start_async``/``stop_async``) that closes the repository on shutdown.

    Starting does nothing: the repository connects lazily on first use, and
    the framework's plain ``build()`` host never starts hosted services.
    """

    def __init__(self, registration: RedisRegistration) -> None:
        self.registration = registration

    async def start_async(self) -> None:
        """Nothing to do: the first command connects."""

    async def stop_async(self) -> None:
        """Close every connection of the shared repository."""
        await self.registration.close()


class RedisHealthCheck:
    """A health check the framework's observability endpoints can run.

    Duck-compatible with the framework's ``HealthCheckProvider`` (``name``
    and ``async check()``) and registered as its virtual subclass when the
    framework is installed; :meth:`check` returns a
    :class:`~neuroglia.data.redis.HealthReport`, whose ``status``,
    ``message`` and ``latency_ms`` are what those endpoints read::

        Observability.configure(builder, health_check_providers=[
            RedisHealthCheck.from_services(builder.services),
        ])
    """

    def __init__(
        self,
        source: RedisRepository | RedisRegistration,
        *,
        name: str = "redis",
        timeout: float = DEFAULT_TIMEOUT,
        slow_ms: float = DEFAULT_SLOW_MS,
        pool_busy_ratio: float = DEFAULT_POOL_BUSY_RATIO,
    ) -> None:
        if not isinstance(source, RedisRepository | RedisRegistration):
            raise ConfigurationError(
                f"RedisHealthCheck needs a RedisRepository or a RedisRegistration, got {type(source).__name__}"
            )
        self._source = source
        self._name = name
        self.timeout = timeout
        self.slow_ms = slow_ms
        self.pool_busy_ratio = pool_busy_ratio

    @property
    def name(self) -> str:
        """The dependency's name in health responses."""
        return self._name

    @property
    def repository(self) -> RedisRepository:
        """The repository checked."""
        source = self._source
        return source.repository if isinstance(source, RedisRegistration) else source

    async def check(self) -> HealthReport:
        """Ping, read the server version, report breaker state and pool usage; never raises."""
        return await check_health(
            self.repository, timeout=self.timeout, slow_ms=self.slow_ms, pool_busy_ratio=self.pool_busy_ratio
        )

    @classmethod
    def from_services(cls, services: Iterable[Any]) -> "RedisHealthCheck":
        """The health check ``add_redis_repository`` registered in ``services``."""
        for descriptor in services:
            if descriptor.service_type is RedisHealthCheck and isinstance(descriptor.singleton, RedisHealthCheck):
                return descriptor.singleton
        raise ConfigurationError("no Redis repository is registered here: call add_redis_repository first")

    def __repr__(self) -> str:
        return f"RedisHealthCheck(name={self._name!r}, target={self.repository.config.redacted_url})"


# -- registration ----------------------------------------------------------------


def _coerce_config(config: RedisConfig | str | Mapping[str, Any] | None) -> RedisConfig:
    if config is None:
        return RedisConfig.from_env()
    if isinstance(config, RedisConfig):
        return config
    if isinstance(config, str):
        return RedisConfig(url=config)
    if isinstance(config, Mapping):
        try:
            return RedisConfig(**config)
        except TypeError as exc:
            raise ConfigurationError(f"config: {exc}") from None
    raise ConfigurationError(f"config: expected a RedisConfig, a URL or a dict, got {type(config).__name__}")


def _preflight(config: RedisConfig) -> None:
    """Checks that need no server but would otherwise fail only at the first command."""
    if config.scheme == "memory" and importlib.util.find_spec("fakeredis") is None:
        raise ConfigurationError("url: memory:// needs the embedded backend: pip install 'neuroglia-redis[memory]'")
    for name in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile"):
        path = getattr(config, name)
        if path and not os.path.exists(path):
            raise ConfigurationError(f"{name}: no such file {path!r}")


def _descriptor_class(services: Any) -> Any:
    """The framework's ``ServiceDescriptor`` class (``services`` must be its ``ServiceCollection``)."""
    try:
        module = importlib.import_module("neuroglia.dependency_injection")
    except ImportError as exc:  # pragma: no cover - a ServiceCollection implies the framework
        raise ConfigurationError(
            "the Neuroglia framework is not installed: pip install 'neuroglia-redis[neuroglia]'"
        ) from exc
    if not isinstance(services, module.ServiceCollection):
        raise ConfigurationError(f"services: expected the framework's ServiceCollection, got {type(services).__name__}")
    return module


def _hosted_service_type() -> Any:
    return importlib.import_module("neuroglia.hosting.abstractions").HostedService


def _find(services: Iterable[Any], service_type: Any) -> list[Any]:
    return [d for d in services if d.service_type == service_type]


def _registration_in(services: Iterable[Any]) -> RedisRegistration | None:
    for descriptor in _find(services, RedisRegistration):
        if isinstance(descriptor.singleton, RedisRegistration):
            return descriptor.singleton
    return None


def _describe(descriptor: Any) -> str:
    how = (
        "an instance"
        if descriptor.singleton is not None
        else "a factory"
        if descriptor.implementation_factory
        else "a type"
    )
    return f"{getattr(descriptor.service_type, '__name__', descriptor.service_type)} registered with {how}"


def add_redis_repository(
    services: Any,
    config: RedisConfig | str | Mapping[str, Any] | None = None,
    *,
    hash_repositories: Iterable[type[Any]] = (),
    replace: bool = False,
    settings: Any = None,
    connection_string_name: str = "redis",
) -> Any:
    """Register one shared, lazily connected :class:`RedisRepository` in ``services``.

    ``config`` is a :class:`RedisConfig`, a URL, a dict of its fields, or
    ``None``: then the ``connection_string_name`` connection string of the
    application ``settings`` when given and set (the framework's convention),
    else :meth:`RedisConfig.from_env`. ``hash_repositories`` lists
    entity types to register a ``RedisHashRepository[T]`` for (see
    :func:`add_redis_hash_repository` for per-type options). Returns
    ``services`` for chaining.

    Raises :class:`~neuroglia.data.redis.ConfigurationError` at once for an
    invalid config, or when a Redis repository (or its config, metrics or
    health check) is already registered, unless ``replace=True``, which
    removes the earlier registration first.
    """
    framework = _descriptor_class(services)
    if config is None:
        strings = getattr(settings, "connection_strings", None) or {}
        config = strings.get(connection_string_name) or None
    resolved = _coerce_config(config)
    _preflight(resolved)
    registration = RedisRegistration(resolved)
    health = RedisHealthCheck(registration)
    hosted_service = _hosted_service_type()

    owned: list[Any] = [RedisRepository, RedisRegistration, RedisHealthCheck]
    if resolved.enable_metrics:
        owned.append(CacheMetrics)
    entity_types = list(hash_repositories)
    for entity_type in entity_types:
        if not isinstance(entity_type, type):
            raise ConfigurationError(f"hash_repositories: expected classes, got {entity_type!r}")
    # Checked on what the collection would hold, so that a refusal leaves it untouched.
    remaining = list(services)
    previous = _registration_in(remaining)
    if replace:
        stale = {id(d) for d in previous.descriptors} if previous is not None else set()
        remaining = [d for d in remaining if id(d) not in stale and d.service_type not in owned]
        previous = None
    if previous is not None:
        raise ConfigurationError(
            f"a Redis repository is already registered in this ServiceCollection (for "
            f"{previous.config.redacted_url}); the framework resolves the first registration of a type, so a "
            f"second one would be silently ignored. Pass replace=True to swap it. Note: {_SHARED_COLLECTION_HINT}."
        )
    for service_type in owned:
        existing = _find(remaining, service_type)
        if existing:
            raise ConfigurationError(
                f"{service_type.__name__} is already registered ({_describe(existing[0])}); the framework resolves "
                f"the first registration of a type, so this one would be silently ignored. Remove it, or pass "
                f"replace=True to swap it."
            )
    configs = _find(remaining, RedisConfig)
    if configs and not (len(configs) == 1 and configs[0].singleton == resolved):
        raise ConfigurationError(
            f"a different RedisConfig is already registered ({_describe(configs[0])}); the repository would be "
            f"built from {resolved.redacted_url} while get_service(RedisConfig) returned the other one."
        )

    def repository_factory(provider: Any) -> RedisRepository:
        return registration.repository

    def metrics_factory(provider: Any) -> CacheMetrics:
        metrics = registration.repository.metrics
        assert metrics is not None  # registered only with enable_metrics
        return metrics

    def lifetime_factory(provider: Any) -> RedisRepositoryLifetime:
        return RedisRepositoryLifetime(registration)

    descriptor = framework.ServiceDescriptor
    added = [
        descriptor(RedisRegistration, singleton=registration),
        descriptor(RedisRepository, implementation_factory=repository_factory),
        descriptor(RedisHealthCheck, singleton=health),
        descriptor(hosted_service, implementation_factory=lifetime_factory),
    ]
    if not configs:
        added.append(descriptor(RedisConfig, singleton=resolved))
    if resolved.enable_metrics:
        added.append(descriptor(CacheMetrics, implementation_factory=metrics_factory))
    services[:] = [*remaining, *added]
    registration.descriptors.extend(added)
    _log.debug("registered RedisRepository for %s", resolved.redacted_url)
    for entity_type in entity_types:
        add_redis_hash_repository(services, entity_type)
    return services


def add_redis_hash_repository(
    services: Any,
    entity_type: type[T],
    *,
    key_prefix: str | None = None,
    id_field: str = "id",
    expiration: Expiration | None = None,
    serializer: SerializationStrategy | None = None,
) -> Any:
    """Register ``RedisHashRepository[entity_type]`` on the shared repository; returns ``services``.

    Resolve it with ``provider.get_service(RedisHashRepository[Customer])``
    or inject it by that annotation. Call :func:`add_redis_repository` first.
    """
    framework = _descriptor_class(services)
    if not isinstance(entity_type, type):
        raise ConfigurationError(f"entity_type: expected a class, got {entity_type!r}")
    if key_prefix is not None and not isinstance(key_prefix, str):
        raise ConfigurationError(f"key_prefix: expected a str, got {type(key_prefix).__name__}")
    registration = _registration_in(services)
    if registration is None:
        raise ConfigurationError("call add_redis_repository before add_redis_hash_repository")
    service_type = RedisHashRepository[entity_type]  # type: ignore[valid-type]
    if _find(services, service_type):
        raise ConfigurationError(f"RedisHashRepository[{entity_type.__name__}] is already registered")

    def factory(provider: Any) -> RedisHashRepository:  # type: ignore[type-arg]  # the framework needs the bare class
        return RedisHashRepository(
            registration.repository,
            entity_type,
            key_prefix=key_prefix,
            id_field=id_field,
            expiration=expiration,
            serializer=serializer,
        )

    added = framework.ServiceDescriptor(service_type, implementation_factory=factory)
    services.append(added)
    registration.descriptors.append(added)
    return services


# -- attachment to the framework ---------------------------------------------------


def _attach() -> bool:
    """Add the ``add_*`` methods to the framework's ServiceCollection, if it is installed."""
    try:
        di = importlib.import_module("neuroglia.dependency_injection")
    except ImportError:
        return False
    collection = getattr(di, "ServiceCollection", None)
    if collection is None:
        return False
    methods: tuple[tuple[str, Callable[..., Any]], ...] = (
        ("add_redis_repository", add_redis_repository),
        ("add_redis_hash_repository", add_redis_hash_repository),
    )
    for name, function in methods:
        current = getattr(collection, name, None)
        if current is None or getattr(current, "__module__", None) == __name__:
            setattr(collection, name, function)
        else:  # pragma: no cover - a future framework with its own method keeps it
            _log.debug("ServiceCollection.%s exists already; not replaced", name)
    try:
        health_checks = importlib.import_module("neuroglia.observability.health_checks")
    except ImportError:  # pragma: no cover - older frameworks
        pass
    else:
        health_checks.HealthCheckProvider.register(RedisHealthCheck)
    return True


framework_available: bool = _attach()
"""Whether the Neuroglia framework was found and extended."""
