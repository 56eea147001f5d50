"""neuroglia-redis: the Redis Cache Repository of the Neuroglia framework.

Import everything from here::

    from neuroglia.data.redis import RedisRepository, RedisConfig

The modules whose names start with an underscore are private.
"""

from ._awaitable import AwaitableFloat, AwaitableInt
from ._breaker import CircuitBreakerPolicy, CircuitState
from ._command import Command
from ._config import ConnectionPoolConfig, RedisConfig, RetryPolicy
from ._envelope import Envelope, EnvelopePolicy, EnvelopeSerializer, read_envelope
from ._fallback import FallbackPolicy
from ._hash_repository import RedisHashRepository
from ._health import HealthReport, check_health
from ._keys import build_key, build_pattern
from ._lock import DistributedLock, fenced_set_async
from ._otel import OpenTelemetryExport, register_opentelemetry
from ._pipeline import Pipeline
from ._prometheus import PrometheusCollector, register_prometheus
from ._redlock import Redlock
from ._repository import ConnectionPoolInfo, RedisRepository, Script, escape_pattern
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
    LockTimeoutError,
    PoolExhaustedError,
    SerializationError,
)
from .hosting import RedisHealthCheck  # importing hosting extends the framework's ServiceCollection
from .metrics import CacheMetrics
from .serialization import (
    JsonSerializer,
    MsgPackSerializer,
    PickleSerializer,
    RawSerializer,
    SerializationStrategy,
)

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
    "build_key",
    "build_pattern",
    "check_health",
    "escape_pattern",
    "fenced_set_async",
    "read_envelope",
    "register_opentelemetry",
    "register_prometheus",
]
