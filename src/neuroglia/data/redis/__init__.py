"""neuroglia-redis: the Redis Cache Repository of the Neuroglia framework.

Import everything from here::

    from neuroglia.data.redis import RedisRepository, RedisConfig

The modules whose names start with an underscore are private.
"""

from ._awaitable import AwaitableFloat, AwaitableInt
from ._breaker import CircuitBreakerPolicy, CircuitState
from ._command import Command
from ._config import ConnectionPoolConfig, RedisConfig, RetryPolicy
from ._fallback import FallbackPolicy
from ._hash_repository import RedisHashRepository
from ._pipeline import Pipeline
from ._repository import ConnectionPoolInfo, RedisRepository, Script, escape_pattern
from .exceptions import (
    CacheAuthenticationError,
    CacheCommandError,
    CacheException,
    CachePermissionError,
    CacheTimeoutError,
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
from .metrics import CacheMetrics
from .serialization import (
    JsonSerializer,
    MsgPackSerializer,
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
    "CacheTimeoutError",
    "CacheUnavailableError",
    "CircuitBreakerPolicy",
    "CircuitOpenError",
    "CircuitState",
    "Command",
    "ConfigurationError",
    "ConnectionPoolConfig",
    "ConnectionPoolInfo",
    "FallbackPolicy",
    "InvalidArgumentError",
    "JsonSerializer",
    "LockError",
    "LockLostError",
    "LockNotOwnedError",
    "LockTimeoutError",
    "MsgPackSerializer",
    "Pipeline",
    "RawSerializer",
    "RedisConfig",
    "RedisHashRepository",
    "RedisRepository",
    "RetryPolicy",
    "Script",
    "SerializationError",
    "SerializationStrategy",
    "escape_pattern",
]
