"""Reads from replicas (``read_from="replica"`` or ``"nearest"``).

Only single commands that never change anything go to a replica (the
repository's reads: ``GET``, ``MGET``, ``HGETALL``, ``SMEMBERS``, ``ZRANGE``,
``SCAN``...); writes, batches, transactions, scripts, blocking commands and
health checks (``PING``, ``INFO``) always go to the primary.

The replicas are those the sentinels list for the service, without the ones
flagged down or disconnected, or whose link to the primary is broken. The
list is refreshed every ``refresh_interval`` seconds in the background and
after a replica fails; while no replica is known, reads go to the primary.
``"replica"`` spreads reads over the replicas in turn; ``"nearest"`` picks
the server (primary included) that answered a ``PING`` fastest at the last
refresh.

A replica is asynchronously replicated: a read there may miss a write the
primary acknowledged a moment ago (see ``docs/scale-out.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from typing import Final

from neuroglia.data.redis.exceptions import CacheException, ConfigurationError

from ..contract import Args
from ..invalidation import READ_ONLY_COMMANDS
from ..multiplexed import MultiplexedTransport
from .resolver import Address, SentinelResolver

__all__ = ["READ_FROM", "REPLICA_COMMANDS", "ReplicaRouter"]

_log = logging.getLogger("neuroglia.data.redis")

READ_FROM: Final = ("primary", "replica", "nearest")

# Reads a replica can serve. Connection and server commands stay on the primary
# (a health check must see the primary), and so do transactions and PUBLISH.
REPLICA_COMMANDS: Final[frozenset[str]] = READ_ONLY_COMMANDS - {
    "PING", "ECHO", "INFO", "TIME", "CLIENT", "HELLO", "AUTH", "COMMAND", "SCRIPT", "WATCH", "UNWATCH",
    "MULTI", "EXEC", "DISCARD", "PUBLISH", "WAIT",
}  # fmt: skip


def command_key(args: Args) -> str:
    """The command's name in capitals."""
    name = args[0]
    if isinstance(name, bytes):
        return name.decode("ascii", "replace").upper()
    return str(name).upper()


class ReplicaRouter:
    """Picks the server a read goes to; see the module docstring."""

    def __init__(
        self,
        mode: str,
        resolver: SentinelResolver,
        build: Callable[[Address], MultiplexedTransport],
        primary: Callable[[], tuple[Address | None, MultiplexedTransport | None]],
        *,
        refresh_interval: float = 5.0,
    ) -> None:
        if mode not in READ_FROM:
            raise ConfigurationError(f"read_from: must be one of {', '.join(READ_FROM)}, got {mode!r}")
        self.mode = mode
        self.enabled = mode != "primary"
        """Reads may go to replicas."""
        self._resolver = resolver
        self._build = build
        self._primary = primary
        self._refresh_interval = refresh_interval
        self._transports: dict[Address, MultiplexedTransport] = {}
        self._usable: list[Address] = []
        self._nearest: Address | None = None  # None: the primary is nearest (or nothing measured yet)
        self._turn = itertools.count()
        self._refreshed_at = -float("inf")
        self._refreshing: asyncio.Task[None] | None = None

    def serves(self, args: Args) -> bool:
        """``args`` is a read a replica may serve."""
        return self.mode != "primary" and command_key(args) in REPLICA_COMMANDS

    @property
    def replicas(self) -> list[Address]:
        """The replicas reads currently go to."""
        return list(self._usable)

    @property
    def transports(self) -> list[MultiplexedTransport]:
        """The replica transports open now."""
        return list(self._transports.values())

    def primary_changed(self, address: Address) -> None:
        """A failover: the new primary is no replica any more, and the old one may be one now."""
        if not self.enabled:
            return
        if address in self._usable:
            self._usable.remove(address)
        if self._nearest == address:
            self._nearest = None
        self._refresh_soon()

    async def pick(self, deadline: float | None) -> MultiplexedTransport | None:
        """The replica's transport for the next read, or ``None`` for the primary."""
        if time.monotonic() - self._refreshed_at >= self._refresh_interval:
            task = self._refresh_soon()
            if self._refreshed_at == -float("inf"):
                # The first read waits for the first list (bounded by its deadline).
                loop = asyncio.get_running_loop()
                with contextlib.suppress(TimeoutError, CacheException):
                    async with asyncio.timeout_at(deadline if deadline is not None else loop.time() + 1.0):
                        await asyncio.shield(task)
        if not self._usable:
            return None
        nearest = self.mode == "nearest"
        address = self._nearest if nearest else self._usable[next(self._turn) % len(self._usable)]
        return self._transports.get(address) if address is not None else None

    def failed(self, transport: MultiplexedTransport) -> None:
        """A read on ``transport`` failed: stop using that replica until the next refresh, and refresh."""
        for address, known in self._transports.items():
            if known is transport and address in self._usable:
                self._usable.remove(address)
                if self._nearest == address:
                    self._nearest = None
        self._refreshed_at = -float("inf") if not self._usable else self._refreshed_at
        self._refresh_soon()

    def _refresh_soon(self) -> asyncio.Task[None]:
        task = self._refreshing
        if task is None or task.done():
            task = self._refreshing = asyncio.get_running_loop().create_task(self._refresh())
        return task

    async def _refresh(self) -> None:
        primary, primary_transport = self._primary()
        try:
            replicas = await self._resolver.replicas()
        except CacheException as exc:
            _log.debug("neuroglia-redis: could not list the replicas: %s", exc)
            self._refreshed_at = time.monotonic() - self._refresh_interval / 2  # try again sooner
            return
        usable = [r.address for r in replicas if r.usable and r.address != primary]
        for address in usable:
            if address not in self._transports:
                self._transports[address] = self._build(address)
        for address in [a for a in self._transports if a not in usable]:
            await self._transports.pop(address).close()
        if self.mode == "nearest":
            self._nearest = await self._measure(usable, primary_transport)
        self._usable = usable
        self._refreshed_at = time.monotonic()

    async def _measure(self, usable: list[Address], primary: MultiplexedTransport | None) -> Address | None:
        """The replica that answers ``PING`` fastest, or ``None`` when the primary does (or nothing answers)."""
        loop = asyncio.get_running_loop()
        best: tuple[float, Address | None] = (float("inf"), None)
        candidates: list[tuple[Address | None, MultiplexedTransport]] = [(None, primary)] if primary else []
        candidates += [(address, self._transports[address]) for address in usable]
        for address, transport in candidates:  # the primary first: it wins ties
            started = loop.time()
            try:
                await transport.execute(("PING",), started + self._resolver.timeout)
            except CacheException:
                continue
            elapsed = loop.time() - started
            if elapsed < best[0]:
                best = (elapsed, address)
        return best[1]

    async def close(self) -> None:
        """Close the replica connections; the next read lists the replicas again."""
        task, self._refreshing = self._refreshing, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, CacheException):
                await task
        transports, self._transports = list(self._transports.values()), {}
        for transport in transports:
            await transport.close()
        self._usable = []
        self._nearest = None
        self._refreshed_at = -float("inf")
