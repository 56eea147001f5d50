"""The executor: the one path every command takes to the transport.

In order, for each command: the circuit breaker admits the call (or fails
fast), the command runs under the operation deadline, a failure (already in
the library's error tree, with its :class:`~neuroglia.data.redis.Delivery`,
from the transport) is counted by the breaker once per operation, resent
with backoff only when a resend cannot apply it twice (never sent, refused
unapplied, or idempotent) and the deadline leaves room, recorded in the
metrics, and a read that finally fails with an outage may be answered by
the stale fallback. Pipelines and transactions come through here as one
batch command. No repository method repeats any of this.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable
from time import perf_counter
from typing import Any, TypeVar

from ..exceptions import (
    CacheException,
    CacheTimeoutError,
    CacheTLSError,
    CacheUnavailableError,
    CircuitOpenError,
    ClusterNodeUnavailableError,
    Delivery,
    PoolExhaustedError,
)
from ..nearcache import Fetch
from ..observability.metrics import CacheMetrics
from ..resilience.breaker import CircuitBreakerPolicy
from ..resilience.fallback import LastKnownGood
from ..resilience.retry import RetryPolicy
from ..transport.contract import Transport
from .command import Command
from .replies import is_hit

__all__ = ["Executor"]

T = TypeVar("T")
_log = logging.getLogger("neuroglia.data.redis")


class Executor:
    """Runs commands for one repository; see the module docstring.

    ``transport`` is called to get the transport for each command (the
    repository opens one lazily). ``breaker``, ``metrics`` and ``fallback``
    are optional (``None`` is off).
    """

    __slots__ = (
        "_breaker",
        "_fallback",
        "_generation",
        "_metrics",
        "_retry",
        "_served_stale",
        "_timeout",
        "_transport",
    )

    def __init__(
        self,
        transport: Callable[[], Transport],
        *,
        retry: RetryPolicy,
        timeout: float | None,
        breaker: CircuitBreakerPolicy | None = None,
        metrics: CacheMetrics | None = None,
        fallback: LastKnownGood | None = None,
    ) -> None:
        self._transport = transport
        self._retry = retry
        self._timeout = timeout
        self._breaker = breaker
        self._metrics = metrics
        self._fallback = fallback
        # Bumped when the repository disconnects: commands in flight then fail
        # because of the client, which says nothing about the server's health.
        self._generation = 0
        # Per executor (so per repository) and per task: whether the last
        # read was answered by the stale fallback.
        self._served_stale: contextvars.ContextVar[bool] = contextvars.ContextVar(
            f"neuroglia_redis_served_stale_{id(self):x}", default=False
        )

    @property
    def breaker(self) -> CircuitBreakerPolicy | None:
        """The circuit breaker every command passes (``None`` when off)."""
        return self._breaker

    @property
    def metrics(self) -> CacheMetrics | None:
        """Where command figures are recorded (``None`` when off)."""
        return self._metrics

    def served_stale(self) -> bool:
        """Whether the last read in this task was answered by the stale fallback."""
        return self._served_stale.get()

    def bound_to(self, transport: Transport) -> Executor:
        """An executor with this one's breaker, deadline and metrics, sending on ``transport``, never resending.

        For commands on a dedicated connection (``WATCH`` ... ``EXEC``): a
        resend would go out on another connection, where the ``WATCH`` does
        not hold.
        """
        return Executor(
            lambda: transport,
            retry=RetryPolicy(retries=0),
            timeout=self._timeout,
            breaker=self._breaker,
            metrics=self._metrics,
        )

    def disconnected(self) -> None:
        """The repository closed its transport: what is in flight fails for that reason, not the server's."""
        self._generation += 1

    async def run(self, cmd: Command[T], fetch: Fetch | None = None) -> T:
        """Run one command and return its parsed reply (see the module docstring).

        ``fetch`` (the near cache's) sends the command as its batch instead
        (the read and its keys' ``PTTL``) and builds the command's raw reply
        from the batch's replies; everything else is the command's own.
        """
        args = cmd.args
        if not args:
            return cmd.parse(None)
        transport = self._transport()
        breaker = self._breaker
        metrics = self._metrics
        try:
            ticket = breaker.before_call() if breaker is not None else 0
        except CircuitOpenError as exc:
            if metrics is not None:
                metrics.record_error(cmd.name, exc)
            return self._fallback_or_raise(cmd, exc)
        started = perf_counter() if metrics is not None else 0.0
        generation = self._generation
        timeout = self._timeout
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None or cmd.block == 0 else loop.time() + timeout + (cmd.block or 0.0)
        # A single command's transport enforces the deadline itself; blocking
        # commands and batches get a timer here.
        plain = cmd.block is None and cmd.batch is None and fetch is None
        attempt = 0
        while True:
            try:
                if deadline is None or plain:
                    reply = await _send(transport, cmd, deadline, fetch)
                else:
                    async with asyncio.timeout_at(deadline):
                        reply = await _send(transport, cmd, None, fetch)
            except Exception as exc:
                error = _library_error(exc, cmd, timeout, deadline, loop.time())
                attempt += 1
                # Not resent after a disconnect(): that would open connections again.
                resend = error is not None and generation == self._generation
                delay = self._retry_delay(cmd, error, attempt) if resend and error is not None else None
                if delay is not None and (deadline is None or loop.time() + delay < deadline):
                    try:
                        await asyncio.sleep(delay)
                    except BaseException:
                        # Cancelled while waiting to retry: free a half-open trial slot.
                        if breaker is not None:
                            breaker.on_ignored(ticket)
                        raise
                    continue
                # One outcome per operation, whatever the number of attempts.
                # A full pool is local congestion, not an outage, and a command
                # cut by the repository's own disconnect() says nothing about
                # the server: neither is counted.
                if breaker is not None:
                    # One cluster node down (the others serve) is not an outage of the whole.
                    partial = isinstance(error, PoolExhaustedError | ClusterNodeUnavailableError)
                    if partial or generation != self._generation:
                        breaker.on_ignored(ticket)
                    else:
                        breaker.record(ticket, error or exc)
                if metrics is not None:
                    metrics.record_error(cmd.name, error or exc)
                if error is None:
                    raise  # not a failure of the command: a bug in a transport or a parser
                if isinstance(error, CacheUnavailableError):
                    return self._fallback_or_raise(cmd, error, exc)
                if error is exc:
                    raise
                raise error from exc
            except BaseException:
                # Cancellation says nothing about the server's health.
                if breaker is not None:
                    breaker.on_ignored(ticket)
                raise
            if breaker is not None:
                breaker.on_success(ticket)
            if metrics is not None:
                metrics.record_command(cmd.name, perf_counter() - started, read=cmd.read, hit=is_hit(reply))
            if self._fallback is not None and cmd.read:
                self._fallback.remember(args, reply)
                self._served_stale.set(False)
            return cmd.parse(reply)

    async def run_many(self, cmds: list[Command[Any]], *, transaction: bool) -> list[Any]:
        """Many commands in one round trip, through :meth:`run` as one batch.

        The batch gets the same breaker, deadline and error mapping as a
        single command, and is resent only if it surely never ran (it is not
        idempotent as a whole). Returns one outcome per command: its parsed
        result, or the :class:`~neuroglia.data.redis.CacheException` the
        server answered for it, or the one its reply raised while being
        parsed; one command's failure never hides the others' results.
        """
        to_send = tuple(c.args for c in cmds if c.args)
        replies: list[Any] = []
        if to_send:
            name = "MULTI" if transaction else "PIPELINE"
            replies = await self.run(Command((name,), list, idempotent=False, batch=to_send))
        results: list[Any] = []
        it = iter(replies)
        for cmd in cmds:
            reply = next(it) if cmd.args else None
            if isinstance(reply, BaseException):
                results.append(reply)
                continue
            try:
                results.append(cmd.parse(reply))
            except CacheException as exc:  # a typed read that cannot decode its value
                results.append(exc)
        return results

    def _retry_delay(self, cmd: Command[Any], error: CacheException, attempt: int) -> float | None:
        """Seconds to wait before resending ``cmd``, or ``None`` to give up."""
        policy = self._retry
        if attempt > policy.retries or not isinstance(error, CacheUnavailableError):
            return None
        if isinstance(error, CircuitOpenError | CacheTLSError):
            return None  # resending cannot change the answer
        if not cmd.idempotent and error.delivery not in (Delivery.NOT_SENT, Delivery.NOT_APPLIED):
            return None  # resending could apply a write twice
        return policy.delay(attempt)

    def _fallback_or_raise(self, cmd: Command[T], error: CacheException, cause: BaseException | None = None) -> T:
        store = self._fallback
        if store is not None and cmd.read:
            found, reply = store.recall(cmd.args)
            if found:
                _log.debug("%s: Redis unavailable, serving the last known value (%s)", cmd.name, error)
                self._served_stale.set(True)
                return cmd.parse(reply)
        try:
            if cause is None or cause is error:
                raise error
            raise error from cause
        finally:
            # The traceback holds this frame: without this, frame -> error ->
            # traceback -> frame is a cycle per refused call, and the garbage
            # collector's passes put ~60 µs on 1 % of fail-fast calls.
            error = cause = None  # type: ignore[assignment]


async def _send(transport: Transport, cmd: Command[Any], deadline: float | None, fetch: Fetch | None = None) -> Any:
    task = asyncio.current_task()
    cancels = task.cancelling() if task is not None else 0
    try:
        if fetch is not None:
            return fetch.finish(await transport.execute_many(fetch.commands, transaction=False))
        if cmd.batch is not None:
            return await transport.execute_many(cmd.batch, transaction=cmd.args[0] == "MULTI")
        if cmd.block is None:
            return await transport.execute(cmd.args, deadline)
        return await transport.execute_blocking(cmd.args, cmd.block)
    finally:
        if task is not None and task.cancelling() > cancels:
            # A cancellation that landed as the command completed (or failed)
            # was swallowed on the way (asyncio.wait_for in a client library,
            # Python 3.11): deliver it.
            raise asyncio.CancelledError


def _library_error(
    exc: Exception, cmd: Command[Any], timeout: float | None, deadline: float | None, now: float
) -> CacheException | None:
    """The library error for a failure of ``cmd``; ``None`` for what is not one (a bug)."""
    if isinstance(exc, TimeoutError) and deadline is not None and now >= deadline:
        # The executor's own timer (blocking commands, batches): the command was sent.
        error = CacheTimeoutError(f"{cmd.name}: no reply within the operation deadline ({timeout}s)")
        return error.with_delivery(Delivery.MAYBE_APPLIED)
    if isinstance(exc, CacheException):
        return exc
    return None
