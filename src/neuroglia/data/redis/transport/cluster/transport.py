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
import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from neuroglia.data.redis.exceptions import (
    CacheCommandError,
    CacheException,
    CacheTimeoutError,
    CacheUnavailableError,
    ConfigurationError,
    Delivery,
)

from ..contract import Args, PoolStats
from ..multiplexed import ConnectionSettings, MultiplexedTransport, PushHandler, SessionHook
from .commands import READ_ONLY, command_key, keys_of, what_of
from .fanout import SPECIAL, run_pipeline, run_transaction
from .session import ClusterSession
from .slots import single_slot
from .topology import Address, Shard, SlotMap, merge_addresses, parse_cluster_slots, redirection, retryable

__all__ = ["ClusterHook", "ClusterTransport"]

_MIN_REFRESH_GAP = 0.05  # refreshes asked for by errors are at most this often
_DOWN_FOR = 2.0  # a node that failed is asked last during refreshes for this long
_REFUSED_PROBE = 0.2  # how long a command waits on a node that just refused connections
_FOLLOW_EVERY = 0.1  # how often the map is read while a primary refuses connections
_FOLLOW_FOR = 30.0


class ClusterTransport:
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
        if not seeds:
            raise ConfigurationError("cluster_nodes: at least one seed node is needed")
        self._seeds = [(str(h), int(p)) for h, p in seeds]
        self._node_settings = node_settings
        self.read_from = read_from
        self.refresh_interval = refresh_interval
        self.max_redirects = max_redirects
        self._nodes: dict[Address, MultiplexedTransport] = {}
        self._readonly: set[Address] = set()
        self._map: SlotMap | None = None
        self._refreshing: asyncio.Task[SlotMap] | None = None
        self._refreshed_at = float("-inf")
        self._down: dict[Address, float] = {}
        self._refused: dict[Address, float] = {}
        self._suspects: set[Address] = set()  # primaries that refused connections: the map is followed until gone
        self._follower: asyncio.Task[None] | None = None
        self._keyless: set[str] = set()
        self._turn = itertools.count()
        self._push_handlers: list[PushHandler] = []
        self._hooks: list[ClusterHook] = []
        self._node_ids: dict[Address, int] = {}
        self._settings: ConnectionSettings | None = None

    # -- nodes and the slot map --------------------------------------------------------

    def node(self, address: Address, *, replica: bool = False) -> MultiplexedTransport:
        """The transport of the node at ``address`` (made on first use; ``READONLY`` on it for replica reads)."""
        transport = self._nodes.get(address)
        if transport is None:
            transport = self._nodes[address] = MultiplexedTransport(self._node_settings(*address))
            for handler in self._push_handlers:
                transport.add_push_handler(handler)
            for hook in self._hooks:
                self._attach(hook, address, transport)
        if replica and address not in self._readonly:
            self._readonly.add(address)
            transport.add_session_hook((("READONLY",),))
        return transport

    @property
    def settings(self) -> ConnectionSettings:
        """The connection settings of the first seed (every node's are the same but for the address)."""
        if self._settings is None:
            self._settings = self._node_settings(*self._seeds[0])
        return self._settings

    # -- push messages and session hooks, on every node (for the near cache) ----------------

    def add_push_handler(self, handler: PushHandler) -> None:
        """Call ``handler`` with the push messages of every node's shared connections (now and later)."""
        self._push_handlers.append(handler)
        for transport in self._nodes.values():
            transport.add_push_handler(handler)

    def remove_push_handler(self, handler: PushHandler) -> None:
        """Stop calling ``handler``."""
        if handler in self._push_handlers:
            self._push_handlers.remove(handler)
        for transport in self._nodes.values():
            transport.remove_push_handler(handler)

    def add_session_hook(
        self,
        commands: Sequence[Args],
        *,
        on_ready: Callable[[int], None] | None = None,
        on_lost: Callable[[int], None] | None = None,
    ) -> ClusterHook:
        """Run ``commands`` on every shared connection of every node, now and later (see the multiplexed transport).

        ``on_ready``/``on_lost`` get a connection number unique across the
        nodes (the node's number times 2**32 plus its own connection number).
        """
        hook = ClusterHook(tuple(tuple(a) for a in commands), on_ready, on_lost)
        self._hooks.append(hook)
        for address, transport in list(self._nodes.items()):
            self._attach(hook, address, transport)
        return hook

    def remove_session_hook(self, hook: ClusterHook) -> None:
        """Stop running ``hook`` on new connections and stop its callbacks."""
        if hook in self._hooks:
            self._hooks.remove(hook)
        for address, inner in hook.per_node.items():
            transport = self._nodes.get(address)
            if transport is not None:
                transport.remove_session_hook(inner)
        hook.per_node.clear()

    def _attach(self, hook: ClusterHook, address: Address, transport: MultiplexedTransport) -> None:
        base = self._node_ids.setdefault(address, len(self._node_ids)) << 32
        ready, lost = hook.on_ready, hook.on_lost
        hook.per_node[address] = transport.add_session_hook(
            hook.commands,
            on_ready=None if ready is None else (lambda serial: ready(base + serial)),
            on_lost=None if lost is None else (lambda serial: lost(base + serial)),
        )

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
        if asyncio.get_running_loop().time() - self._refreshed_at >= _MIN_REFRESH_GAP:
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
            self._down[address] = loop.time() + _DOWN_FOR
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
        self._down[address] = asyncio.get_running_loop().time() + _DOWN_FOR

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
                    raise
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
                self._refused[target] = asyncio.get_running_loop().time() + _DOWN_FOR
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

    async def _around_refused(
        self, target: Address, slot: int, read: bool, args: Args, deadline: float | None
    ) -> tuple[Address, bool, float | None]:
        loop = asyncio.get_running_loop()
        now = loop.time()
        current = self._map
        if now - self._refreshed_at >= _MIN_REFRESH_GAP or current is None:
            with contextlib.suppress(CacheException):
                current = await self.refresh(deadline)
        assert current is not None
        new_target, replica = await self._target(current, slot, read, args, deadline)
        if new_target != target:
            return new_target, replica, deadline
        quick = loop.time() + _REFUSED_PROBE
        return target, replica, quick if deadline is None else min(deadline, quick)

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


@dataclass(eq=False)
class ClusterHook:
    """A session hook of the cluster: the same hook on every node's transport (see ``add_session_hook``)."""

    commands: tuple[Args, ...]
    on_ready: Callable[[int], None] | None = None
    on_lost: Callable[[int], None] | None = None
    per_node: dict[Address, SessionHook] = field(default_factory=dict)


class _Follow:
    """Where :meth:`ClusterTransport.recover` says to resend: ``kind`` is ``MOVED``, ``ASK``, ``TRYAGAIN``..."""

    __slots__ = ("address", "kind")

    def __init__(self, kind: str, address: Address) -> None:
        self.kind = kind
        self.address = address


def _consume(task: asyncio.Task[Any]) -> None:
    """Background refreshes report to whoever awaits them; an unawaited failure is not "never retrieved"."""
    if not task.cancelled():
        task.exception()
