"""Pipelines and MULTI/EXEC transactions over the repository's own methods."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from .exceptions import CacheException, InvalidArgumentError

if TYPE_CHECKING:
    from ._command import Command
    from ._repository import RedisRepository

__all__ = ["Pipeline"]


class Pipeline:
    """Commands queued now, sent later in one round trip.

    Any repository method that maps to one command can be queued under its
    usual name and arguments: ``pipe.set_async("k", "v")``,
    ``pipe.incr_async("n")``. Calling it queues the command (the same
    validation as the repository, so bad input fails at once and nothing is
    sent) and returns the pipeline, so calls chain; awaiting the call is
    allowed and does nothing more.

    :meth:`execute` sends the queue and returns the parsed results in order.
    As an async context manager the queue is executed at the end of the
    block, and discarded if the block raises. With ``transaction=True`` the
    batch is wrapped in ``MULTI``/``EXEC``: other clients never see half of it.
    """

    def __init__(self, repository: RedisRepository, *, transaction: bool) -> None:
        self._repository = repository
        self.transaction = transaction
        self._queue: list[Command[Any]] = []
        self.results: list[Any] | None = None

    def __getattr__(self, name: str) -> Callable[..., Pipeline]:
        method = getattr(type(self._repository), name, None)
        build = getattr(method, "build", None)
        if build is None:
            raise AttributeError(
                f"{name!r} cannot be queued in a pipeline (only single-command repository methods can)"
            )

        def queue(*args: Any, **kwargs: Any) -> Pipeline:
            self._queue.append(build(self._repository, *args, **kwargs))
            return self

        queue.__name__ = name
        queue.__doc__ = build.__doc__
        return queue

    def __await__(self) -> Any:
        # ``await pipe.set_async(...)`` is harmless: queuing already happened.
        return self
        yield  # pragma: no cover

    def __len__(self) -> int:
        return len(self._queue)

    async def execute(self, *, raise_on_error: bool = True) -> list[Any]:
        """Send every queued command; returns their results in order.

        A command the server refused yields its
        :class:`~neuroglia.data.redis.CacheException` in the results; with
        ``raise_on_error`` (the default) the first one is raised after the
        whole batch ran, and :attr:`results` still holds every outcome.
        """
        queued, self._queue = self._queue, []
        self.results = await self._repository._execute_many(queued, transaction=self.transaction)
        if raise_on_error:
            for result in self.results:
                if isinstance(result, CacheException):
                    raise result
        return self.results

    def discard(self) -> None:
        """Drop every queued command without sending anything."""
        self._queue.clear()

    async def __aenter__(self) -> Self:
        if self._queue:
            raise InvalidArgumentError("this pipeline already has queued commands")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.discard()
            return
        if self._queue:
            await self.execute()
