"""The multiplexed transport: concurrent callers share a few connections.

Commands go to one of ``multiplexed_connections`` shared connections (one by
default; with more, the one with the fewest commands outstanding), written
without waiting for earlier replies and coalesced per event-loop iteration
(see :mod:`.connection`). Blocking commands get a dedicated connection from a
small bounded pool (:mod:`.dedicated`); when ``max_connections`` leaves no
room for one, a blocking command borrows the shared connection for itself
and other callers wait for it, as with a pool of one connection.

Connections are opened on demand. A lost shared connection is replaced on
the next command; concurrent callers share one connect attempt, and
attempts after failures are spaced by an exponential backoff with jitter
(20 ms doubling to 1 s): a caller whose deadline falls before the next
attempt fails at once with the last attempt's error (``NOT_SENT``), the
others wait for it. See ``docs/transport.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import hiredis

from neuroglia.data.redis.exceptions import (
    CacheCommandError,
    CacheException,
    CacheTimeoutError,
    CacheTLSError,
    CacheUnavailableError,
    Delivery,
    PoolExhaustedError,
)

from ..contract import Args, PoolStats
from .connection import Connection, Resp3Connection, command_name, copy_error
from .dedicated import DedicatedPool, DedicatedSession
from .encoding import pack, pack_many
from .errors import connection_error, server_error
from .handshake import handshake, handshake_commands
from .resp3 import shape_for
from .settings import ConnectionSettings

__all__ = ["MultiplexedTransport", "PushHandler", "SessionHook"]

_log = logging.getLogger("neuroglia.data.redis")
_ReplyError = hiredis.ReplyError
_pack_command = hiredis.pack_command
_PING = pack(("PING",))
# How long past a blocking command's own timeout its reply may take to arrive.
BLOCKING_MARGIN = 1.0
BACKOFF_FIRST = 0.02
BACKOFF_MAX = 1.0

PushHandler = Callable[[list[Any]], None]
"""Called with each RESP3 push message (``[b"invalidate", [b"key", ...]]``...), in RESP2 shapes."""


@dataclass(eq=False)
class SessionHook:
    """Commands that every shared connection runs before it serves callers, and who to tell about it.

    Made by :meth:`MultiplexedTransport.add_session_hook`. ``on_ready(n)``
    is called once the commands ran on shared connection number ``n``;
    ``on_lost(n)`` when that connection is lost (whatever it may have missed
    meanwhile, such as invalidation messages, is unknown).
    """

    commands: tuple[Args, ...]
    on_ready: Callable[[int], None] | None = None
    on_lost: Callable[[int], None] | None = None
    connections: set[int] = field(default_factory=set)


# Connect backoff jitter from a generator of its own, not the application's global random state.
_jitter = random.Random()


def _backoff(failures: int) -> float:
    """Seconds before the next connect attempt after ``failures`` consecutive failed ones."""
    base = min(BACKOFF_MAX, BACKOFF_FIRST * 2.0 ** (failures - 1))
    return base * (0.5 + 0.5 * _jitter.random())  # full jitter on the upper half: no synchronized retries


class MultiplexedTransport:
    """A :class:`~neuroglia.data.redis.transport.Transport` over the library's own connections."""

    def __init__(self, settings: ConnectionSettings) -> None:
        self._settings = settings
        self._resp3 = settings.protocol == 3
        count = settings.shared_connections
        self._shared: list[Connection | None] = [None] * count
        self._connecting: list[asyncio.Task[Connection] | None] = [None] * count
        # The one shared connection when it can take a command without
        # further checks; the fast path of execute() reads only this.
        self._ready: Connection | None = None
        self._dedicated = DedicatedPool(
            self._open_dedicated, self._health_check, settings.dedicated_connections, settings.pool_timeout
        )
        self._gate: asyncio.Future[None] | None = None  # set while a blocking command has the shared connection
        self._lease_lock: asyncio.Lock | None = None
        self._failures = 0
        self._retry_at = 0.0
        self._last_error: CacheException | None = None
        self._push_handlers: list[PushHandler] = []
        self._hooks: list[SessionHook] = []
        self._serial = 0

    @property
    def settings(self) -> ConnectionSettings:
        """The settings this transport was built with."""
        return self._settings

    # -- single commands -------------------------------------------------------------

    async def execute(self, args: Args, deadline: float | None = None) -> Any:
        """Send one command on a shared connection and return its raw reply."""
        conn = self._ready
        if conn is not None and conn.inflight < conn.max_in_flight and not conn.needs_check:
            try:
                data = _pack_command(args)
            except (TypeError, UnicodeEncodeError):
                data = pack(args)  # converts odd argument types, or raises InvalidArgumentError
            shape = shape_for(args) if self._resp3 else None
            return await conn.submit(data, args[0], deadline, 1, None, shape)
        return await self._execute_slow(args, deadline)

    async def _execute_slow(self, args: Args, deadline: float | None) -> Any:
        data = pack(args)
        name = command_name(args[0])
        conn = await self._shared_connection(name, deadline, 1)
        if deadline is not None and conn.loop.time() >= deadline:
            raise CacheTimeoutError(
                f"{name}: timed out: the operation deadline passed before the command could be written; "
                "it was not sent"
            ).with_delivery(Delivery.NOT_SENT)
        shape = shape_for(args) if self._resp3 else None
        return await conn.submit(data, args[0], deadline, 1, None, shape)

    # -- batches ---------------------------------------------------------------------

    async def execute_many(self, commands: Sequence[Args], *, transaction: bool) -> list[Any]:
        """Send a batch in one write on a shared connection; ``MULTI``/``EXEC`` around it when asked.

        The batch's bytes are written contiguously, so a transaction's
        commands are never interleaved with other callers' commands.
        """
        if not commands:
            return []
        names = [command_name(args[0]) for args in commands]
        shapes = [shape_for(args) for args in commands] if self._resp3 else None
        if transaction:
            data = pack_many([("MULTI",), *commands, ("EXEC",)])
            expected = len(commands) + 2
            label = "MULTI"
            finish: Callable[[list[Any]], Any] = _transaction_result(names, shapes)
        else:
            data = pack_many(commands)
            expected = len(commands)
            label = "PIPELINE"
            finish = _pipeline_result(names, shapes)
        conn = await self._shared_connection(label, None, expected)
        result: list[Any] = await conn.submit(data, label, None, expected, finish)
        return result

    # -- blocking commands -----------------------------------------------------------

    async def execute_blocking(self, args: Args, timeout: float) -> Any:
        """Send a blocking command on a dedicated connection; ``timeout`` is its own (0: forever)."""
        data = pack(args)
        name = command_name(args[0])
        if self._dedicated.bound > 0:
            conn = await self._dedicated.acquire(name)
            leased = False
        else:
            conn = await self._lease(name)
            leased = True
        reusable = False
        try:
            future = conn.submit(data, args[0], None)
            if timeout > 0:
                async with asyncio.timeout(timeout + BLOCKING_MARGIN):
                    reply = await future
            else:
                reply = await future
            reusable = True
            return reply
        except TimeoutError:
            raise CacheTimeoutError(
                f"{name}: timed out: no reply within the command's timeout ({timeout:g}s) "
                f"plus {BLOCKING_MARGIN:g}s; the command may have run"
            ).with_delivery(Delivery.MAYBE_APPLIED) from None
        except CacheException as exc:
            # A refusal by the server leaves the connection in step.
            reusable = exc.delivery is Delivery.NOT_APPLIED
            raise
        finally:
            if leased:
                self._unlease(conn, reusable)
            else:
                self._dedicated.release(conn, reusable=reusable)

    @contextlib.asynccontextmanager
    async def dedicated(self) -> AsyncIterator[DedicatedSession]:
        """A dedicated connection for commands that depend on each other (``WATCH`` ... ``EXEC``).

        Borrowed from the dedicated pool (waiting up to ``pool_timeout``,
        then :class:`~neuroglia.data.redis.PoolExhaustedError`); given back
        when the block ends if it is clean, else closed.
        """
        if self._dedicated.bound > 0:
            conn = await self._dedicated.acquire("DEDICATED")
            leased = False
        else:
            conn = await self._lease("DEDICATED")
            leased = True
        session = DedicatedSession(conn, resp3=self._resp3)
        try:
            yield session
        finally:
            if leased:
                self._unlease(conn, session.clean)
            else:
                self._dedicated.release(conn, reusable=session.clean)

    async def _lease(self, name: str) -> Connection:
        """The shared connection for one blocking command alone (``max_connections`` left no dedicated one)."""
        if self._lease_lock is None:
            self._lease_lock = asyncio.Lock()
        lock = self._lease_lock
        await self._wait(lock.acquire(), name, None, congestion=True, what="waiting for the connection")
        try:
            self._gate = asyncio.get_running_loop().create_future()
            self._ready = None
            conn = await self._shared_connection(name, None, 1, gated=False)
            await conn.drained()
            conn.stall_bound = None  # it may legitimately stay silent for the command's timeout
            return conn
        except BaseException:
            self._open_gate()
            lock.release()
            raise

    def _unlease(self, conn: Connection, reusable: bool) -> None:
        conn.stall_bound = self._settings.socket_timeout
        if not reusable:
            conn.close("the connection was closed after an interrupted blocking command")
        self._open_gate()
        if self._lease_lock is not None and self._lease_lock.locked():
            self._lease_lock.release()

    def _open_gate(self) -> None:
        gate, self._gate = self._gate, None
        if gate is not None and not gate.done():
            gate.set_result(None)
        self._update_ready()

    # -- finding a shared connection -------------------------------------------------

    async def _shared_connection(
        self, name: str, deadline: float | None, expected: int, gated: bool = True
    ) -> Connection:
        """A shared connection with room for ``expected`` commands: connect, check or wait as needed."""
        while True:
            if gated and self._gate is not None:
                await self._wait(
                    asyncio.shield(self._gate),
                    name,
                    deadline,
                    congestion=True,
                    what="the only connection is lent to a blocking command",
                )
                continue
            conn = self._pick()
            if conn is None:
                await self._connect(name, deadline)
                continue
            if conn.needs_check:
                await self._wait(
                    asyncio.shield(self._start_check(conn)), name, deadline, congestion=False, what="health check"
                )
                continue
            if not conn.has_room(expected):
                await self._wait(
                    conn.wait_room(),
                    name,
                    deadline,
                    congestion=True,
                    what=f"{conn.max_in_flight} commands in flight on the connection (max_in_flight)",
                )
                continue
            return conn

    def _pick(self) -> Connection | None:
        """The open shared connection with the fewest commands outstanding; opens missing ones meanwhile."""
        best: Connection | None = None
        for index, conn in enumerate(self._shared):
            if conn is None or not conn.open:
                if (
                    len(self._shared) > 1
                    and self._connecting[index] is None
                    and asyncio.get_running_loop().time() >= self._retry_at
                    and any(c is not None and c.open for c in self._shared)
                ):
                    self._start_connect(index)
                continue
            if best is None or conn.inflight < best.inflight:
                best = conn
        return best

    async def _connect(self, name: str, deadline: float | None) -> None:
        """Wait for a connect attempt of a shared connection (starting one if none runs)."""
        task = None
        for index, attempt in enumerate(self._connecting):
            if attempt is not None:
                if attempt.done():
                    # Finished, its callback not yet run: take its outcome now
                    # (awaiting a done task does not yield to the loop).
                    self._connected(index, attempt)
                    return
                task = attempt
                break
        if task is None:
            loop = asyncio.get_running_loop()
            now = loop.time()
            if now < self._retry_at:
                last = self._last_error
                # A refusal (wrong password, TLS refused) will not heal in a few
                # milliseconds: say so at once instead of waiting for the next try.
                refused = isinstance(last, CacheTLSError) or not isinstance(last, CacheUnavailableError)
                if refused or (deadline is not None and deadline <= self._retry_at):
                    raise self._backing_off(name, self._retry_at - now)
                await asyncio.sleep(self._retry_at - now)
                return
            index = next(i for i, conn in enumerate(self._shared) if conn is None or not conn.open)
            task = self._start_connect(index)
        try:
            await self._wait(asyncio.shield(task), name, deadline, congestion=False, what="connecting")
        except asyncio.CancelledError:
            if not task.cancelled():
                raise  # the caller itself was cancelled
            # close() gave the shared attempt up: for its waiters that is a
            # connection that did not open, not a cancellation of their own.
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            raise CacheUnavailableError(
                f"{name}: the transport was closed while connecting; not sent"
            ).with_delivery(Delivery.NOT_SENT) from None

    def _backing_off(self, name: str, wait: float) -> CacheException:
        last = self._last_error
        if last is None:  # pragma: no cover - a backoff always follows a failure
            last = connection_error(None, "", Delivery.NOT_SENT, where=self._settings.address)
        error = copy_error(last, name, Delivery.NOT_SENT)
        error.args = (f"{error.args[0]} (the next connection attempt is due in {wait * 1000:.0f} ms)",)
        return error

    def _start_connect(self, index: int) -> asyncio.Task[Connection]:
        task = asyncio.get_running_loop().create_task(self._open(shared=True, deadline=None))
        self._connecting[index] = task
        task.add_done_callback(lambda done: self._connected(index, done))
        return task

    def _connected(self, index: int, task: asyncio.Task[Connection]) -> None:
        if self._connecting[index] is not task:
            return  # already taken (or given up by close())
        self._connecting[index] = None
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self._failures += 1
            self._retry_at = asyncio.get_running_loop().time() + _backoff(self._failures)
            self._last_error = error if isinstance(error, CacheException) else None
            return
        conn = task.result()
        if not conn.open:
            return
        self._failures = 0
        self._retry_at = 0.0
        self._shared[index] = conn
        self._update_ready()
        for hook in list(self._hooks):
            self._hook_ready(hook, conn)

    def _update_ready(self) -> None:
        conn = self._shared[0] if len(self._shared) == 1 else None
        self._ready = conn if conn is not None and conn.open and self._gate is None else None

    async def _wait(
        self, awaitable: Any, name: str, deadline: float | None, *, congestion: bool, what: str
    ) -> Any:
        """Await ``awaitable`` within ``deadline`` (and ``pool_timeout`` for ``congestion``)."""
        loop = asyncio.get_running_loop()
        limit = deadline
        pool_timeout = self._settings.pool_timeout
        congested = False
        if congestion and pool_timeout is not None:
            bound = loop.time() + pool_timeout
            if limit is None or bound < limit:
                limit, congested = bound, True
        try:
            async with asyncio.timeout_at(limit):
                return await awaitable
        except TimeoutError:
            if congested:
                raise PoolExhaustedError(
                    f"{name}: no connection became free in the pool in time ({what}, "
                    f"pool_timeout {pool_timeout:g}s); not sent"
                ).with_delivery(Delivery.NOT_SENT) from None
            raise CacheTimeoutError(
                f"{name}: timed out: the operation deadline passed while {what}; not sent"
            ).with_delivery(Delivery.NOT_SENT) from None
        except CacheException as exc:
            raise copy_error(exc, name, Delivery.NOT_SENT) from exc.__cause__

    # -- opening connections ---------------------------------------------------------

    async def _open(self, *, shared: bool, deadline: float | None) -> Connection:
        """Connect, set the socket options and run the handshake; errors are mapped, ``NOT_SENT``."""
        s = self._settings
        loop = asyncio.get_running_loop()
        connection_class = Resp3Connection if self._resp3 else Connection
        hooks = list(self._hooks) if shared else []

        def factory() -> Connection:
            return connection_class(
                max_in_flight=s.max_in_flight if shared else 1 << 30,
                stall_bound=s.socket_timeout if shared else None,
                health_check_interval=s.health_check_interval,
                address=s.address,
                on_lost=self._shared_lost if shared else None,
                on_push=self._push if self._resp3 else None,
            )

        limit = deadline
        if s.socket_connect_timeout is not None:
            bound = loop.time() + s.socket_connect_timeout
            limit = bound if limit is None else min(limit, bound)
        conn: Connection | None = None
        try:
            async with asyncio.timeout_at(limit):
                if s.unix_socket_path is not None:
                    _, conn = await loop.create_unix_connection(factory, s.unix_socket_path, ssl=s.tls)
                else:
                    assert s.host is not None
                    assert s.port is not None
                    _, conn = await loop.create_connection(
                        factory, s.host, s.port, ssl=s.tls, server_hostname=s.server_hostname
                    )
                self._set_socket_options(conn)
                if s.tls is not None:
                    # With TLS 1.3 a server refuses a client certificate only after
                    # the handshake: one loop iteration lets that alert arrive before
                    # the first write, which could otherwise meet a reset instead.
                    await asyncio.sleep(0)
                commands = handshake_commands(
                    protocol=s.protocol,
                    credentials=s.credentials,
                    client_name=s.client_name,
                    db=s.db,
                    tls=s.tls is not None,
                    extra=[args for hook in hooks for args in hook.commands],
                )
                await handshake(conn, commands, None)
        except TimeoutError:
            if conn is not None:
                conn.close("the connection attempt timed out")
            raise CacheTimeoutError(
                f"timed out connecting to {s.address} (socket_connect_timeout {s.socket_connect_timeout}s)"
            ).with_delivery(Delivery.NOT_SENT) from None
        except CacheException as exc:
            if conn is not None:
                conn.close("the connection handshake failed")
            exc.delivery = Delivery.NOT_SENT
            if s.tls is not None and type(exc) is CacheUnavailableError and not s.client_certificate:
                # A server that completes the TLS handshake and then closes before
                # answering anything refused the client (TLS 1.3 refuses a missing
                # client certificate after the handshake; depending on timing the
                # client reads the alert or only a reset). A refusal, not an
                # outage: reported the same way whichever arrived first.
                raise CacheTLSError(
                    f"{exc.args[0]}; the server closed the TLS connection before answering: the TLS handshake "
                    "was refused; if it requires a client certificate, configure ssl_certfile and ssl_keyfile"
                ).with_delivery(Delivery.NOT_SENT) from exc
            raise
        except (OSError, EOFError) as exc:  # refused, reset, unreachable, TLS refused (ssl.SSLError is an OSError)
            if conn is not None:
                conn.close("the connection attempt failed")
            raise connection_error(exc, "", Delivery.NOT_SENT, where=f"connecting to {s.address}") from exc
        except BaseException:
            if conn is not None:
                conn.close("the connection attempt was interrupted")
            raise
        self._serial += 1
        conn.serial = self._serial
        conn.arm_idle_check()
        return conn

    def _set_socket_options(self, conn: Connection) -> None:
        s = self._settings
        transport = conn.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is None or s.unix_socket_path is not None or not s.socket_keepalive:
            return
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            for option, value in (s.socket_keepalive_options or {}).items():
                sock.setsockopt(socket.IPPROTO_TCP, option, value)
        except OSError as exc:  # an option this platform does not know
            _log.debug("neuroglia-redis: could not set a keepalive option: %s", exc)

    async def _open_dedicated(self, deadline: float | None) -> Connection:
        return await self._open(shared=False, deadline=deadline)

    # -- health checks ---------------------------------------------------------------

    def _start_check(self, conn: Connection) -> asyncio.Task[bool]:
        task = conn.checking
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(self._ping(conn))
            conn.checking = task
        return task

    async def _ping(self, conn: Connection) -> bool:
        """``PING`` an idle connection before reuse; one that does not answer is closed."""
        bound = self._settings.socket_timeout or self._settings.socket_connect_timeout or 5.0
        try:
            reply = await conn.submit(_PING, "PING", conn.loop.time() + bound)
        except CacheException as exc:
            conn.close(f"the connection failed its health check ({exc})")
            return False
        if reply not in (b"PONG", [b"pong", b""]):
            conn.close(f"the connection answered its health check with {reply!r}")
            return False
        conn.needs_check = False
        return True

    async def _health_check(self, conn: Connection, deadline: float | None) -> bool:
        healthy: bool = await self._wait(
            asyncio.shield(self._start_check(conn)), "PING", deadline, congestion=False, what="health check"
        )
        return healthy

    # -- push messages and session hooks ---------------------------------------------

    def add_push_handler(self, handler: PushHandler) -> None:
        """Call ``handler`` with every push message a shared connection receives (RESP3 only).

        Handlers run on the event loop inside the connection's read path:
        they must be quick and must not block; an exception is logged and
        does not affect the connection.
        """
        self._push_handlers.append(handler)

    def remove_push_handler(self, handler: PushHandler) -> None:
        """Stop calling ``handler`` (no error if it was not registered)."""
        if handler in self._push_handlers:
            self._push_handlers.remove(handler)

    def _push(self, message: list[Any]) -> None:
        for handler in list(self._push_handlers):
            try:
                handler(message)
            except Exception:
                _log.exception("neuroglia-redis: a push message handler failed")

    def add_session_hook(
        self,
        commands: Sequence[Args],
        *,
        on_ready: Callable[[int], None] | None = None,
        on_lost: Callable[[int], None] | None = None,
    ) -> SessionHook:
        """Run ``commands`` on every shared connection before it serves any later command.

        For connection state a feature depends on, such as
        ``CLIENT TRACKING ON`` for a near cache: the commands are part of the
        handshake of every shared connection opened from now on, and are
        queued at once on the connections already open (ahead of any command
        sent after this call, since a connection answers in order).
        ``on_ready(n)`` is called when they ran on connection number ``n``;
        ``on_lost(n)`` when that connection is lost, since whatever it would
        have received meanwhile (invalidations) may be missing. A refusal of
        the commands closes the connection (and fails its connect attempt).
        """
        hook = SessionHook(tuple(tuple(args) for args in commands), on_ready, on_lost)
        self._hooks.append(hook)
        for conn in self._shared:
            if conn is not None and conn.open:
                self._run_hook(hook, conn)
        return hook

    def remove_session_hook(self, hook: SessionHook) -> None:
        """Stop running ``hook`` on new connections and stop its callbacks (its state stays on open ones)."""
        if hook in self._hooks:
            self._hooks.remove(hook)

    def _run_hook(self, hook: SessionHook, conn: Connection) -> None:
        names = [command_name(args[0]) for args in hook.commands]

        def check(replies: list[Any]) -> None:
            for name, reply in zip(names, replies, strict=True):
                if reply.__class__ is _ReplyError:
                    raise server_error(str(reply), f"session hook ({name})")

        future = conn.submit(pack_many(hook.commands), "", None, len(hook.commands), check)

        def done(finished: asyncio.Future[Any]) -> None:
            if finished.cancelled():
                return
            error = finished.exception()
            if error is not None:
                conn.close(f"a session hook failed on the connection: {error}")
            elif conn.open:
                self._hook_ready(hook, conn)

        future.add_done_callback(done)

    def _hook_ready(self, hook: SessionHook, conn: Connection) -> None:
        if hook not in self._hooks:
            return
        hook.connections.add(conn.serial)
        if hook.on_ready is not None:
            try:
                hook.on_ready(conn.serial)
            except Exception:
                _log.exception("neuroglia-redis: a session hook's on_ready failed")

    def _shared_lost(self, conn: Connection, error: CacheException) -> None:
        for index, current in enumerate(self._shared):
            if current is conn:
                self._shared[index] = None
        self._update_ready()
        for hook in list(self._hooks):
            if conn.serial in hook.connections:
                hook.connections.discard(conn.serial)
                if hook.on_lost is not None:
                    try:
                        hook.on_lost(conn.serial)
                    except Exception:
                        _log.exception("neuroglia-redis: a session hook's on_lost failed")

    # -- lifetime and figures --------------------------------------------------------

    async def close(self) -> None:
        """Close every connection; outstanding commands fail. A later command reconnects."""
        for index, task in enumerate(self._connecting):
            if task is not None:
                task.cancel()
                self._connecting[index] = None
        for conn in self._shared:
            if conn is not None:
                conn.close()
        self._shared = [None] * len(self._shared)
        self._dedicated.close()
        self._open_gate()
        self._failures = 0
        self._retry_at = 0.0
        self._last_error = None
        await asyncio.sleep(0)  # let the transports run their close callbacks

    def pool_stats(self) -> PoolStats:
        """Open connections; in use = shared ones with commands outstanding plus lent dedicated ones."""
        shared = [conn for conn in self._shared if conn is not None and conn.open]
        busy = sum(1 for conn in shared if conn.outstanding)
        idle = self._dedicated.idle
        lent = self._dedicated.lent
        created = len(shared) + idle + lent
        in_use = busy + lent
        return PoolStats(
            created_connections=created,
            in_use_connections=in_use,
            available_connections=created - in_use,
            max_connections=self._settings.max_connections,
        )

    def __repr__(self) -> str:
        s = self._settings
        return f"MultiplexedTransport({s.address}, shared={len(self._shared)}, max_connections={s.max_connections})"


def _pipeline_result(names: list[str], shapes: list[Any] | None) -> Callable[[list[Any]], list[Any]]:
    def finish(replies: list[Any]) -> list[Any]:
        results: list[Any] = []
        for index, reply in enumerate(replies):
            if reply.__class__ is _ReplyError:
                results.append(server_error(str(reply), names[index]))
            elif shapes is not None and shapes[index] is not None:
                results.append(shapes[index](reply))
            else:
                results.append(reply)
        return results

    return finish


def _transaction_result(names: list[str], shapes: list[Any] | None) -> Callable[[list[Any]], list[Any]]:
    pipeline = _pipeline_result(names, shapes)

    def finish(replies: list[Any]) -> list[Any]:
        multi, queued, outcome = replies[0], replies[1:-1], replies[-1]
        if multi.__class__ is _ReplyError:
            raise server_error(str(multi), "MULTI")
        if outcome.__class__ is _ReplyError:
            # EXECABORT: a command was refused while queued, so nothing ran.
            for index, reply in enumerate(queued):
                if reply.__class__ is _ReplyError:
                    raise server_error(str(reply), f"{names[index]} (command {index + 1} of the transaction)")
            raise server_error(str(outcome), "EXEC")
        if outcome is None:
            raise CacheCommandError("EXEC: the transaction was aborted by the server; nothing ran").with_delivery(
                Delivery.NOT_APPLIED
            )
        return pipeline(outcome)

    return finish
