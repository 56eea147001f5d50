"""Redis Sentinel: the current primary found through the sentinels, followed across failovers.

:class:`SentinelTransport` implements the transport contract
(:mod:`neuroglia.data.redis.transport.contract`) for
``redis+sentinel://`` and ``rediss+sentinel://`` URLs: it asks the sentinels
for the service's primary, confirms it with ``ROLE``, and sends commands
there over a :class:`~neuroglia.data.redis.transport.multiplexed.MultiplexedTransport`.
On a failover it moves to the new primary without the caller doing anything
(see :mod:`.transport`, and ``docs/scale-out.md``).

Modules: :mod:`.resolver` (asking the sentinels), :mod:`.watcher`
(``+switch-master``), :mod:`.primary` (the confirmed primary, re-resolved
after a failover), :mod:`.hooks` (push handlers and session hooks carried
across failovers), :mod:`.replicas` (``read_from``) and :mod:`.transport`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .replicas import READ_FROM, REPLICA_COMMANDS
from .resolver import Address, SentinelResolver
from .transport import SentinelTransport

if TYPE_CHECKING:
    from ...config import RedisConfig

__all__ = [
    "READ_FROM",
    "REPLICA_COMMANDS",
    "Address",
    "SentinelResolver",
    "SentinelTransport",
    "build_sentinel_transport",
]


def build_sentinel_transport(config: RedisConfig) -> SentinelTransport:
    """The sentinel transport for a config with a sentinel topology (no I/O happens here).

    Reads ``config.sentinels``, ``config.service_name``,
    ``config.sentinel_username``, ``config.sentinel_password`` and
    ``config.read_from``; the data connections use the rest of the config
    (credentials, database, TLS, pool bounds, protocol).
    """
    return SentinelTransport(
        config,
        # The config resolves ``sentinels`` to (host, port) pairs whatever form it was given in.
        sentinels=[(str(node[0]), int(node[1])) for node in config.sentinels or () if isinstance(node, tuple)],
        service_name=config.service_name or "",
        sentinel_username=config.sentinel_username,
        sentinel_password=config.sentinel_password,
        read_from=config.read_from,
    )
