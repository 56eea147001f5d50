"""neuroglia-redis: the Redis Cache Repository of the Neuroglia framework.

Import everything from here::

    from neuroglia.data.redis import RedisRepository, RedisConfig

The package is layered; ``docs/architecture.md`` is the map. Subpackages
hold the implementation; the names below are the public API.
"""

from .config import ConnectionPoolConfig, RedisConfig
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
)
from .integration import RedisHealthCheck  # importing it extends the framework's ServiceCollection
from .locks import DistributedLock, Redlock, fenced_set_async
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
from .repository import ConnectionPoolInfo, Pipeline, RedisRepository
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

__all__ = [
    "AwaitableFloat",
    "AwaitableInt",
    "CacheAuthenticationError",
    "CacheCommandError",
    "CacheException",
    "CacheMetrics",
    "CachePermissionError",
    "CacheTLSError",
    "CacheTimeoutError",
    "CacheUnavailableError",
    "CircuitBreakerPolicy",
    "CircuitOpenError",
    "CircuitState",
    "Command",
    "ConfigurationError",
    "ConnectionPoolConfig",
    "ConnectionPoolInfo",
    "Delivery",
    "DistributedLock",
    "Envelope",
    "EnvelopePolicy",
    "EnvelopeSerializer",
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
    "OpenTelemetryExport",
    "PickleSerializer",
    "Pipeline",
    "PoolExhaustedError",
    "PrometheusCollector",
    "RawSerializer",
    "RedisConfig",
    "RedisHashRepository",
    "RedisHealthCheck",
    "RedisRepository",
    "Redlock",
    "RetryPolicy",
    "Script",
    "SerializationError",
    "SerializationStrategy",
    "Transport",
    "build_key",
    "build_pattern",
    "check_health",
    "escape_pattern",
    "fenced_set_async",
    "read_envelope",
    "register_opentelemetry",
    "register_prometheus",
]
