"""Single-flight: one factory run per key per process, shared by every caller.

A *flight* is a task the cache owns (not a caller's task), so that a caller
that is cancelled or stops waiting never cancels the computation the other
callers wait for; callers wait with :func:`asyncio.wait`, which never cancels
what it waits on. Every task the cache starts (flights, background refreshes,
factories finishing after a timeout) is tracked by a :class:`TaskTracker` and
cancelled by :meth:`TaskTracker.close`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

__all__ = ["Flight", "SingleFlight", "TaskTracker"]

T = TypeVar("T")
_log = logging.getLogger("neuroglia.data.redis.cache")


class TaskTracker:
    """The background tasks of one cache: started, remembered until done, cancelled on close."""

    __slots__ = ("_tasks", "closed")

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self.closed = False
        """Set by :meth:`close`: the cache these tasks work for is closed."""

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, work: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        """Run ``work`` as a tracked task."""
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        # Retrieve the outcome, so a failure nobody waited for (every caller
        # timed out) is not reported as "never retrieved"; callers that wait
        # get it from the task themselves.
        if not task.cancelled():
            task.exception()

    async def idle(self) -> None:
        """Wait until no tracked task is running (those started meanwhile included)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    async def close(self) -> None:
        """Cancel every tracked task and wait for them to end."""
        self.closed = True
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)


class Flight(Generic[T]):
    """One shared computation of one key."""

    __slots__ = ("invalidated", "key", "removed_tags", "task")

    task: asyncio.Task[T]

    def __init__(self, key: str) -> None:
        self.key = key
        self.invalidated = False
        """Set when the key was written or removed meanwhile: the flight's result is not stored."""
        self.removed_tags: set[str] = set()
        """Tags removed meanwhile: a result carrying one of them is not stored."""

    def may_store(self, tags: tuple[str, ...]) -> bool:
        """Whether the result may still be written, given what happened to the key meanwhile."""
        return not self.invalidated and not self.removed_tags.intersection(tags)


class SingleFlight(Generic[T]):
    """The flights of one cache, by key."""

    __slots__ = ("_flights", "_tracker")

    def __init__(self, tracker: TaskTracker) -> None:
        self._tracker = tracker
        self._flights: dict[str, Flight[T]] = {}

    def get(self, key: str) -> Flight[T] | None:
        """The flight running for ``key``, if any."""
        return self._flights.get(key)

    def start(self, key: str, make: Callable[[Flight[T]], Coroutine[Any, Any, T]], name: str) -> Flight[T]:
        """Start the flight of ``key`` (there must be none); ``make(flight)`` gives its work."""
        flight: Flight[T] = Flight(key)
        task = self._tracker.spawn(make(flight), name)
        flight.task = task
        self._flights[key] = flight

        def forget(_: asyncio.Task[T]) -> None:
            if self._flights.get(key) is flight:
                del self._flights[key]

        task.add_done_callback(forget)
        return flight

    def invalidate(self, key: str) -> None:
        """``key`` was written or removed: its running flight must not store its result."""
        flight = self._flights.get(key)
        if flight is not None:
            flight.invalidated = True

    def tag_removed(self, tag: str) -> None:
        """``tag`` was removed: running flights must not store a result carrying it."""
        for flight in self._flights.values():
            flight.removed_tags.add(tag)

    def invalidate_all(self) -> None:
        """Everything was cleared."""
        for flight in self._flights.values():
            flight.invalidated = True

    def __len__(self) -> int:
        return len(self._flights)
