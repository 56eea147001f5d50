"""A dedicated session on a cluster: ``WATCH`` ... ``MULTI``/``EXEC`` on the node of one slot.

The session is bound on its first command with keys: a dedicated
connection of the node serving that key's slot is borrowed then, and every
later command of the session must name keys of that same slot (a ``WATCH``
and the transaction it guards run on one node, and a slot is the unit that
moves between nodes). Keys of another slot raise
:class:`~neuroglia.data.redis.CacheCommandError` naming the slots. If the
slot moves meanwhile (``MOVED``/``ASK``), the session cannot follow its
``WATCH``: the command fails as unavailable (nothing ran), the map is
refreshed, and the caller's retry opens a new session on the new owner.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from neuroglia.data.redis.exceptions import CacheException, CacheUnavailableError, Delivery

from ..contract import Args, Session
from .commands import command_key, keys_of
from .slots import single_slot
from .topology import redirection, retryable

if TYPE_CHECKING:
    from .transport import ClusterTransport

__all__ = ["ClusterSession"]

_WHAT = "a WATCH session (WATCH ... MULTI/EXEC)"


class ClusterSession:
    """One dedicated connection of one node, chosen by the session's first key (see the module docstring)."""

    def __init__(self, cluster: ClusterTransport) -> None:
        self._cluster = cluster
        self._stack: contextlib.AsyncExitStack | None = None
        self._session: Session | None = None
        self._keys: list[Any] = []

    async def _keys_of(self, commands: Sequence[Args]) -> list[Any]:
        found: list[Any] = []
        for args in commands:
            keys = keys_of(args)
            if keys is None:
                keys = await self._cluster._server_keys(command_key(args[0]), args, None)
            found.extend(keys)
        return found

    async def _bind(self, name: str, keys: list[Any]) -> Session:
        slot = single_slot(name, [*self._keys[:1], *keys], _WHAT)
        if keys and not self._keys:
            self._keys.append(keys[0])
        if self._session is not None:
            return self._session
        current = await self._cluster.topology(None)
        shard = current.shard(slot) if slot is not None else None
        address = shard.primary if shard is not None else current.primaries()[0]
        stack = contextlib.AsyncExitStack()
        self._session = await stack.enter_async_context(self._cluster.node(address).dedicated())
        self._stack = stack
        return self._session

    def _moved(self, error: CacheException, name: str) -> CacheException:
        if redirection(error) is None and retryable(error) is None:
            return error
        self._cluster.request_refresh()
        return CacheUnavailableError(
            f"{name}: the slot of the session's keys is moving between nodes ({error}); nothing ran, "
            "retry the transaction"
        ).with_delivery(Delivery.NOT_APPLIED)

    async def execute(self, args: Args, deadline: float | None = None) -> Any:
        """Send one command on the session's connection (binding it on the first keyed command)."""
        name = command_key(args[0])
        session = await self._bind(name, await self._keys_of([args]))
        try:
            return await session.execute(args, deadline)
        except CacheException as exc:
            mapped = self._moved(exc, name)
            if mapped is exc:
                raise
            raise mapped from exc

    async def transaction(self, commands: Sequence[Args]) -> list[Any] | None:
        """``MULTI`` + ``commands`` + ``EXEC`` on the session's connection; keys must be in its slot."""
        session = await self._bind("MULTI", await self._keys_of(commands))
        try:
            return await session.transaction(commands)
        except CacheException as exc:
            mapped = self._moved(exc, "MULTI")
            if mapped is exc:
                raise
            raise mapped from exc

    async def end(self) -> None:
        """Give the connection back (closed if it holds a ``WATCH`` or an interrupted command)."""
        stack, self._stack, self._session = self._stack, None, None
        if stack is not None:
            await stack.aclose()
