"""Commands that span slots or nodes: split by slot, sent in parallel, merged in the caller's order.

* ``MGET``, ``DEL``, ``UNLINK``, ``EXISTS``, ``TOUCH``: one command per slot,
  each node's share in one batch, all nodes at once; values merged in the
  order of the caller's keys, counts summed.
* ``MSET``: one ``MSET`` per slot. **Not atomic across slots**: when a node
  fails, the other slots may have been written (the error then says
  ``MAYBE_APPLIED``).
* ``SINTER``/``SUNION``/``SDIFF`` across slots: computed here from each
  set's ``SMEMBERS`` (on the server when the keys share a slot). Their
  ``*STORE`` forms cannot be split and are refused (:mod:`.slots`).
* ``SCAN``: every primary in turn, with a composite cursor (the node's
  cursor shifted left by 10 bits, the node's index below), so a caller's
  ``while cursor != 0`` loop works unchanged. ``KEYS``: every primary.
* ``DBSIZE`` summed, ``FLUSHDB``/``FLUSHALL``/``SCRIPT LOAD|FLUSH``/
  ``FUNCTION LOAD|DELETE|FLUSH``/``CONFIG SET``/``CLIENT SETNAME`` sent to every
  primary, ``PING`` to every primary (it answers only when all do),
  ``INFO`` merged (:mod:`.info`).
* Pipelines: grouped per node and sent in parallel; transactions: one slot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from neuroglia.data.redis.exceptions import CacheCommandError, CacheException, CacheUnavailableError, Delivery

from ..contract import Args
from .commands import command_key, keys_of
from .info import merge_info
from .slots import key_slot, single_slot
from .topology import Address, redirection, retryable

if TYPE_CHECKING:
    from .transport import ClusterTransport

__all__ = ["SPECIAL", "run_parts", "run_pipeline", "run_transaction"]

Handler = Callable[["ClusterTransport", Args, "float | None"], Awaitable[Any]]
_NODE_BITS = 10  # a SCAN cursor keeps the node's index in its low bits (up to 1024 primaries)
_NODE_MASK = (1 << _NODE_BITS) - 1


class _Raised:
    """A failure of a whole share of a split command (an outage), as opposed to a server's refusal of one command."""

    __slots__ = ("error",)

    def __init__(self, error: CacheException) -> None:
        self.error = error


def _redo(reply: Any) -> bool:
    return isinstance(reply, CacheException) and bool(
        redirection(reply) or retryable(reply) or "READONLY" in str(reply)
    )


async def run_parts(
    cluster: ClusterTransport, parts: Sequence[tuple[int | None, Args]], deadline: float | None, *, read: bool = False
) -> list[Any]:
    """Each ``(slot, command)`` to its node, one batch per node, all at once; entries are replies,
    server refusals (:class:`CacheException`) or :class:`_Raised` outages."""
    current = await cluster.topology(deadline)
    groups: dict[Address | None, list[int]] = {}
    for index, (slot, _) in enumerate(parts):
        shard = current.shard(slot) if slot is not None else None
        groups.setdefault(cluster.pick(shard, read) if shard is not None else None, []).append(index)
    results: list[Any] = [None] * len(parts)

    async def one(index: int) -> None:
        slot, args = parts[index]
        try:
            results[index] = await cluster.routed(args, slot, deadline, read=read)
        except CacheUnavailableError as exc:
            results[index] = _Raised(exc)
        except CacheException as exc:
            results[index] = exc

    async def group(address: Address | None, indexes: list[int]) -> None:
        if address is None or len(indexes) == 1:
            await asyncio.gather(*(one(i) for i in indexes))
            return
        transport = cluster.node(address, replica=read and cluster.read_from != "primary")
        try:
            replies = await transport.execute_many([parts[i][1] for i in indexes], transaction=False)
        except CacheException as exc:
            if exc.delivery is Delivery.NOT_SENT:
                cluster.mark_down(address)
                await asyncio.gather(*(one(i) for i in indexes))  # re-routed after a refresh
            else:
                cluster.request_refresh()
                cluster.mark_down(address)
                outage = cluster.node_outage(exc, address)
                for i in indexes:
                    results[i] = _Raised(outage)
            return
        again = []
        for i, reply in zip(indexes, replies, strict=True):
            if _redo(reply):
                again.append(i)
            else:
                results[i] = reply
        if again:
            cluster.request_refresh()
            await asyncio.gather(*(one(i) for i in again))

    await asyncio.gather(*(group(a, i) for a, i in groups.items()))
    return results


def _raise_first(results: list[Any], *, partial_writes: bool) -> None:
    """Raise the first failure of a split command; a write applied on other slots makes it ``MAYBE_APPLIED``."""
    for entry in results:
        error = entry.error if isinstance(entry, _Raised) else entry if isinstance(entry, CacheException) else None
        if error is None:
            continue
        if partial_writes and any(not isinstance(e, _Raised | CacheException) for e in results):
            error.delivery = Delivery.MAYBE_APPLIED
        raise error


def _by_slot(keys: Sequence[Any]) -> dict[int, list[int]]:
    slots: dict[int, list[int]] = {}
    for position, key in enumerate(keys):
        slots.setdefault(key_slot(key), []).append(position)
    return slots


async def _split_keys(cluster: ClusterTransport, args: Args, deadline: float | None) -> Any:
    name = command_key(args[0])
    keys = args[1:]
    slots = _by_slot(keys)
    read = name in ("MGET", "EXISTS")
    if len(slots) <= 1:
        return await cluster.routed(args, next(iter(slots), None), deadline, read=read)
    order = list(slots.items())
    parts = [(slot, (args[0], *(keys[p] for p in positions))) for slot, positions in order]
    results = await run_parts(cluster, parts, deadline, read=read)
    _raise_first(results, partial_writes=not read)
    if name != "MGET":
        return sum(int(r) for r in results)
    merged: list[Any] = [None] * len(keys)
    for (_, positions), values in zip(order, results, strict=True):
        for position, value in zip(positions, values, strict=True):
            merged[position] = value
    return merged


async def _mset(cluster: ClusterTransport, args: Args, deadline: float | None) -> Any:
    pairs = list(zip(args[1::2], args[2::2], strict=False))
    slots: dict[int, list[Any]] = {}
    for key, value in pairs:
        slots.setdefault(key_slot(key), []).extend((key, value))
    if len(slots) <= 1:
        return await cluster.routed(args, next(iter(slots), None), deadline)
    results = await run_parts(cluster, [(slot, (args[0], *items)) for slot, items in slots.items()], deadline)
    _raise_first(results, partial_writes=True)
    return results[0]


async def _set_algebra(cluster: ClusterTransport, args: Args, deadline: float | None) -> Any:
    name = command_key(args[0])
    keys = args[1:]
    slots = _by_slot(keys)
    if len(slots) <= 1:
        return await cluster.routed(args, next(iter(slots), None), deadline, read=True)
    results = await run_parts(cluster, [(key_slot(k), ("SMEMBERS", k)) for k in keys], deadline, read=True)
    _raise_first(results, partial_writes=False)
    sets = [set(members) for members in results]
    if name == "SINTER":
        out = set.intersection(*sets)
    elif name == "SUNION":
        out = set.union(*sets)
    else:
        out = sets[0].difference(*sets[1:])
    return list(out)


async def _primaries(cluster: ClusterTransport, deadline: float | None) -> list[Address]:
    return (await cluster.topology(deadline)).primaries()


async def _everywhere(cluster: ClusterTransport, args: Args, deadline: float | None) -> list[Any]:
    """``args`` on every primary at once; the first failure is raised after all answered."""
    nodes = await _primaries(cluster, deadline)
    replies = await asyncio.gather(
        *(cluster.routed(args, None, deadline, address=a) for a in nodes), return_exceptions=True
    )
    for reply in replies:
        if isinstance(reply, BaseException):
            raise reply
    return list(replies)


async def _first_of_all(cluster: ClusterTransport, args: Args, deadline: float | None) -> Any:
    return (await _everywhere(cluster, args, deadline))[0]


async def _dbsize(cluster: ClusterTransport, args: Args, deadline: float | None) -> Any:
    return sum(int(r) for r in await _everywhere(cluster, args, deadline))


async def _keys(cluster: ClusterTransport, args: Args, deadline: float | None) -> Any:
    return [key for reply in await _everywhere(cluster, args, deadline) for key in reply]


async def _info(cluster: ClusterTransport, args: Args, deadline: float | None) -> Any:
    return merge_info(await _everywhere(cluster, args, deadline))


async def _scan(cluster: ClusterTransport, args: Args, deadline: float | None) -> Any:
    nodes = await _primaries(cluster, deadline)
    try:
        cursor = int(args[1])
    except (IndexError, ValueError, TypeError):
        raise CacheCommandError("SCAN: the cursor must be an integer").with_delivery(Delivery.NOT_SENT) from None
    index, node_cursor = cursor & _NODE_MASK, cursor >> _NODE_BITS
    if index >= len(nodes):
        return [b"0", []]
    reply = await cluster.routed((args[0], node_cursor, *args[2:]), None, deadline, address=nodes[index])
    following = int(reply[0])
    composite = following << _NODE_BITS | index if following else index + 1 if index + 1 < len(nodes) else 0
    return [str(composite).encode(), reply[1]]


def _subcommand(args: Args) -> str:
    return command_key(args[1]) if len(args) > 1 else ""


async def _script(cluster: ClusterTransport, args: Args, deadline: float | None) -> Any:
    sub = _subcommand(args)
    if sub == "EXISTS":
        replies = await _everywhere(cluster, args, deadline)
        return [int(all(int(r[i]) for r in replies)) for i in range(len(replies[0]))]
    if sub in ("LOAD", "FLUSH", "KILL"):
        return await _first_of_all(cluster, args, deadline)
    return await cluster.routed(args, None, deadline)


def _broadcast_when(*subcommands: str) -> Handler:
    async def handler(cluster: ClusterTransport, args: Args, deadline: float | None) -> Any:
        if _subcommand(args) in subcommands:
            return await _first_of_all(cluster, args, deadline)
        return await cluster.routed(args, None, deadline)

    return handler


SPECIAL: dict[str, Handler] = {
    **dict.fromkeys(("MGET", "DEL", "UNLINK", "EXISTS", "TOUCH"), _split_keys),
    "MSET": _mset,
    **dict.fromkeys(("SINTER", "SUNION", "SDIFF"), _set_algebra),
    "SCAN": _scan,
    "KEYS": _keys,
    "DBSIZE": _dbsize,
    "INFO": _info,
    **dict.fromkeys(("FLUSHDB", "FLUSHALL", "PING"), _first_of_all),
    "SCRIPT": _script,
    "FUNCTION": _broadcast_when("LOAD", "DELETE", "FLUSH", "RESTORE"),
    "CONFIG": _broadcast_when("SET", "RESETSTAT"),
    "CLIENT": _broadcast_when("SETNAME"),
}


async def run_pipeline(cluster: ClusterTransport, commands: Sequence[Args]) -> list[Any]:
    """A pipeline: commands grouped per node and sent at once, replies in the caller's order."""
    results: list[Any] = [None] * len(commands)
    parts: list[tuple[int | None, Args]] = []
    where: list[int] = []
    specials: list[int] = []
    for index, args in enumerate(commands):
        name = command_key(args[0])
        if name in SPECIAL:
            specials.append(index)
            continue
        try:
            slot = await cluster.slot_of(name, args, None)
        except CacheCommandError as exc:
            results[index] = exc  # refused alone (cross-slot), like a server's refusal
            continue
        parts.append((slot, args))
        where.append(index)

    async def special(index: int) -> None:
        try:
            results[index] = await cluster.execute(commands[index])
        except CacheUnavailableError as exc:
            results[index] = _Raised(exc)
        except CacheException as exc:
            results[index] = exc

    replies, *_ = await asyncio.gather(run_parts(cluster, parts, None), *(special(i) for i in specials))
    for index, reply in zip(where, replies, strict=True):
        results[index] = reply
    failures = [r for r in results if isinstance(r, _Raised)]
    if failures:
        error = failures[0].error
        if len(failures) < len(results):
            error.delivery = Delivery.MAYBE_APPLIED  # other nodes' shares ran
        raise error
    return results


async def run_transaction(cluster: ClusterTransport, commands: Sequence[Args]) -> list[Any]:
    """``MULTI``/``EXEC`` on the node of the one slot every key of ``commands`` is in."""
    keys: list[Any] = []
    for args in commands:
        found = keys_of(args)
        keys.extend(found if found is not None else await cluster._server_keys(command_key(args[0]), args, None))
    slot = single_slot("MULTI", keys, "a transaction (MULTI/EXEC)")
    last: CacheException | None = None
    for _ in range(cluster.max_redirects + 1):
        current = await cluster.topology(None)
        shard = current.shard(slot) if slot is not None else None
        target = shard.primary if shard is not None else current.primaries()[0]
        try:
            result: list[Any] = await cluster.node(target).execute_many(commands, transaction=True)
            return result
        except CacheException as exc:
            last = exc
            follow = await cluster.recover(exc, target, slot, None)
            if follow is None:
                raise
            if follow.kind == "ASK":
                await asyncio.sleep(0.05)  # the slot is migrating: a transaction waits until it has moved
    assert last is not None
    raise CacheUnavailableError(
        f"MULTI: still redirected after {cluster.max_redirects} redirections (the slot is moving): {last}"
    ).with_delivery(Delivery.NOT_APPLIED) from last
