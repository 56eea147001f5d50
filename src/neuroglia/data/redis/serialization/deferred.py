"""Decoding that starts on the event loop and, when it turns out large, ends in a worker thread.

A decoding is written as a generator that yields at the point where what is
left may be heavy (a large payload to decompress, verify or parse) and
returns the value. :func:`start` runs it on the caller's thread up to that
point: a small value is decoded at once, with no thread hop; a large one
comes back as a :class:`Deferred`, which runs the rest in the decoding
thread when awaited, so the event loop keeps serving other tasks meanwhile.
:func:`finish` runs a decoding to the end on the caller's thread (the
synchronous ``loads``).

The decoding thread is one thread for the whole process, deliberately:
parsing and validating hold the GIL, and the GIL is the process's. With
several threads decoding at once, the event loop's thread waits its turn
behind each of them (a convoy: eight threads parsing stalled a loop for
about 100 ms where one thread stalls it for about one switch interval,
5 ms), and each would hold a value of up to ``max_value_bytes`` in memory.
One thread keeps both bounded: the loop's stall near one switch interval,
and the memory of large values being decoded near one value's bound.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

__all__ = ["Deferred", "Steps", "finish", "resolve", "start"]

T = TypeVar("T")
Steps = Generator[None, None, T]
"""A decoding: yields once where the rest may be heavy, returns the value."""


class Deferred(Generic[T]):
    """The rest of a decoding, run in a worker thread when awaited (once)."""

    __slots__ = ("_steps",)

    def __init__(self, steps: Steps[T]) -> None:
        self._steps = steps

    def __await__(self) -> Generator[Any, None, T]:
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(_lane(), finish, self._steps).__await__()

    def __repr__(self) -> str:
        return "<decoding continued off the event loop>"


_lane_lock = threading.Lock()
_lane_executor: ThreadPoolExecutor | None = None


def _lane() -> ThreadPoolExecutor:
    """The process's decoding thread (see the module docstring), started on first use."""
    global _lane_executor
    if _lane_executor is None:
        with _lane_lock:
            if _lane_executor is None:
                _lane_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="neuroglia-redis-decode")
    return _lane_executor


def _forget_lane() -> None:
    # A forked child has no such thread: it starts its own when it needs one.
    global _lane_executor, _lane_lock
    _lane_executor = None
    _lane_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_lane)


def start(steps: Steps[T]) -> T | Deferred[T]:
    """Run ``steps`` until it is done (the value) or yields (a :class:`Deferred` of the rest)."""
    try:
        next(steps)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    return Deferred(steps)


def finish(steps: Steps[T]) -> T:
    """Run ``steps`` to the end on this thread and return its value."""
    try:
        while True:
            next(steps)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    except Exception as exc:
        # The frames of a failed decoding hold its payload (up to the bound,
        # per value): the error keeps its message and causes, not them.
        error: BaseException | None = exc
        while error is not None:
            error.__traceback__ = None
            error = error.__cause__ or error.__context__
        raise


async def resolve(value: T | Deferred[T]) -> T:
    """``value`` itself, or the result of the deferred decoding it stands for."""
    if isinstance(value, Deferred):
        return await value
    return value
