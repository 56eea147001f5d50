"""Transports: how commands reach Redis.

:mod:`.contract` is the contract the executor relies on (raw replies, a
closed error tree with a :class:`~neuroglia.data.redis.Delivery` per
failure); implementations: the library's own multiplexed connections on
hiredis (:mod:`.multiplexed`, the default for network URLs), redis-py's pool
(:mod:`.redis_py`, ``transport="redis-py"``) and the embedded ``memory://``
backend on fakeredis (:mod:`.memory`). Only this
subpackage imports ``redis``, ``hiredis`` or ``fakeredis``. Tests and users
may inject their own transport (``RedisRepository(config, transport=...)``);
the testing kit ships a mock and a fault-injecting one.
"""

from .contract import Args, PoolStats, Transport
from .factory import build_transport

__all__ = ["Args", "PoolStats", "Transport", "build_transport"]
