"""Transports for tests: a scripted mock, and a fault injector around a real transport.

Both implement the :class:`~neuroglia.data.redis.transport.Transport`
contract, so a repository runs on them unchanged
(``RedisRepository(config, transport=...)``): its executor, breaker,
retries and metrics behave exactly as with a real server.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from ..exceptions import CacheException, CacheTimeoutError, CacheUnavailableError, Delivery
from ..transport.contract import Args, PoolStats, Session, Transport

__all__ = ["FaultInjectingTransport", "Faults", "MockTransport", "Step", "refused", "reply_lost"]

Step = BaseException | Callable[[], Awaitable[Any]] | Any
"""A scripted outcome: an exception to raise, an async callable to await for the reply, or the raw reply."""


def refused(message: str = "Redis unavailable: Connection refused") -> CacheUnavailableError:
    """An outage before anything was sent (``Delivery.NOT_SENT``): safe to resend."""
    return CacheUnavailableError(message).with_delivery(Delivery.NOT_SENT)


def reply_lost(message: str = "Redis unavailable: Connection reset by peer") -> CacheUnavailableError:
    """An outage after the command was sent (``Delivery.MAYBE_APPLIED``): it may have run."""
    return CacheUnavailableError(message).with_delivery(Delivery.MAYBE_APPLIED)


class MockTransport:
    """A transport whose outcomes the test writes, in order, and which records what it was sent.

    Each command (and each batch) takes the next scripted :data:`Step`; when
    the script is empty, ``handler(args)`` answers if given, else the test
    fails with an ``AssertionError`` (the repository sent more than
    scripted). Like a real transport it bounds a command by its deadline
    (:class:`~neuroglia.data.redis.CacheTimeoutError`, maybe applied).
    """

    def __init__(self, *steps: Step, handler: Callable[[Args], Any] | None = None) -> None:
        self.steps: list[Step] = list(steps)
        self.handler = handler
        self.sent: list[Args] = []
        """Every single command received, in order (blocking ones included)."""
        self.batches: list[list[Args]] = []
        """Every batch received (pipelines, transactions), in order."""
        self.closed = 0
        """How many times :meth:`close` was called."""

    def script(self, *steps: Step) -> None:
        """Append outcomes to the script."""
        self.steps.extend(steps)

    async def _next(self, args: Args | None) -> Any:
        if not self.steps:
            if self.handler is not None and args is not None:
                return self.handler(args)
            raise AssertionError(f"the repository sent more commands than the test scripted: {args!r}")
        step = self.steps.pop(0)
        if isinstance(step, BaseException):
            raise step
        if callable(step):
            return await step()
        return step

    async def execute(self, args: Args, deadline: float | None = None) -> Any:
        self.sent.append(args)
        if deadline is None:
            return await self._next(args)
        try:
            async with asyncio.timeout_at(deadline):
                return await self._next(args)
        except TimeoutError:
            error = CacheTimeoutError(f"{args[0]}: no reply within the operation deadline")
            raise error.with_delivery(Delivery.MAYBE_APPLIED) from None

    async def execute_blocking(self, args: Args, timeout: float) -> Any:
        self.sent.append(args)
        return await self._next(args)

    async def execute_many(self, commands: Sequence[Args], *, transaction: bool) -> list[Any]:
        self.batches.append(list(commands))
        if not self.steps and self.handler is not None:
            return [self.handler(args) for args in commands]
        return list(await self._next(None))

    @contextlib.asynccontextmanager
    async def dedicated(self) -> AsyncIterator[Session]:
        """A session on the same script (what it is sent is recorded in :attr:`sent` and :attr:`batches`)."""
        yield _MockSession(self)

    async def close(self) -> None:
        self.closed += 1

    def pool_stats(self) -> PoolStats:
        return PoolStats(1, 0, 1, 1)


class _MockSession:
    """A :class:`MockTransport`'s dedicated session: the same script and records."""

    def __init__(self, transport: MockTransport) -> None:
        self._transport = transport

    async def execute(self, args: Args, deadline: float | None = None) -> Any:
        return await self._transport.execute(args, deadline)

    async def transaction(self, commands: Sequence[Args]) -> list[Any] | None:
        transport = self._transport
        transport.batches.append(list(commands))
        reply = await transport._next(None)
        return None if reply is None else list(reply)


class Faults:
    """The faults a set of :class:`FaultInjectingTransport` s inject; share one to fail several repositories at once.

    ``outage`` refuses every command before it is sent, as a refused
    connection would (``Delivery.NOT_SENT``); ``delay`` adds seconds before
    each command is forwarded; :meth:`fail_next` makes the next commands
    fail with a given error. Counters say what happened.
    """

    def __init__(self) -> None:
        self.outage = False
        self.delay = 0.0
        self.refused = 0
        """Commands refused by the outage or by :meth:`fail_next` (every attempt, retries included)."""
        self.forwarded = 0
        """Commands (and batches) passed on to the real transport."""
        self._next_failures: list[Callable[[], CacheException]] = []

    def fail_next(self, count: int = 1, error: Callable[[], CacheException] = refused) -> None:
        """Fail the next ``count`` commands with ``error()`` (by default a refused connection)."""
        self._next_failures.extend([error] * count)

    async def before(self, name: str) -> None:
        """What a command (``name``) meets before it is forwarded: the delay, then the faults."""
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        if self._next_failures:
            self.refused += 1
            raise self._next_failures.pop(0)()
        if self.outage:
            self.refused += 1
            raise refused(
                f"{name}: Redis unavailable: [Errno {errno.ECONNREFUSED}] Connection refused (simulated outage)"
            )
        self.forwarded += 1


class FaultInjectingTransport:
    """A real transport behind :class:`Faults`: it fails, delays or forwards each command.

    Nothing of a refused command reaches the server, so an outage can be
    shown against a real, shared server without disturbing it.
    """

    def __init__(self, inner: Transport, faults: Faults | None = None) -> None:
        self.inner = inner
        self.faults = faults if faults is not None else Faults()

    async def execute(self, args: Args, deadline: float | None = None) -> Any:
        await self.faults.before(str(args[0]).upper())
        return await self.inner.execute(args, deadline)

    async def execute_blocking(self, args: Args, timeout: float) -> Any:
        await self.faults.before(str(args[0]).upper())
        return await self.inner.execute_blocking(args, timeout)

    async def execute_many(self, commands: Sequence[Args], *, transaction: bool) -> list[Any]:
        await self.faults.before("MULTI" if transaction else "PIPELINE")
        return await self.inner.execute_many(commands, transaction=transaction)

    @contextlib.asynccontextmanager
    async def dedicated(self) -> AsyncIterator[Session]:
        await self.faults.before("WATCH")
        async with self.inner.dedicated() as session:
            yield session

    async def close(self) -> None:
        await self.inner.close()

    def pool_stats(self) -> PoolStats:
        return self.inner.pool_stats()
