"""neuroglia-redis: the Redis Cache Repository of the Neuroglia framework.

Import everything from here::

    from neuroglia.data.redis import RedisRepository, RedisConfig, RedisCache

The package is layered; ``docs/architecture.md`` is the map. Subpackages
hold the implementation; the names below are the public API. The cache
layer (``RedisCache``: get-or-set, fail-safe, tags, the decorator) is in
``cache``.
"""

from .cache import (
    CacheClosedError,
    CacheOptions,
    CacheResult,
    CacheStatistics,
    FactoryContext,
    FactoryTimeoutError,
    RedisCache,
)
from .config import ConnectionPoolConfig, NearCacheOptions, RedisConfig
from .core import Command, Script, build_key, build_pattern, escape_pattern
from .entities import RedisHashRepository
from .exceptions import (
    CacheAuthenticationError,
    CacheCommandError,
    CacheException,
    CachePermissionError,
    CacheTimeoutError,
    CacheTLSError,
    CacheUnavailableError,
    CircuitOpenError,
    ClusterNodeUnavailableError,
    ConfigurationError,
    Delivery,
    InvalidArgumentError,
    LockError,
    LockLostError,
    LockNotOwnedError,
    LockOutageError,
    LockTimeoutError,
    PoolExhaustedError,
    SerializationError,
    TransactionAbortedError,
)
from .integration import RedisHealthCheck  # importing it extends the framework's ServiceCollection
from .locks import DistributedLock, Redlock, fenced_set_async, fenced_token_async
from .observability import (
    AwaitableFloat,
    AwaitableInt,
    CacheMetrics,
    HealthReport,
    OpenTelemetryExport,
    PrometheusCollector,
    check_health,
    register_opentelemetry,
    register_prometheus,
)
from .repository import ConnectionPoolInfo, Pipeline, RedisRepository, Watch
from .resilience import CircuitBreakerPolicy, CircuitState, FallbackPolicy, RetryPolicy
from .serialization import (
    Envelope,
    EnvelopePolicy,
    EnvelopeSerializer,
    JsonSerializer,
    MsgPackSerializer,
    PickleSerializer,
    RawSerializer,
    SerializationStrategy,
    read_envelope,
)
from .transport import Transport

RedisRepositoryHealthCheck = RedisHealthCheck
"""The library's :class:`RedisHealthCheck` under a name that cannot be confused with the framework's
``neuroglia.observability.RedisHealthCheck`` when both are imported (see docs/framework.md)."""

__all__ = [
    "AwaitableFloat",
    "AwaitableInt",
    "CacheAuthenticationError",
    "CacheClosedError",
    "CacheCommandError",
    "CacheException",
    "CacheMetrics",
    "CacheOptions",
    "CachePermissionError",
    "CacheResult",
    "CacheStatistics",
    "CacheTLSError",
    "CacheTimeoutError",
    "CacheUnavailableError",
    "CircuitBreakerPolicy",
    "CircuitOpenError",
    "CircuitState",
    "ClusterNodeUnavailableError",
    "Command",
    "ConfigurationError",
    "ConnectionPoolConfig",
    "ConnectionPoolInfo",
    "Delivery",
    "DistributedLock",
    "Envelope",
    "EnvelopePolicy",
    "EnvelopeSerializer",
    "FactoryContext",
    "FactoryTimeoutError",
    "FallbackPolicy",
    "HealthReport",
    "InvalidArgumentError",
    "JsonSerializer",
    "LockError",
    "LockLostError",
    "LockNotOwnedError",
    "LockOutageError",
    "LockTimeoutError",
    "MsgPackSerializer",
    "NearCacheOptions",
    "OpenTelemetryExport",
    "PickleSerializer",
    "Pipeline",
    "PoolExhaustedError",
    "PrometheusCollector",
    "RawSerializer",
    "RedisCache",
    "RedisConfig",
    "RedisHashRepository",
    "RedisHealthCheck",
    "RedisRepository",
    "RedisRepositoryHealthCheck",
    "Redlock",
    "RetryPolicy",
    "Script",
    "SerializationError",
    "SerializationStrategy",
    "TransactionAbortedError",
    "Transport",
    "Watch",
    "build_key",
    "build_pattern",
    "check_health",
    "escape_pattern",
    "fenced_set_async",
    "fenced_token_async",
    "read_envelope",
    "register_opentelemetry",
    "register_prometheus",
]
