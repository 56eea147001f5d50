"""The repository: :class:`RedisRepository` (command families over one executor, and its lifetime), pipelines."""

from .optimistic import Watch
from .pipeline import Pipeline
from .pool_info import ConnectionPoolInfo
from .repository import RedisRepository

__all__ = ["ConnectionPoolInfo", "Pipeline", "RedisRepository", "Watch"]
