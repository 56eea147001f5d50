"""Settings: :class:`RedisConfig` (where Redis is, how to talk to it) and :class:`ConnectionPoolConfig`.

Validated once, at construction, with errors that name the field; URLs are
parsed in :mod:`.url`, environment variables read by
:meth:`RedisConfig.from_env`. The resilience policies a config holds
(retry, breaker, fallback) live in :mod:`neuroglia.data.redis.resilience`.
"""

from .near_cache import NearCacheOptions
from .pool import ConnectionPoolConfig
from .redis_config import RedisConfig

__all__ = ["ConnectionPoolConfig", "NearCacheOptions", "RedisConfig"]
