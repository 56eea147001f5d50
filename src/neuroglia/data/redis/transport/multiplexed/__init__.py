"""The library's own multiplexed transport: RESP connections on hiredis shared by concurrent callers.

:class:`MultiplexedTransport` implements the transport contract
(:mod:`neuroglia.data.redis.transport.contract`) for ``redis://``,
``rediss://`` and ``unix://``. How it works (multiplexing, write
coalescing, dedicated connections, deadlines, cancellation, back-pressure,
reconnection) is told in ``docs/transport.md``.

Modules: :mod:`.encoding` (commands to bytes), :mod:`.connection` (one
connection, its queue and its timer), :mod:`.resp3` (RESP3 replies in RESP2
shapes), :mod:`.handshake`, :mod:`.tls`, :mod:`.errors` (failures into the
error tree), :mod:`.dedicated` (the pool for blocking commands),
:mod:`.settings` and :mod:`.transport`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .dedicated import DedicatedSession
from .settings import ConnectionSettings
from .transport import MultiplexedTransport, PushHandler, SessionHook

if TYPE_CHECKING:
    from ...config import RedisConfig

__all__ = [
    "ConnectionSettings",
    "DedicatedSession",
    "MultiplexedTransport",
    "PushHandler",
    "SessionHook",
    "build_multiplexed_transport",
]


def build_multiplexed_transport(config: RedisConfig) -> MultiplexedTransport:
    """The multiplexed transport for a :class:`~neuroglia.data.redis.RedisConfig` (no I/O happens here)."""
    return MultiplexedTransport(ConnectionSettings.from_config(config))
