"""Optimistic transactions: ``WATCH`` keys, read them, write only if nobody changed them meanwhile.

``MULTI``/``EXEC`` alone isolates a batch but cannot make it depend on what
was read before it. With ``WATCH`` it can: on a connection of its own, the
keys are watched, read, and the transaction's ``EXEC`` runs nothing
(:class:`~neuroglia.data.redis.TransactionAbortedError`) when another client
changed one of them in between. :meth:`RedisRepository.optimistic_async`
reads and retries until the write goes through.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from ..commands import HashCommands, KeyCommands, ListCommands, SetCommands, SortedSetCommands, StringCommands
from ..core.command import Command
from ..core.executor import Executor
from ..core.replies import ok
from ..exceptions import InvalidArgumentError, TransactionAbortedError
from ..transport.contract import Args, PoolStats, Session, Transport
from .pipeline import Pipeline

if TYPE_CHECKING:
    from .repository import RedisRepository

__all__ = ["Watch", "watching"]


class Watch(StringCommands, KeyCommands, HashCommands, ListCommands, SetCommands, SortedSetCommands):
    """The repository's commands on one dedicated connection holding ``WATCH`` on some keys.

    Reads (``await watch.get_async(...)``) run at once, on that connection.
    :meth:`transaction` queues the writes, sent as ``MULTI``/``EXEC`` when
    its block ends: all of them run, or (a watched key changed) none, and
    :class:`~neuroglia.data.redis.TransactionAbortedError` is raised. A
    write sent outside :meth:`transaction` is applied at once, unguarded.
    """

    _command_mode: ClassVar[Literal["run", "queue"] | None] = "run"

    def __init__(self, repository: RedisRepository, executor: Executor) -> None:
        self._executor = executor
        self._run = executor.run
        self._arg = repository._arg
        self._reply = repository._reply
        self._codec = repository._codec

    async def watch_async(self, *keys: str | bytes) -> None:
        """Watch more keys (before the transaction)."""
        await self._run(Command(("WATCH", *self._arg.nonempty_keys(list(keys))), ok))

    def transaction(self) -> Pipeline:
        """The writes, queued, then ``MULTI``/``EXEC`` at the end of the ``async with`` block."""
        return Pipeline(self, transaction=True)


class _SessionTransport:
    """A dedicated session seen as a transport, for the executor."""

    def __init__(self, session: Session, parent: Transport) -> None:
        self._session = session
        self._parent = parent

    async def execute(self, args: Args, deadline: float | None = None) -> Any:
        return await self._session.execute(args, deadline)

    async def execute_blocking(self, args: Args, timeout: float) -> Any:
        raise InvalidArgumentError(f"{args[0]}: a blocking command cannot run on a watched connection")

    async def execute_many(self, commands: Sequence[Args], *, transaction: bool) -> list[Any]:
        if not transaction:
            raise InvalidArgumentError("only a transaction can be queued on a watched connection")
        results = await self._session.transaction(commands)
        if results is None:
            raise TransactionAbortedError("EXEC: a watched key changed before the transaction ran; nothing ran")
        return results

    def dedicated(self) -> AbstractAsyncContextManager[Session]:
        raise InvalidArgumentError("a watched connection is already dedicated")

    async def close(self) -> None:
        return None

    def pool_stats(self) -> PoolStats:
        return self._parent.pool_stats()


@asynccontextmanager
async def watching(
    repository: RedisRepository, transport: Transport, keys: Sequence[str | bytes]
) -> AsyncIterator[Watch]:
    """A :class:`Watch` on a dedicated connection of ``transport``, watching ``keys``."""
    async with transport.dedicated() as session:
        watch = Watch(repository, repository._executor.bound_to(_SessionTransport(session, transport)))
        if keys:
            await watch.watch_async(*keys)
        yield watch
