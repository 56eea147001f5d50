"""How the near cache learns about changes: Redis' ``CLIENT TRACKING``, and when it may trust it.

On the multiplexed transport (RESP3), a session hook runs ``CLIENT TRACKING
ON`` (or ``... BCAST PREFIX ...``) on the shared connection before it serves
any command, so every read the near cache keeps is tracked; invalidations
arrive as push messages on that connection and drop their keys.

Whenever invalidations may have been missed, everything is dropped before a
hit is served again:

* the connection is lost (reset, ``CLIENT KILL``, a restart, a stall, the
  repository's ``disconnect()``): whatever Redis sent meanwhile is gone, and
  a new connection starts an empty tracking table;
* Redis reports a broken tracking redirection, or flushes the database;
* the session is not confirmed: nothing is kept until the hook's commands
  have run on a connection.

A connection can also go silent without closing (a network cut), and a near
cache answering from memory would never notice. So it sends a ``PING`` on
its connection every ``heartbeat_interval``: Redis answers a connection in
order, so the answer proves that every invalidation sent before it has been
read. Hits are served only within two intervals of the last proof (any
read's reply is one too); after that reads go to Redis, which answers or
fails as the network allows.

On a Redis Cluster the cluster transport runs the hook on every node's
shared connections and hands every node's push messages to the near cache;
the loss of any of them flushes it, and the heartbeat's ``PING`` reaches
every primary.

On ``memory://`` the in-process server reports every write of every
repository of the process (see :mod:`neuroglia.data.redis.transport.memory`)
synchronously, so there is nothing to confirm and nothing to miss.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from ..exceptions import CacheException, ConfigurationError
from ..transport.contract import Args, Transport

if TYPE_CHECKING:
    from ..transport.cluster.nodes import ClusterHook
    from ..transport.multiplexed import SessionHook
    from .near import NearCache

__all__ = ["Tracker", "tracking_commands"]

_log = logging.getLogger("neuroglia.data.redis")
_INF = float("inf")


def tracking_commands(near: NearCache) -> tuple[Args, ...]:
    """The commands that turn tracking on for ``near``'s options."""
    options = near.options
    if options.mode == "default":
        return (("CLIENT", "TRACKING", "ON"),)
    prefixes = [near.key_prefix + prefix for prefix in options.prefixes]
    if not prefixes and near.key_prefix:
        prefixes = [near.key_prefix]
    args: list[Any] = ["CLIENT", "TRACKING", "ON", "BCAST"]
    for prefix in prefixes:
        args += ("PREFIX", prefix)
    return (tuple(args),)


class Tracker:
    """One near cache's link to one transport; see the module docstring."""

    def __init__(self, near: NearCache, transport: Transport, mode: str) -> None:
        self.near = near
        self.transport = transport
        self.mode = mode
        self.active = True
        self._hook: SessionHook | ClusterHook | None = None
        self._connections: set[int] = set()
        self._heartbeat: asyncio.Task[None] | None = None

    @classmethod
    def start(cls, near: NearCache, transport: Transport) -> Tracker:
        """Start tracking on ``transport``; refuses a transport that cannot deliver invalidations."""
        from ..transport.cluster import ClusterTransport
        from ..transport.memory import MemoryTransport
        from ..transport.multiplexed import MultiplexedTransport
        from ..transport.sentinel import SentinelTransport

        # The sentinel transport carries the hook to each new primary after a failover;
        # a cluster forwards the handler and the hook to every node's transport.
        if isinstance(transport, MultiplexedTransport | SentinelTransport | ClusterTransport):
            if transport.settings.protocol != 3:
                raise ConfigurationError(
                    "near_cache: the multiplexed transport must speak RESP3 (protocol=3) to receive invalidations"
                )
            tracker = cls(near, transport, near.options.mode)
            transport.add_push_handler(near.on_push)
            tracker._hook = transport.add_session_hook(
                tracking_commands(near), on_ready=tracker._ready, on_lost=tracker._lost
            )
            interval = near.options.heartbeat_seconds
            if interval is not None:
                tracker._heartbeat = asyncio.get_running_loop().create_task(
                    tracker._beat(interval), name="neuroglia-redis-near-cache-heartbeat"
                )
            return tracker
        if isinstance(transport, MemoryTransport):
            tracker = cls(near, transport, "in-process")
            transport.add_push_handler(near.on_push)
            near.ready = True
            near.trusted_until = _INF
            return tracker
        raise ConfigurationError(
            f"near_cache: the transport {type(transport).__name__} cannot deliver invalidations; the near cache "
            "needs the multiplexed transport (redis://, rediss://, unix://, redis+sentinel://) or memory://"
        )

    # -- the session hook's news ---------------------------------------------------------

    def _ready(self, serial: int) -> None:
        """Tracking is on for shared connection ``serial``: reads may be kept, hits served."""
        if not self.active:
            return
        self._connections.add(serial)
        near = self.near
        near.ready = True
        near.trusted_until = max(near.trusted_until, near._clock() + near.trust_window)

    def _lost(self, serial: int) -> None:
        """Connection ``serial`` is gone, with whatever it would have told: forget everything."""
        if not self.active:
            return
        self._connections.discard(serial)
        near = self.near
        if not self._connections:
            near.ready = False
            near.trusted_until = 0.0
        near.flush("connection_lost")

    # -- the heartbeat -----------------------------------------------------------------------

    async def _beat(self, interval: float) -> None:
        near = self.near
        loop = asyncio.get_running_loop()
        while self.active:
            await asyncio.sleep(interval)
            sent = near._clock()
            try:
                await self.transport.execute(("PING",), loop.time() + interval)
            except CacheException as exc:
                # No proof this time: hits stop once the last one is two intervals old.
                _log.debug("near cache heartbeat failed: %s", exc)
                continue
            if self.active and self._connections:
                near.trusted_until = max(near.trusted_until, sent + near.trust_window)

    # -- lifetime --------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop listening (the hook's state stays on open connections until they close)."""
        if not self.active:
            return
        self.active = False
        transport: Any = self.transport
        transport.remove_push_handler(self.near.on_push)
        if self._hook is not None:
            transport.remove_session_hook(self._hook)
        if self._heartbeat is not None:
            self._heartbeat.cancel()

    async def stopped(self) -> None:
        """Wait until the heartbeat has ended."""
        task = self._heartbeat
        if task is not None and task is not asyncio.current_task():
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def __repr__(self) -> str:
        return f"Tracker(mode={self.mode}, connections={sorted(self._connections)}, active={self.active})"
