"""A small bounded pool of dedicated connections.

Some commands need a connection to themselves: a blocking pop holds its
connection until it returns, a ``WATCH`` transaction depends on what else
the connection sends, a subscription turns the connection into a stream of
messages. They borrow a dedicated connection here; at most ``bound`` exist
at once, idle ones are kept (most recently used first) and checked with a
``PING`` before reuse after ``health_check_interval`` of idleness. When all
are lent, a borrower waits up to ``pool_timeout`` and then gets
:class:`~neuroglia.data.redis.PoolExhaustedError` (local congestion, not an
outage: the circuit breaker does not count it).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import hiredis

from neuroglia.data.redis.exceptions import CacheException, Delivery, PoolExhaustedError

from .connection import Connection, command_name
from .encoding import pack, pack_many
from .errors import server_error
from .resp3 import shape_for

__all__ = ["DedicatedPool", "DedicatedSession"]

Opener = Callable[[float | None], Awaitable[Connection]]
Checker = Callable[[Connection, float | None], Awaitable[bool]]


class DedicatedPool:
    """Dedicated connections, opened on demand up to ``bound``."""

    def __init__(self, open_connection: Opener, check: Checker, bound: int, pool_timeout: float | None) -> None:
        self._open = open_connection
        self._check = check
        self.bound = bound
        self._pool_timeout = pool_timeout
        self._idle: list[Connection] = []
        self.lent = 0
        self._opening = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def idle(self) -> int:
        """Open connections ready to be lent."""
        self._idle = [conn for conn in self._idle if conn.open]
        return len(self._idle)

    async def acquire(self, name: str, deadline: float | None = None) -> Connection:
        """Borrow a connection; waits for one when ``bound`` are lent (see the module docstring)."""
        loop = asyncio.get_running_loop()
        wait_until = None if self._pool_timeout is None else loop.time() + self._pool_timeout
        if deadline is not None:
            wait_until = deadline if wait_until is None else min(wait_until, deadline)
        while True:
            while self._idle:
                conn = self._idle.pop()
                if not conn.open:
                    continue
                self.lent += 1
                if conn.needs_check and not await self._checked(conn, deadline):
                    continue
                return conn
            if self.lent + len(self._idle) + self._opening < self.bound:
                self._opening += 1
                try:
                    conn = await self._open(deadline)
                finally:
                    self._opening -= 1
                    self._wake()
                self.lent += 1
                return conn
            await self._wait(name, wait_until)

    async def _checked(self, conn: Connection, deadline: float | None) -> bool:
        """``conn`` answered its health check (lent either way; given back when it did not)."""
        try:
            healthy = await self._check(conn, deadline)
        except BaseException:
            self.release(conn, reusable=False)
            raise
        if not healthy:
            self.release(conn, reusable=False)
        return healthy

    async def _wait(self, name: str, wait_until: float | None) -> None:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout_at(wait_until):
                await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self._wake()  # woken as it gave up: pass the turn on
            else:
                waiter.cancel()
            if isinstance(exc, TimeoutError):
                raise PoolExhaustedError(
                    f"{name}: no connection became free in the pool in time "
                    f"({self.bound} dedicated connection(s) for blocking commands, all lent)"
                ).with_delivery(Delivery.NOT_SENT) from None
            raise

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def release(self, conn: Connection, *, reusable: bool) -> None:
        """Give ``conn`` back; one that may hold a stray reply or session state is closed instead."""
        self.lent -= 1
        if reusable and conn.open and conn.outstanding == 0:
            self._idle.append(conn)
        else:
            conn.close("the connection was closed after an interrupted command")
        self._wake()

    def close(self) -> None:
        """Close the idle connections; lent ones are closed when given back."""
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()



class DedicatedSession:
    """A dedicated connection lent to one caller, for commands that depend on each other.

    Made by :meth:`MultiplexedTransport.dedicated`: ``WATCH`` a key, read it,
    then run :meth:`transaction`, all on the same connection, with no other
    caller's command in between. When the session ends the connection goes
    back to the pool only if it is known clean (no ``WATCH`` or ``MULTI``
    left open, no command interrupted); otherwise it is closed.
    """

    def __init__(self, conn: Connection, *, resp3: bool) -> None:
        self._conn = conn
        self._resp3 = resp3
        self._watching = False
        self._interrupted = False

    @property
    def clean(self) -> bool:
        """Whether the connection may serve another borrower as it is."""
        return self._conn.open and not self._interrupted and not self._watching and self._conn.outstanding == 0

    async def _run(self, future: asyncio.Future[Any]) -> Any:
        try:
            return await future
        except CacheException as exc:
            if exc.delivery is not Delivery.NOT_APPLIED:
                self._interrupted = True
            raise
        except BaseException:
            self._interrupted = True  # cancelled: its reply may still come
            raise

    async def execute(self, args: tuple[Any, ...], deadline: float | None = None) -> Any:
        """Send one command on this connection and return its raw reply."""
        name = command_name(args[0])
        if name == "MULTI":
            raise CacheException("MULTI: use transaction() on a dedicated session").with_delivery(Delivery.NOT_SENT)
        shape = shape_for(args) if self._resp3 else None
        reply = await self._run(self._conn.submit(pack(args), args[0], deadline, 1, None, shape))
        if name == "WATCH":
            self._watching = True
        elif name == "UNWATCH":
            self._watching = False
        return reply

    async def transaction(self, commands: Sequence[tuple[Any, ...]]) -> list[Any] | None:
        """``MULTI`` + ``commands`` + ``EXEC``; ``None`` when a watched key changed and nothing ran.

        Returns one entry per command: its raw reply, or the
        :class:`~neuroglia.data.redis.CacheException` the server answered for
        it. A refusal of the whole transaction (``EXECABORT``) is raised.
        """
        names = [command_name(args[0]) for args in commands]
        shapes = [shape_for(args) for args in commands] if self._resp3 else None
        data = pack_many([("MULTI",), *commands, ("EXEC",)])

        def finish(replies: list[Any]) -> list[Any] | None:
            multi, queued, outcome = replies[0], replies[1:-1], replies[-1]
            if multi.__class__ is hiredis.ReplyError:
                raise server_error(str(multi), "MULTI")
            if outcome.__class__ is hiredis.ReplyError:
                for index, reply in enumerate(queued):
                    if reply.__class__ is hiredis.ReplyError:
                        raise server_error(str(reply), f"{names[index]} (command {index + 1} of the transaction)")
                raise server_error(str(outcome), "EXEC")
            if outcome is None:
                return None
            results: list[Any] = []
            for index, reply in enumerate(outcome):
                shape = shapes[index] if shapes is not None else None
                if reply.__class__ is hiredis.ReplyError:
                    results.append(server_error(str(reply), names[index]))
                else:
                    results.append(reply if shape is None else shape(reply))
            return results

        try:
            result: list[Any] | None = await self._run(
                self._conn.submit(data, "MULTI", None, len(commands) + 2, finish)
            )
        finally:
            self._watching = False  # EXEC (or its refusal) ends every WATCH
        return result
