"""Integration with the Neuroglia framework (``neuroglia-python``).

Importing this package (which importing :mod:`neuroglia.data.redis` does)
attaches ``add_redis_repository`` and ``add_redis_hash_repository`` to the
framework's ``ServiceCollection`` when the framework is installed, as the
framework's page requires; it is the library's only import-time side
effect. Without the framework everything else still works.
"""

from .hosting import (
    RedisHealthCheck,
    RedisRegistration,
    RedisRepositoryLifetime,
    add_redis_hash_repository,
    add_redis_repository,
    framework_available,
)

__all__ = [
    "RedisHealthCheck",
    "RedisRegistration",
    "RedisRepositoryLifetime",
    "add_redis_hash_repository",
    "add_redis_repository",
    "framework_available",
]
