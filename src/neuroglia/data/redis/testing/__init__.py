"""The testing kit: real ``redis-server`` processes, test transports, a fake clock, pytest fixtures.

* :class:`RedisServer` starts a private ``redis-server`` on a free loopback
  port without persistence, and stops it by pid; it can be paused, killed
  and restarted for fault tests.
* :class:`SentinelGroup` starts a primary, its replica and three sentinels
  (short timings, so a failover takes seconds), with helpers to kill the
  primary, wait for the failover and bring the old primary back.
* :class:`LocalCluster` starts a local Redis Cluster (three primaries, three
  replicas) for tests that need one, with fault helpers (kill a primary,
  wait for its replica's promotion, migrate a slot).
* :class:`MockTransport` answers from a script; :class:`FaultInjectingTransport`
  puts outages, delays and failures in front of a real transport.
* :class:`FakeClock` drives the circuit breaker (and any injected clock)
  without sleeping.
* :mod:`.plugin` is a pytest plugin, enabled by the package's ``pytest11``
  entry point (``-p no:neuroglia_redis`` turns it off), with the fixtures
  ``redis_server``, ``redis_cluster``, ``redis_repository``, ``memory_redis_repository``,
  ``sentinel_group`` and ``fake_clock``.

Importing this package does not need pytest.
"""

from .clock import FakeClock
from .cluster import ClusterNode, LocalCluster, key_slot
from .endpoint import RedisEndpoint
from .sentinel import SentinelGroup, SentinelServer, SentinelTls
from .server import RedisServer, free_port, redis_server_binary
from .transports import FaultInjectingTransport, Faults, MockTransport, refused, reply_lost

__all__ = [
    "ClusterNode",
    "FakeClock",
    "FaultInjectingTransport",
    "Faults",
    "LocalCluster",
    "MockTransport",
    "RedisEndpoint",
    "RedisServer",
    "SentinelGroup",
    "SentinelServer",
    "SentinelTls",
    "free_port",
    "key_slot",
    "redis_server_binary",
    "refused",
    "reply_lost",
]
