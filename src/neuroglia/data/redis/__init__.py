"""neuroglia-redis: the Redis Cache Repository of the Neuroglia framework.

Import everything from here::

    from neuroglia.data.redis import RedisRepository, RedisConfig, RedisCache

The cache layer (``RedisCache``: get-or-set, fail-safe, tags, the decorator)
lives in the ``cache`` subpackage. The modules whose names start with an underscore are private.
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
from .cache import (
    CacheClosedError,
    CacheOptions,
    CacheResult,
    CacheStatistics,
    FactoryContext,
    FactoryTimeoutError,
    RedisCache,
)
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
    InvalidArgumentError,
    LockError,
    LockLostError,
    LockNotOwnedError,
    LockTimeoutError,
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
    "Command",
    "ConfigurationError",
    "ConnectionPoolConfig",
    "ConnectionPoolInfo",
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
    "LockTimeoutError",
    "MsgPackSerializer",
    "OpenTelemetryExport",
    "PickleSerializer",
    "Pipeline",
    "PrometheusCollector",
    "RawSerializer",
    "RedisCache",
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
