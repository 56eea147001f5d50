"""The cluster transport: one multiplexed transport per node, commands routed by hash slot.

Every command's keys give its slot (:mod:`.commands`, :mod:`.slots`); the
slot map (:mod:`.topology`) names the node; the node's
:class:`~neuroglia.data.redis.transport.multiplexed.MultiplexedTransport`
sends it, multiplexed with every other caller's commands to that node.
Commands that span slots, or that concern every node (``SCAN``,
``DBSIZE``, ``INFO``...), are split and merged by :mod:`.fanout`.

Routing follows the cluster as it changes, within the command's deadline
and at most ``max_redirects`` times per command:

* ``MOVED``: the slot has a new owner; the map is patched at once and a
  full refresh is started; the command is resent there;
* ``ASK``: this key is already on the node importing the slot; the command
  is resent there once, right after ``ASKING`` on the same connection;
* ``TRYAGAIN`` (a multi-key command during a migration), ``CLUSTERDOWN``
  and ``READONLY`` (a demoted primary): short pause, refresh, resend;
* a node that cannot be reached: the map is refreshed (asking the other
  nodes) and a command that was not sent is resent when the slot now has
  another owner (its replica was promoted); otherwise the outage is raised
  as :class:`~neuroglia.data.redis.CacheUnavailableError`.

None of these replies ever reaches the caller as such. The map is also
refreshed every ``refresh_interval`` seconds while commands flow.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from neuroglia.data.redis.exceptions import (
    CacheCommandError,
    CacheException,
    CacheTimeoutError,
    CacheUnavailableError,
    ClusterNodeUnavailableError,
    Delivery,
)

from ..contract import Args, PoolStats
from ..multiplexed import ConnectionSettings
from .commands import READ_ONLY, command_key, keys_of, what_of
from .discovery import DOWN_FOR, MIN_REFRESH_GAP, SlotMapKeeper
from .fanout import SPECIAL, run_pipeline, run_transaction
from .session import ClusterSession
from .slots import single_slot
from .topology import Address, SlotMap, redirection, retryable

__all__ = ["ClusterTransport"]

_REFUSED_PROBE = 0.2  # how long a command waits on a node that just refused connections


class ClusterTransport(SlotMapKeeper):
    """A :class:`~neuroglia.data.redis.transport.Transport` over a Redis Cluster (see the module docstring).

    ``seeds`` are the nodes first asked for the slot map; ``node_settings``
    builds the connection settings of any node the cluster names.
    ``read_from`` sends read-only commands to replicas (``"replica"``) or
    spreads them over a shard's nodes (``"nearest"``).
    """

    def __init__(
        self,
        seeds: Sequence[Address],
        node_settings: Callable[[str, int], ConnectionSettings],
        *,
        read_from: str = "primary",
        refresh_interval: float = 30.0,
        max_redirects: int = 5,
    ) -> None:
        super().__init__(seeds, node_settings, read_from=read_from, refresh_interval=refresh_interval)
        self.max_redirects = max_redirects
        self._keyless: set[str] = set()

    # -- routing -------------------------------------------------------------------------

    async def execute(self, args: Args, deadline: float | None = None) -> Any:
        """Send one command to the node serving its keys' slot (or split it, see :mod:`.fanout`)."""
        name = command_key(args[0])
        special = SPECIAL.get(name)
        if special is not None:
            return await special(self, args, deadline)
        slot = await self.slot_of(name, args, deadline)
        return await self.routed(args, slot, deadline, read=name in READ_ONLY)

    async def slot_of(self, name: str, args: Args, deadline: float | None) -> int | None:
        """The one slot of the command's keys (``None`` for a keyless one); cross-slot raises."""
        keys = keys_of(args)
        if keys is None:
            keys = await self._server_keys(name, args, deadline)
        return single_slot(name, keys, what_of(name)) if keys else None

    async def _server_keys(self, name: str, args: Args, deadline: float | None) -> list[Any]:
        """``COMMAND GETKEYS`` for a command the table does not know."""
        if name in self._keyless:
            return []
        try:
            reply = await self.routed(("COMMAND", "GETKEYS", *args), None, deadline)
        except CacheCommandError as exc:
            if "no key arguments" in str(exc):
                self._keyless.add(name)
            return []  # an unknown or malformed command: the server that receives it says so
        return list(reply or ())

    async def routed(
        self,
        args: Args,
        slot: int | None,
        deadline: float | None,
        *,
        read: bool = False,
        blocking: float | None = None,
        address: Address | None = None,
    ) -> Any:
        """Send ``args`` to the node serving ``slot`` (any primary for ``None``), following redirections."""
        asking: Address | None = None
        last: CacheException | None = None
        for _ in range(self.max_redirects + 1):
            current = self._map if self._map is not None else await self.topology(deadline)
            if asking is not None:
                target, replica = asking, False
            elif address is not None:
                target, replica = address, False
            else:
                target, replica = await self._target(current, slot, read, args, deadline)
            send_deadline = deadline
            if (
                self._refused
                and slot is not None
                and asking is None
                and self._refused.get(target, 0.0) > asyncio.get_running_loop().time()
            ):
                # The node refused connections a moment ago (crashed?): look at the
                # map again first, and do not wait out its reconnect backoff.
                target, replica, send_deadline = await self._around_refused(target, slot, read, args, deadline)
            transport = self.node(target, replica=replica)
            try:
                if asking is not None:
                    replies = await transport.execute_many((("ASKING",), args), transaction=False)
                    if isinstance(replies[1], CacheException):
                        raise replies[1]
                    return replies[1]
                if blocking is not None:
                    return await transport.execute_blocking(args, blocking)
                return await transport.execute(args, send_deadline)
            except CacheException as exc:
                last, asking = exc, None
                follow = await self.recover(exc, target, slot, deadline)
                if follow is None:
                    raise self.node_outage(exc, target) from exc.__cause__
                if follow.kind == "ASK":
                    asking = follow.address
                address = None
        assert last is not None
        raise CacheUnavailableError(
            f"{command_key(args[0])}: still redirected after {self.max_redirects} redirections (the cluster's "
            f"slots are moving): {last}"
        ).with_delivery(Delivery.NOT_APPLIED) from last

    async def _target(
        self, current: SlotMap, slot: int | None, read: bool, args: Args, deadline: float | None
    ) -> tuple[Address, bool]:
        if slot is None:
            primaries = current.primaries()
            return primaries[next(self._turn) % len(primaries)], False
        shard = current.shard(slot)
        if shard is None:
            shard = (await self.refresh(deadline)).shard(slot)
            if shard is None:
                raise CacheUnavailableError(
                    f"{command_key(args[0])}: Redis Cluster unavailable: no node serves slot {slot} (CLUSTERDOWN)"
                ).with_delivery(Delivery.NOT_SENT)
        target = self.pick(shard, read)
        return target, target != shard.primary

    async def recover(
        self, error: CacheException, target: Address, slot: int | None, deadline: float | None
    ) -> _Follow | None:
        """What to do after ``error`` from ``target``: a :class:`_Follow` to resend, or ``None`` to raise it."""
        moved = redirection(error)
        if moved is not None:
            if moved.kind == "MOVED":
                if self._map is not None:
                    self._map = self._map.moved(moved.slot, moved.address)
                self.request_refresh()
            return _Follow(moved.kind, moved.address)
        code = retryable(error) or ("READONLY" if "READONLY" in str(error) else None)
        if code is not None:
            self.request_refresh()
            await self._pause(0.05 if code == "TRYAGAIN" else 0.1, deadline, error)
            return _Follow(code, target)
        if isinstance(error, CacheUnavailableError) and error.delivery is not Delivery.NOT_APPLIED:
            self.mark_down(target)
            if error.delivery is Delivery.NOT_SENT and not isinstance(error, CacheTimeoutError):
                self._refused[target] = asyncio.get_running_loop().time() + DOWN_FOR
                self._follow_failover(target)
            if error.delivery is not Delivery.NOT_SENT or slot is None:
                self.request_refresh()
                return None
            try:
                fresh = await self.refresh(deadline)
            except CacheException:
                return None
            shard = fresh.shard(slot)
            if shard is not None and shard.primary != target:
                return _Follow("FAILOVER", shard.primary)
        return None

    async def _around_refused(
        self, target: Address, slot: int, read: bool, args: Args, deadline: float | None
    ) -> tuple[Address, bool, float | None]:
        loop = asyncio.get_running_loop()
        now = loop.time()
        current = self._map
        if now - self._refreshed_at >= MIN_REFRESH_GAP or current is None:
            with contextlib.suppress(CacheException):
                current = await self.refresh(deadline)
        assert current is not None
        new_target, replica = await self._target(current, slot, read, args, deadline)
        if new_target != target:
            return new_target, replica, deadline
        quick = loop.time() + _REFUSED_PROBE
        return target, replica, quick if deadline is None else min(deadline, quick)

    def node_outage(self, error: CacheException, target: Address) -> CacheException:
        """``error`` from the node at ``target``, as a :class:`ClusterNodeUnavailableError` if others answer.

        Only a lost or refused connection is one node's trouble; timeouts,
        TLS refusals and the server's own refusals stay what they are.
        """
        if type(error) is not CacheUnavailableError or error.delivery is Delivery.NOT_APPLIED or self._map is None:
            return error
        now = asyncio.get_running_loop().time()
        others = [a for a in self._map.primaries() if a != target]
        if not others or all(self._down.get(a, 0.0) > now for a in others):
            return error
        outage = ClusterNodeUnavailableError(
            f"{error.args[0] if error.args else error} (one node of the cluster; the others serve)"
        ).with_delivery(error.delivery or Delivery.NOT_SENT)
        outage.__cause__ = error.__cause__
        return outage

    @staticmethod
    async def _pause(seconds: float, deadline: float | None, error: CacheException) -> None:
        if deadline is not None and asyncio.get_running_loop().time() + seconds >= deadline:
            raise error
        await asyncio.sleep(seconds)

    # -- the rest of the contract ----------------------------------------------------------

    async def execute_blocking(self, args: Args, timeout: float) -> Any:
        """A blocking command (``BLPOP``...) on a dedicated connection of the node serving its keys."""
        name = command_key(args[0])
        slot = await self.slot_of(name, args, None)
        return await self.routed(args, slot, None, blocking=timeout)

    async def execute_many(self, commands: Sequence[Args], *, transaction: bool) -> list[Any]:
        """A pipeline (grouped per node, in parallel, replies in order) or a one-slot transaction."""
        if transaction:
            return await run_transaction(self, commands)
        return await run_pipeline(self, commands)

    @contextlib.asynccontextmanager
    async def dedicated(self) -> AsyncIterator[ClusterSession]:
        """A session bound, on its first keyed command, to a dedicated connection of that key's node."""
        session = ClusterSession(self)
        try:
            yield session
        finally:
            await session.end()

    async def close(self) -> None:
        """Close every node's connections; a later command reconnects (with the slot map it knew)."""
        for task in (self._refreshing, self._follower):
            if task is not None and not task.done():
                task.cancel()
        self._refreshing = self._follower = None
        self._suspects.clear()
        for transport in list(self._nodes.values()):
            await transport.close()

    def pool_stats(self) -> PoolStats:
        """The sums over every node's transport."""
        stats = [t.pool_stats() for t in self._nodes.values()]
        return PoolStats(
            created_connections=sum(s.created_connections for s in stats),
            in_use_connections=sum(s.in_use_connections for s in stats),
            available_connections=sum(s.available_connections for s in stats),
            max_connections=sum(s.max_connections for s in stats)
            or self._node_settings(*self._seeds[0]).max_connections,
        )

    def __repr__(self) -> str:
        return f"ClusterTransport(seeds={len(self._seeds)}, map={self._map!r}, read_from={self.read_from})"


class _Follow:
    """Where :meth:`ClusterTransport.recover` says to resend: ``kind`` is ``MOVED``, ``ASK``, ``TRYAGAIN``..."""

    __slots__ = ("address", "kind")

    def __init__(self, kind: str, address: Address) -> None:
        self.kind = kind
        self.address = address
