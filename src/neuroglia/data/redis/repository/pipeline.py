"""Pipelines and MULTI/EXEC transactions over the repository's own command methods."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

from ..commands import (
    HashCommands,
    KeyCommands,
    KeyOperations,
    ListCommands,
    ServerCommands,
    ServerOperations,
    SetCommands,
    SortedSetCommands,
    StringCommands,
    StringOperations,
)
from ..core.command import Command, CommandQueue
from ..exceptions import CacheException, InvalidArgumentError
from ..serialization.deferred import Deferred

__all__ = ["Pipeline"]


class Pipeline(
    CommandQueue,
    StringCommands,
    KeyCommands,
    HashCommands,
    ListCommands,
    SetCommands,
    SortedSetCommands,
    ServerCommands,
):
    """Commands queued now, sent later in one round trip.

    Every repository method that maps to one command can be queued under its
    usual name and arguments: ``pipe.set_async("k", "v")``,
    ``pipe.incr_async("n")``. Calling it queues the command (the same
    validation as the repository, so bad input fails at once and nothing is
    queued) and returns the pipeline, so calls chain; awaiting the call is
    allowed and does nothing more. A method that is not one command
    (``scan_async``, ``set_many_async``) does not exist here.

    :meth:`execute` sends the queue and returns the outcomes in order. As an
    async context manager the queue is executed at the end of the block, and
    discarded if the block raises. With ``transaction=True`` the batch is
    wrapped in ``MULTI``/``EXEC``: other clients never see half of it.
    """

    _command_mode: ClassVar[Literal["run", "queue"] | None] = "queue"

    def __init__(self, repository: StringCommands, *, transaction: bool) -> None:
        # The repository's own checks, reply decoding and executor.
        self._executor = repository._executor
        self._arg = repository._arg
        self._reply = repository._reply
        self._codec = repository._codec
        self.transaction = transaction
        self._commands: list[Command[Any]] = []
        self.results: list[Any] | None = None

    def _queue(self, cmd: Command[Any]) -> None:
        self._commands.append(cmd)

    if not TYPE_CHECKING:  # for the type checker, a name the pipeline lacks is an error

        def __getattr__(self, name: str) -> Any:
            if any(hasattr(family, name) for family in (StringOperations, KeyOperations, ServerOperations)):
                raise AttributeError(
                    f"{name!r} cannot be queued in a pipeline (only single-command repository methods can)"
                )
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __await__(self) -> Any:
        # ``await pipe.set_async(...)`` is harmless: queuing already happened.
        return self
        yield  # pragma: no cover

    def __len__(self) -> int:
        return len(self._commands)

    async def execute(self, *, raise_on_error: bool = True) -> list[Any]:
        """Send every queued command; returns their outcomes in order.

        Each outcome is the command's result, or the
        :class:`~neuroglia.data.redis.CacheException` it failed with (the
        server refused it, or its reply could not be decoded): one command's
        failure never hides the others' results. With ``raise_on_error`` (the
        default) the first failure is raised after the whole batch ran, and
        :attr:`results` still holds every outcome.
        """
        queued, self._commands = self._commands, []
        results = await self._executor.run_many(queued, transaction=self.transaction)
        for index, result in enumerate(results):
            if isinstance(result, Deferred):  # a large typed read, decoded off the event loop
                try:
                    results[index] = await result
                except CacheException as exc:
                    results[index] = exc
        self.results = results
        if raise_on_error:
            for result in self.results:
                if isinstance(result, CacheException):
                    applied = self.applied or []
                    if self.transaction and any(applied):
                        # MULTI/EXEC isolates, it does not roll back: say what stays written.
                        done = ", ".join(str(i) for i, ok in enumerate(applied) if ok)
                        result.add_note(
                            f"MULTI/EXEC does not roll back: commands {done} of this transaction were applied "
                            "(0-based); the pipeline's results hold each command's outcome"
                        )
                    raise result
        return self.results

    @property
    def applied(self) -> list[bool] | None:
        """For each command of the last :meth:`execute`, whether it ran (``None`` before any).

        In a transaction the commands run one after the other and a command
        refused at run time (``WRONGTYPE``) fails alone: the others are
        applied, nothing is rolled back. A reply that could not be decoded
        (a typed read) still means the command ran.
        """
        if self.results is None:
            return None
        return [not (isinstance(r, CacheException) and r.delivery is not None) for r in self.results]

    def discard(self) -> None:
        """Drop every queued command without sending anything."""
        self._commands.clear()

    async def __aenter__(self) -> Self:
        if self._commands:
            raise InvalidArgumentError("this pipeline already has queued commands")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.discard()
            return
        if self._commands:
            await self.execute()
