"""One connection to Redis: an :class:`asyncio.Protocol` feeding a :class:`hiredis.Reader`.

Many callers share it. :meth:`Connection.submit` queues a command's bytes
and returns a future. A command that finds the connection idle is written at
once (a lone caller pays no extra loop iteration); the commands queued after
it during the same event-loop iteration leave together in one ``write()`` (a
``call_soon`` flush). Replies are matched to
requests in the order they were written (Redis answers each connection in
order). A request stays in the queue until its reply has been read, even when
its caller was cancelled or timed out: that reply is read and discarded, so
no caller ever receives another caller's reply.

Time is kept by one timer per connection, not one per command. It fires at
the earliest of: the nearest deadline of a queued request, the moment the
connection will have been silent for ``stall_bound`` seconds with requests
outstanding, and the moment an idle connection is due for a health check.
Deadlines in a repository grow with submission order, so the timer usually
fires about once per operation timeout and finds the request it was armed
for long answered; a firing scans the queue (bounded by ``max_in_flight``).

A request whose deadline passes fails with
:class:`~neuroglia.data.redis.CacheTimeoutError`: ``NOT_SENT`` if it was still
in the write buffer (it is then taken out and never written),
``MAYBE_APPLIED`` if it was written. A connection silent past
``stall_bound`` with requests outstanding is closed and every request on it
fails at once (``MAYBE_APPLIED`` if written, ``NOT_SENT`` if not).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Callable
from typing import Any, cast

import hiredis

from neuroglia.data.redis.exceptions import CacheException, CacheTimeoutError, CacheUnavailableError, Delivery

from .errors import connection_error, server_error
from .resp3 import normalize

__all__ = ["Connection", "Request", "Resp3Connection", "command_name", "copy_error"]

_log = logging.getLogger("neuroglia.data.redis")
_ReplyError = hiredis.ReplyError
_PushNotification = hiredis.PushNotification
_INF = math.inf


def command_name(name: Any) -> str:
    """A command's name for messages (``args[0]``, upper case)."""
    if name.__class__ is bytes:
        return str(name.decode("ascii", "replace")).upper()
    return str(name).upper()


class Request:
    """One queued command (or batch): its caller's future and what its replies become."""

    __slots__ = ("deadline", "expected", "finish", "future", "name", "replies", "shape")

    def __init__(
        self,
        future: asyncio.Future[Any],
        name: Any,
        deadline: float | None,
        expected: int = 1,
        finish: Callable[[list[Any]], Any] | None = None,
        shape: Callable[[Any], Any] | None = None,
    ) -> None:
        self.future = future
        self.name = name
        self.deadline = deadline
        self.expected = expected
        # A batch collects its replies here and ``finish`` turns them into its
        # result (or raises its error); a single command has neither.
        self.replies: list[Any] | None = [] if finish is not None else None
        self.finish = finish
        self.shape = shape


LostCallback = Callable[["Connection", CacheException], None]
PushCallback = Callable[[list[Any]], None]


class Connection(asyncio.Protocol):
    """A RESP2 connection shared by many callers; see the module docstring."""

    def __init__(
        self,
        *,
        max_in_flight: int,
        stall_bound: float | None,
        health_check_interval: float,
        address: str,
        on_lost: LostCallback | None = None,
        on_push: PushCallback | None = None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self._time = self.loop.time
        self.address = address
        self.max_in_flight = max_in_flight
        self.stall_bound = stall_bound
        self.health_check_interval = health_check_interval
        self.on_lost = on_lost
        self.on_push = on_push
        self.transport: asyncio.Transport | None = None
        self.open = False
        self.lost = False
        self.lost_error: CacheException | None = None
        self.needs_check = False  # idle past health_check_interval: PING before the next command
        self.checking: asyncio.Task[bool] | None = None
        self.inflight = 0  # commands queued or written whose replies have not all been read
        self.serial = 0  # numbered by the transport once open (session hooks name connections by it)
        self.writes = 0  # write() calls made: how well writes were coalesced (diagnostics, tests)
        self._reader = hiredis.Reader()
        self._pending: deque[Request] = deque()  # written, in write order
        self._out: list[Request] = []  # queued for the next write
        self._out_data: list[bytes] = []
        self._flush_scheduled = False
        self._paused = False
        self._held = False  # a flush was held back while paused: drop cancelled requests
        self._room_waiters: deque[asyncio.Future[None]] = deque()
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = _INF
        self._last_read = self._time()
        self._busy_since = self._last_read

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)
        self.open = True

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        self._last_read = self._time()
        pending = self._pending
        try:
            reply = reader.gets()
            while reply is not False:
                if not pending:
                    self._unexpected(reply)
                    return
                request = pending[0]
                replies = request.replies
                if replies is None:
                    pending.popleft()
                    self.inflight -= 1
                    future = request.future
                    # A cancelled or timed-out caller's reply is read and dropped here.
                    if not future.done():
                        if reply.__class__ is _ReplyError:
                            future.set_exception(server_error(str(reply), command_name(request.name)))
                        else:
                            future.set_result(reply)
                else:
                    replies.append(reply)
                    if len(replies) == request.expected:
                        pending.popleft()
                        self.inflight -= request.expected
                        self._finish(request)
                reply = reader.gets()
        except hiredis.ProtocolError as exc:
            self.abort(connection_error(exc, "", Delivery.MAYBE_APPLIED, where=self.address))
            return
        if self._room_waiters:
            self._wake_room()
        if not pending and self._drain_waiters:
            self._wake_drained()

    def _finish(self, request: Request) -> None:
        future = request.future
        if future.done():
            return
        assert request.finish is not None
        assert request.replies is not None
        try:
            result = request.finish(request.replies)
        except CacheException as exc:
            future.set_exception(exc)
        else:
            future.set_result(result)

    def _unexpected(self, reply: Any) -> None:
        # A reply nobody asked for: the stream can no longer be matched to callers.
        error = CacheUnavailableError(
            f"Redis unavailable: an unexpected reply ({type(reply).__name__}) arrived on {self.address}; "
            "the connection was closed"
        ).with_delivery(Delivery.MAYBE_APPLIED)
        self.abort(error)

    def eof_received(self) -> bool:
        return False  # close: the server hung up

    def pause_writing(self) -> None:
        # The socket's buffer is full: keep commands in our buffer, where the
        # ones whose deadline passes can still be taken back as not sent.
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._out and not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.lost:
            return
        self.abort(connection_error(exc, "", Delivery.MAYBE_APPLIED, where=self.address), close=False)

    # -- queueing and writing ---------------------------------------------------------

    def submit(
        self,
        data: bytes,
        name: Any,
        deadline: float | None,
        expected: int = 1,
        finish: Callable[[list[Any]], Any] | None = None,
        shape: Callable[[Any], Any] | None = None,
    ) -> asyncio.Future[Any]:
        """Queue ``data`` (``expected`` commands) for the next write; the future gets the reply.

        The caller has checked :attr:`open` and that there is room
        (:meth:`has_room`). ``finish`` turns a batch's replies into its result.
        """
        future = self.loop.create_future()
        if not self.open:
            # Lost between the caller's check and now (only possible across an
            # await, e.g. during a handshake): fail at once, nothing is written.
            lost = self.lost_error or CacheUnavailableError("Redis unavailable: the connection is closed")
            future.set_exception(copy_error(lost, name, Delivery.NOT_SENT))
            return future
        self._out.append(Request(future, name, deadline, expected, finish, shape))
        self._out_data.append(data)
        self.inflight += expected
        if deadline is not None and deadline < self._timer_when:
            self._arm(deadline)
        if not self._flush_scheduled:
            if not self._pending and len(self._out) == 1:
                # An idle connection: write at once instead of an iteration
                # later (a lone caller's round trip); commands queued after it
                # in this iteration are coalesced as usual.
                self._flush()
            else:
                self._flush_scheduled = True
                self.loop.call_soon(self._flush)
        return future

    def has_room(self, expected: int = 1) -> bool:
        """Whether ``expected`` more commands fit under ``max_in_flight`` (a batch always fits an idle connection)."""
        return self.inflight + expected <= self.max_in_flight or self.inflight == 0

    def _flush(self) -> None:
        self._flush_scheduled = False
        out = self._out
        if not out or not self.open:
            return
        if self._paused:
            self._held = True
            return
        transport = self.transport
        assert transport is not None
        data = self._out_data
        if self._held:
            # Held back while the socket was full: callers cancelled meanwhile
            # are dropped unwritten.
            self._held = False
            self._drop_done(out, data)
            if not out:
                if not self._pending:
                    self._wake_drained()
                return
        pending = self._pending
        if not pending and self.stall_bound is not None:
            # A busy period starts: the connection must answer within the stall bound.
            self._busy_since = now = self._time()
            if now + self.stall_bound < self._timer_when:
                self._arm(now + self.stall_bound)
        pending.extend(out)
        transport.write(data[0] if len(data) == 1 else b"".join(data))
        self.writes += 1
        out.clear()
        data.clear()

    def _drop_done(self, out: list[Request], data: list[bytes]) -> None:
        keep = [i for i, request in enumerate(out) if not request.future.done()]
        if len(keep) == len(out):
            return
        dropped = sum(request.expected for request in out) - sum(out[i].expected for i in keep)
        out[:] = [out[i] for i in keep]
        data[:] = [data[i] for i in keep]
        self.inflight -= dropped
        self._wake_room()

    # -- back-pressure ---------------------------------------------------------------

    def wait_room(self) -> asyncio.Future[None]:
        """A future done when commands may be queued again (or the connection is lost)."""
        waiter: asyncio.Future[None] = self.loop.create_future()
        self._room_waiters.append(waiter)
        return waiter

    def _wake_room(self) -> None:
        room = max(self.max_in_flight - self.inflight, 1 if self.inflight == 0 else 0)
        waiters = self._room_waiters
        while waiters and (room > 0 or not self.open):
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                room -= 1

    def drained(self) -> asyncio.Future[None]:
        """A future done when no request is queued or outstanding (or the connection is lost)."""
        waiter: asyncio.Future[None] = self.loop.create_future()
        if (not self._pending and not self._out) or not self.open:
            waiter.set_result(None)
        else:
            self._drain_waiters.append(waiter)
        return waiter

    def _wake_drained(self) -> None:
        if self._out:
            return
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- the timer ---------------------------------------------------------------------

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_at(when, self._sweep)
        self._timer_when = when

    def _sweep(self) -> None:
        """Fail expired requests, close a stalled connection, flag an idle one for a health check."""
        self._timer = None
        self._timer_when = _INF
        if not self.open:
            return
        now = self._time()
        nearest = _INF
        out = self._out
        if out:
            expired = [i for i, r in enumerate(out) if r.deadline is not None and r.deadline <= now]
            if expired:
                gone = set(expired)
                for i in expired:
                    request = out[i]
                    self.inflight -= request.expected
                    if not request.future.done():
                        request.future.set_exception(_deadline_error(request.name, Delivery.NOT_SENT))
                self._out = [r for i, r in enumerate(out) if i not in gone]
                self._out_data = [d for i, d in enumerate(self._out_data) if i not in gone]
                out = self._out
                self._wake_room()
                if not self._pending:
                    self._wake_drained()
            for request in out:
                if request.deadline is not None and request.deadline < nearest:
                    nearest = request.deadline
        pending = self._pending
        for request in pending:
            deadline = request.deadline
            if deadline is None or request.future.done():
                continue
            if deadline <= now:
                # Written: its reply will still be read (and dropped) in turn.
                request.future.set_exception(_deadline_error(request.name, Delivery.MAYBE_APPLIED))
            elif deadline < nearest:
                nearest = deadline
        stall = self.stall_bound
        if pending and stall is not None:
            silent_since = max(self._last_read, self._busy_since)
            if now - silent_since >= stall:
                self.abort(
                    CacheTimeoutError(
                        f"timed out: no reply from {self.address} for {stall:g}s (socket_timeout) with "
                        f"{len(pending)} command(s) outstanding; the connection was closed"
                    ).with_delivery(Delivery.MAYBE_APPLIED)
                )
                return
            nearest = min(nearest, silent_since + stall)
        elif not pending and not out and self.health_check_interval > 0:
            due = self._last_read + self.health_check_interval
            if now >= due:
                self.needs_check = True
            else:
                nearest = min(nearest, due)
        if nearest < _INF:
            self._arm(nearest)

    def arm_idle_check(self) -> None:
        """Start the idle clock (after the handshake), so an unused connection is checked before reuse."""
        self._last_read = self._time()
        if self._timer is None and self.health_check_interval > 0:
            self._arm(self._last_read + self.health_check_interval)

    # -- closing ------------------------------------------------------------------------

    def abort(self, error: CacheException, *, close: bool = True) -> None:
        """Close at once; every request fails with a copy of ``error``.

        Requests still in the write buffer fail as ``NOT_SENT``, written ones
        with ``error``'s own delivery (``MAYBE_APPLIED`` for a failure of
        the connection).
        """
        if self.lost:
            return
        self.lost = True
        self.lost_error = error
        self.open = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_when = _INF
        transport, self.transport = self.transport, None
        out, self._out = self._out, []
        self._out_data = []
        pending, self._pending = self._pending, deque()
        self.inflight = 0
        for request in out:
            if not request.future.done():
                request.future.set_exception(copy_error(error, request.name, Delivery.NOT_SENT))
        for request in pending:
            if not request.future.done():
                request.future.set_exception(copy_error(error, request.name, error.delivery or Delivery.MAYBE_APPLIED))
        for waiter in self._room_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._room_waiters.clear()
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()
        if close and transport is not None:
            transport.abort()
        if self.on_lost is not None:
            try:
                self.on_lost(self, error)
            except Exception:  # a listener's bug must not leave callers hanging
                _log.exception("neuroglia-redis: a connection-lost listener failed")

    def close(self, reason: str = "the connection was closed by the client") -> None:
        """Close and fail whatever is outstanding (``NOT_SENT`` if unwritten, else ``MAYBE_APPLIED``)."""
        self.abort(CacheUnavailableError(f"Redis unavailable: {reason}").with_delivery(Delivery.MAYBE_APPLIED))

    @property
    def outstanding(self) -> int:
        """Requests queued or written whose replies have not all been read."""
        return len(self._pending) + len(self._out)


class Resp3Connection(Connection):
    """A RESP3 connection: replies normalised to RESP2 shapes, pushes sent to the push handler."""

    # The loop repeats Connection.data_received's on purpose: it runs once
    # per reply, and a shared helper would cost a call per reply on the
    # RESP2 path, which needs neither the push check nor the normalisation.
    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        self._last_read = self._time()
        pending = self._pending
        try:
            raw = reader.gets()
            while raw is not False:
                if raw.__class__ is _PushNotification:
                    self._push(raw)
                    raw = reader.gets()
                    continue
                if not pending:
                    self._unexpected(raw)
                    return
                request = pending[0]
                reply = normalize(raw)
                if request.shape is not None:
                    reply = request.shape(reply)
                replies = request.replies
                if replies is None:
                    pending.popleft()
                    self.inflight -= 1
                    future = request.future
                    if not future.done():
                        if reply.__class__ is _ReplyError:
                            future.set_exception(server_error(str(reply), command_name(request.name)))
                        else:
                            future.set_result(reply)
                else:
                    replies.append(reply)
                    if len(replies) == request.expected:
                        pending.popleft()
                        self.inflight -= request.expected
                        self._finish(request)
                raw = reader.gets()
        except hiredis.ProtocolError as exc:
            self.abort(connection_error(exc, "", Delivery.MAYBE_APPLIED, where=self.address))
            return
        if self._room_waiters:
            self._wake_room()
        if not pending and self._drain_waiters:
            self._wake_drained()

    def _push(self, message: Any) -> None:
        handler = self.on_push
        if handler is None:
            return
        try:
            handler(normalize(list(message)))
        except Exception:  # a handler's bug must not break the connection
            _log.exception("neuroglia-redis: a push message handler failed")


def _deadline_error(name: Any, delivery: Delivery) -> CacheTimeoutError:
    if delivery is Delivery.NOT_SENT:
        text = "the operation deadline passed before the command could be written; it was not sent"
    else:
        text = "no reply within the operation deadline; the command may have run"
    return CacheTimeoutError(f"{command_name(name)}: timed out: {text}").with_delivery(delivery)


def copy_error(error: CacheException, name: Any, delivery: Delivery) -> CacheException:
    """A fresh exception like ``error`` for one caller (each gets its own traceback)."""
    prefix = command_name(name)
    text = str(error)
    clone = error.__class__.__new__(error.__class__)
    clone.__dict__.update(error.__dict__)
    clone.args = (f"{prefix}: {text}" if prefix and not text.startswith(prefix + ":") else text,)
    clone.__cause__ = error.__cause__
    clone.delivery = delivery
    return clone
