"""Which transport a config gets."""

from __future__ import annotations

from ..config import RedisConfig
from .contract import Transport

__all__ = ["build_transport"]


def build_transport(config: RedisConfig) -> Transport:
    """Build the transport described by ``config`` (no I/O happens here).

    ``memory://`` is the embedded backend; a cluster or a sentinel
    topology gets its routing transport over multiplexed connections; other
    network URLs get the multiplexed transport unless ``config.transport``
    is ``"redis-py"``.
    """
    if config.scheme == "memory":
        from .memory import build_memory_transport  # fakeredis is an optional extra

        return build_memory_transport(config)
    if config.topology == "cluster":
        from .cluster import build_cluster_transport

        return build_cluster_transport(config)
    if config.topology == "sentinel":
        from .sentinel import build_sentinel_transport

        return build_sentinel_transport(config)
    if config.transport == "multiplexed":
        from .multiplexed import build_multiplexed_transport

        return build_multiplexed_transport(config)
    from .redis_py import build_redis_py_transport

    return build_redis_py_transport(config)
