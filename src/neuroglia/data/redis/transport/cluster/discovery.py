"""The slot map of a cluster: read from the nodes, refreshed, and followed through a failover.

A refresh asks every known node at once (``CLUSTER SLOTS``) and takes the
first map that routes no slot to a primary refusing connections; while such
a primary is still in the map, the map is read again every 100 ms, so the
first command after its replica's promotion goes to the new primary. Errors
ask for refreshes too (at most every 50 ms), and the map is refreshed every
``refresh_interval`` seconds while commands flow.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence
from typing import Any

from neuroglia.data.redis.exceptions import (
    CacheCommandError,
    CacheException,
    CacheTimeoutError,
    CacheUnavailableError,
    ConfigurationError,
    Delivery,
)

from ..multiplexed import ConnectionSettings
from .nodes import Nodes
from .topology import Address, Shard, SlotMap, merge_addresses, parse_cluster_slots

__all__ = ["DOWN_FOR", "MIN_REFRESH_GAP", "SlotMapKeeper"]

MIN_REFRESH_GAP = 0.05  # refreshes asked for by errors are at most this often
DOWN_FOR = 2.0  # a node that failed is asked last during refreshes for this long
_FOLLOW_EVERY = 0.1  # how often the map is read while a primary refuses connections
_FOLLOW_FOR = 30.0


class SlotMapKeeper(Nodes):
    """The nodes, and which of them serves each slot now (see the module docstring)."""

    def __init__(
        self,
        seeds: Sequence[Address],
        node_settings: Callable[[str, int], ConnectionSettings],
        *,
        read_from: str,
        refresh_interval: float,
    ) -> None:
        super().__init__(seeds, node_settings)
        self.read_from = read_from
        self.refresh_interval = refresh_interval
        self._map: SlotMap | None = None
        self._refreshing: asyncio.Task[SlotMap] | None = None
        self._refreshed_at = float("-inf")
        self._down: dict[Address, float] = {}
        self._refused: dict[Address, float] = {}
        self._suspects: set[Address] = set()  # primaries that refused connections: the map is followed until gone
        self._follower: asyncio.Task[None] | None = None
        self._turn = itertools.count()

    @property
    def slot_map(self) -> SlotMap | None:
        """The slot map in use (``None`` before the first command)."""
        return self._map

    async def topology(self, deadline: float | None) -> SlotMap:
        """The slot map, discovered first if need be; starts a periodic refresh when it is old."""
        current = self._map
        if current is None:
            return await self.refresh(deadline)
        if asyncio.get_running_loop().time() - self._refreshed_at > self.refresh_interval:
            self._start_refresh()
        return current

    def request_refresh(self) -> None:
        """Refresh the map soon (an error suggested it changed); at most every 50 ms."""
        if asyncio.get_running_loop().time() - self._refreshed_at >= MIN_REFRESH_GAP:
            self._start_refresh()

    def _start_refresh(self) -> asyncio.Task[SlotMap]:
        task = self._refreshing
        if task is None or task.done():
            task = self._refreshing = asyncio.get_running_loop().create_task(self._discover())
            task.add_done_callback(_consume)
        return task

    async def refresh(self, deadline: float | None) -> SlotMap:
        """Read the slot map again (sharing a refresh under way), waiting at most until ``deadline``."""
        task = self._start_refresh()
        try:
            async with asyncio.timeout_at(deadline):
                return await asyncio.shield(task)
        except TimeoutError:
            raise CacheTimeoutError(
                "the operation deadline passed while reading the cluster's slot map; not sent"
            ).with_delivery(Delivery.NOT_SENT) from None

    async def _discover(self) -> SlotMap:
        """Ask every known node at once; take the first map that routes no slot to a node refusing connections.

        During a failover the nodes' views differ for a moment: the promoted
        replica (and soon the others) already name it, a lagging node still
        names the dead primary. A map naming only reachable primaries wins;
        failing that, the first answer does.
        """
        loop = asyncio.get_running_loop()
        known = self._map
        candidates = merge_addresses(
            known.primaries() if known else (), sorted(known.addresses()) if known else (), self._seeds
        )
        failures: list[str] = []
        fallback: SlotMap | None = None
        asks = [loop.create_task(self._ask(address, failures)) for address in candidates]
        try:
            for next_answer in asyncio.as_completed(asks):
                found = await next_answer
                if found is None:
                    continue
                now = loop.time()
                refused = {a for a, until in self._refused.items() if until > now} | self._suspects
                if not refused.intersection(found.primaries()):
                    return self._install(found)
                fallback = fallback or found
        finally:
            for task in asks:
                task.cancel()
        if fallback is not None:
            return self._install(fallback)
        self._refreshed_at = loop.time()
        raise CacheUnavailableError(
            f"Redis Cluster unavailable: no node answered for the slot map ({'; '.join(failures[:6])})"
        ).with_delivery(Delivery.NOT_SENT)

    def _install(self, found: SlotMap) -> SlotMap:
        self._map = found
        self._refreshed_at = asyncio.get_running_loop().time()
        return found

    async def _ask(self, address: Address, failures: list[str]) -> SlotMap | None:
        """``CLUSTER SLOTS`` of one node (``None`` when it cannot tell); a non-cluster node is refused."""
        loop = asyncio.get_running_loop()
        transport = self.node(address)
        bound = transport.settings.socket_connect_timeout or 1.0
        try:
            reply = await transport.execute(("CLUSTER", "SLOTS"), loop.time() + min(1.0, bound))
        except CacheCommandError as exc:
            if "cluster support disabled" in str(exc) or "unknown command" in str(exc).lower():
                raise ConfigurationError(
                    f"url: the node {address[0]}:{address[1]} is not part of a Redis Cluster (it answered "
                    f"CLUSTER SLOTS with: {exc}); use redis:// for a standalone server, or start it with "
                    "cluster-enabled yes"
                ).with_delivery(Delivery.NOT_SENT) from None
            failures.append(f"{address[0]}:{address[1]}: {exc}")
            return None
        except CacheException as exc:
            self._down[address] = loop.time() + DOWN_FOR
            failures.append(f"{address[0]}:{address[1]}: {exc}")
            return None
        found = parse_cluster_slots(reply, address)
        if found.covered == 0:
            failures.append(f"{address[0]}:{address[1]}: serves no slot yet")
            return None
        return found

    def pick(self, shard: Shard, read: bool) -> Address:
        """The node of ``shard`` a command goes to: its primary, or for a read a replica as ``read_from`` says."""
        if not read or self.read_from == "primary" or not shard.replicas:
            return shard.primary
        now = asyncio.get_running_loop().time()
        pool = shard.replicas if self.read_from == "replica" else [shard.primary, *shard.replicas]
        healthy = [a for a in pool if self._down.get(a, 0.0) <= now]
        if not healthy:
            return shard.primary
        return healthy[next(self._turn) % len(healthy)]

    def mark_down(self, address: Address) -> None:
        """``address`` just failed to answer: ask it last during refreshes, send no replica reads to it."""
        self._down[address] = asyncio.get_running_loop().time() + DOWN_FOR

    def _follow_failover(self, address: Address) -> None:
        """Refresh the map every 100 ms (for at most 30 s) while it names ``address``, a primary refusing connections.

        A crashed primary's replica is promoted without any command of ours:
        following the map meanwhile lets the first command (or the circuit
        breaker's recovery probe) after the promotion go to the new primary.
        """
        if self._map is None or address not in self._map.primaries():
            return
        self._suspects.add(address)
        if self._follower is None or self._follower.done():
            self._follower = asyncio.get_running_loop().create_task(self._follow())

    async def _follow(self) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + _FOLLOW_FOR
        while self._suspects and loop.time() < end:
            await asyncio.sleep(_FOLLOW_EVERY)
            try:
                found = await self.refresh(loop.time() + 1.0)
            except CacheException:
                continue
            self._suspects &= set(found.primaries())
        self._suspects.clear()


def _consume(task: asyncio.Task[Any]) -> None:
    """Background refreshes report to whoever awaits them; an unawaited failure is not "never retrieved"."""
    if not task.cancelled():
        task.exception()
