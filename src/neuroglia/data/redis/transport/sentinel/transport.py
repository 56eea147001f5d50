"""The sentinel transport: the multiplexed transport to whichever server the sentinels call the primary.

Commands go to a :class:`~neuroglia.data.redis.transport.multiplexed.MultiplexedTransport`
on the current primary (its throughput, deadlines and cancellation rules
unchanged). The primary is found by asking the sentinels
(:mod:`.resolver`) and confirmed by the server itself (``ROLE`` answers
``master``) before anything is sent to it.

A failover is noticed three ways: a ``+switch-master`` message on the
sentinel subscription (:mod:`.watcher`), a ``READONLY`` reply (the server
was demoted), or a connection failure of the primary. Each marks the
primary *suspect* and starts one resolution (single-flight: concurrent
callers share it; attempts are spaced by ``RESOLVE_INTERVAL``). While the
primary is suspect, new commands wait for the resolution up to their
deadline instead of going to a server that may be gone; when it finds a new
primary, the inner transport is swapped and the old one closed. Commands in
flight on the old primary end with
:class:`~neuroglia.data.redis.CacheUnavailableError` with the delivery the
multiplexed transport gives them (``NOT_SENT`` if never written,
``NOT_APPLIED`` for ``READONLY``, ``MAYBE_APPLIED`` if the reply was lost),
so the executor's retry rules resend exactly what is safe to resend.

Nothing waits past its deadline: a caller without one (batches, whose timer
is the executor's) waits at most ``socket_connect_timeout`` for a primary.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any

from neuroglia.data.redis.exceptions import (
    CacheException,
    CachePermissionError,
    CacheTimeoutError,
    CacheUnavailableError,
    Delivery,
    PoolExhaustedError,
)

from ..contract import Args, PoolStats
from ..multiplexed import ConnectionSettings, DedicatedSession, MultiplexedTransport, PushHandler, SessionHook
from ..multiplexed.connection import command_name, copy_error
from ..multiplexed.handshake import Credentials
from .hooks import Registrations
from .replicas import ReplicaRouter
from .resolver import Address, SentinelResolver, format_address
from .watcher import SwitchWatcher

if TYPE_CHECKING:
    from ...config import RedisConfig

__all__ = ["RESOLVE_INTERVAL", "SentinelTransport"]

_log = logging.getLogger("neuroglia.data.redis")

RESOLVE_INTERVAL = 0.1
"""Seconds between two resolutions of the primary (a failing one is retried no faster)."""


class SentinelTransport:
    """A :class:`~neuroglia.data.redis.transport.Transport` that follows a Sentinel-managed primary.

    ``sentinels`` and ``service_name`` say where to ask; ``sentinel_username``
    and ``sentinel_password`` are the sentinels' credentials (the data
    connections use the config's). ``read_from`` sends reads to replicas
    (``"replica"``, ``"nearest"``; see :mod:`.replicas`).
    """

    def __init__(
        self,
        config: RedisConfig,
        *,
        sentinels: Sequence[Address],
        service_name: str,
        sentinel_username: str | None = None,
        sentinel_password: str | None = None,
        read_from: str = "primary",
        replica_refresh_interval: float = 5.0,
    ) -> None:
        self._config = config
        self._sentinel_credentials = Credentials(sentinel_username, sentinel_password)
        # The data connections' settings without an address: built once, so a bad TLS file fails here.
        self._template = ConnectionSettings.from_config(config, host=None, port=None, server_hostname=None)
        pool = config.pool
        self._wait_bound = float(pool.socket_connect_timeout or 5.0)
        self._resolver = SentinelResolver(sentinels, service_name, self._sentinel_settings, timeout=self._wait_bound)
        self._watcher = SwitchWatcher(self._resolver, self._on_switch, self._on_subscribed)
        self._router = ReplicaRouter(
            read_from, self._resolver, self._data_transport, self._current, refresh_interval=replica_refresh_interval
        )
        self._registrations = Registrations()
        self._inner: MultiplexedTransport | None = None
        self._address: Address | None = None
        self._suspect = True  # no primary confirmed yet
        self._resolving: asyncio.Task[MultiplexedTransport] | None = None
        self._next_attempt = 0.0
        self._hint: Address | None = None  # the new primary a +switch-master message named
        self._generation = 0  # bumped by close()
        self.failovers = 0
        """How many times the transport moved to a new primary."""

    # -- what it is connected to -----------------------------------------------------

    @property
    def settings(self) -> ConnectionSettings:
        """The data connections' settings (their ``host``/``port`` are the current primary's, when known)."""
        inner = self._inner
        return inner.settings if inner is not None else self._template

    @property
    def service_name(self) -> str:
        """The monitored service this transport follows."""
        return self._resolver.service_name

    @property
    def primary_address(self) -> Address | None:
        """The confirmed primary's ``(host, port)``, ``None`` before the first command."""
        return self._address

    @property
    def sentinels(self) -> list[Address]:
        """The sentinels, in the order they are asked."""
        return self._resolver.sentinels

    @property
    def replicas(self) -> list[Address]:
        """The replicas reads currently go to (``read_from`` other than ``"primary"``)."""
        return self._router.replicas

    def _current(self) -> tuple[Address | None, MultiplexedTransport | None]:
        return self._address, self._inner

    def _sentinel_settings(self, host: str, port: int) -> ConnectionSettings:
        return ConnectionSettings.from_config(
            self._config,
            host=host,
            port=port,
            server_hostname=host if self._template.tls is not None else None,
            tls=self._template.tls,
            db=0,
            credentials=self._sentinel_credentials,
            protocol=2,
            max_connections=1,
            multiplexed_connections=1,
        )

    def _data_transport(self, address: Address) -> MultiplexedTransport:
        host, port = address
        settings = ConnectionSettings.from_config(
            self._config,
            host=host,
            port=port,
            server_hostname=host if self._template.tls is not None else None,
            tls=self._template.tls,
        )
        return MultiplexedTransport(settings)

    # -- the contract ----------------------------------------------------------------

    async def execute(self, args: Args, deadline: float | None = None) -> Any:
        """Send one command to the primary (a read to a replica with ``read_from``) and return its raw reply."""
        if self._router.enabled and not self._registrations.active and self._router.serves(args):
            return await self._read(args, deadline)
        inner = self._inner
        if inner is None or self._suspect:
            inner = await self._primary(args[0], deadline)
        try:
            return await inner.execute(args, deadline)
        except CacheException as exc:
            self._observe(inner, exc)
            raise

    async def _read(self, args: Args, deadline: float | None) -> Any:
        replica = await self._router.pick(deadline)
        if replica is not None:
            try:
                return await replica.execute(args, deadline)
            except CacheUnavailableError as exc:
                self._router.failed(replica)
                if isinstance(exc, CacheTimeoutError) and deadline is not None:
                    raise  # its deadline is spent: nothing left for the primary
                _log.debug("neuroglia-redis: replica read failed, asking the primary: %s", exc)
        inner = self._inner
        if inner is None or self._suspect:
            inner = await self._primary(args[0], deadline)
        try:
            return await inner.execute(args, deadline)
        except CacheException as exc:
            self._observe(inner, exc)
            raise

    async def execute_many(self, commands: Sequence[Args], *, transaction: bool) -> list[Any]:
        """Send a batch to the primary in one round trip (``MULTI``/``EXEC`` around it when asked)."""
        if not commands:
            return []
        inner = self._inner
        if inner is None or self._suspect:
            inner = await self._primary("MULTI" if transaction else "PIPELINE", None)
        try:
            return await inner.execute_many(commands, transaction=transaction)
        except CacheException as exc:
            self._observe(inner, exc)
            raise

    async def execute_blocking(self, args: Args, timeout: float) -> Any:
        """Send a blocking command to the primary on a dedicated connection."""
        inner = self._inner
        if inner is None or self._suspect:
            inner = await self._primary(args[0], None)
        try:
            return await inner.execute_blocking(args, timeout)
        except CacheException as exc:
            self._observe(inner, exc)
            raise

    @contextlib.asynccontextmanager
    async def dedicated(self) -> AsyncIterator[DedicatedSession]:
        """A dedicated connection to the primary (``WATCH`` ... ``EXEC``)."""
        inner = self._inner
        if inner is None or self._suspect:
            inner = await self._primary("DEDICATED", None)
        async with inner.dedicated() as session:
            yield session

    async def close(self) -> None:
        """Close every connection (primary, replicas, sentinels); a later command finds the primary again."""
        self._generation += 1  # callers waiting for a primary give up
        await self._watcher.stop()
        task, self._resolving = self._resolving, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, CacheException):
                await task
        await self._router.close()
        inner, self._inner = self._inner, None
        self._address = None
        self._suspect = True
        self._next_attempt = 0.0
        if inner is not None:
            await self._retire(inner)
        await self._resolver.close()

    def pool_stats(self) -> PoolStats:
        """The primary's connections plus the replicas' (sentinel connections are not counted)."""
        stats = [t.pool_stats() for t in (self._inner, *self._router.transports) if t is not None]
        return PoolStats(
            created_connections=sum(s.created_connections for s in stats),
            in_use_connections=sum(s.in_use_connections for s in stats),
            available_connections=sum(s.available_connections for s in stats),
            max_connections=self._template.max_connections,
        )

    # -- push handlers and session hooks (the near cache) ----------------------------

    def add_push_handler(self, handler: PushHandler) -> None:
        """Call ``handler`` with every push message of the primary's connections, across failovers."""
        self._registrations.add_handler(handler, self._inner)

    def remove_push_handler(self, handler: PushHandler) -> None:
        """Stop calling ``handler``."""
        self._registrations.remove_handler(handler, self._inner)

    def add_session_hook(
        self,
        commands: Sequence[Args],
        *,
        on_ready: Callable[[int], None] | None = None,
        on_lost: Callable[[int], None] | None = None,
    ) -> SessionHook:
        """Run ``commands`` on every connection to the primary, this one and the next after a failover.

        As :meth:`MultiplexedTransport.add_session_hook`; a failover reports
        every connection of the old primary lost. While a hook is registered,
        reads stay on the primary (the hook's state lives on its connections).
        """
        return self._registrations.add_hook(commands, on_ready, on_lost, self._inner)

    def remove_session_hook(self, hook: SessionHook) -> None:
        """Stop running ``hook`` on new connections and stop its callbacks."""
        self._registrations.remove_hook(hook)

    # -- following the primary -------------------------------------------------------

    def _observe(self, inner: MultiplexedTransport, exc: CacheException) -> None:
        """A failure of the primary's transport: if it may mean a failover, re-resolve."""
        if inner is not self._inner or not _may_be_failover(exc, inner):
            return
        self._suspect = True
        self._start_resolution()

    def _on_switch(self, address: Address) -> None:
        if address != self._address:
            self._hint = address
            self._suspect = True
            self._next_attempt = 0.0  # the sentinels have decided: ask them now
            self._start_resolution()

    def _on_subscribed(self) -> None:
        # A switch may have happened while nobody listened: check (cheap when nothing changed).
        if self._inner is not None:
            self._start_resolution()

    def _start_resolution(self) -> asyncio.Task[MultiplexedTransport]:
        task = self._resolving
        if task is None or task.done():
            task = self._resolving = asyncio.get_running_loop().create_task(
                self._resolve(), name="neuroglia-redis-sentinel-resolve"
            )
            task.add_done_callback(_consume)
        return task

    async def _primary(self, name: Any, deadline: float | None) -> MultiplexedTransport:
        """The confirmed primary's transport, waiting for a resolution up to ``deadline``."""
        loop = asyncio.get_running_loop()
        limit = deadline if deadline is not None else loop.time() + self._wait_bound
        label = command_name(name)
        last: CacheException | None = None
        generation = self._generation
        while True:
            if self._generation != generation:
                raise self._closed_error(label)
            task = self._start_resolution()
            try:
                async with asyncio.timeout_at(limit):
                    return await asyncio.shield(task)
            except TimeoutError:
                why = f" (last attempt: {last})" if last is not None else ""
                raise CacheTimeoutError(
                    f"{label}: timed out: the operation deadline passed while finding the primary of service "
                    f"{self.service_name!r} through the sentinels{why}; not sent"
                ).with_delivery(Delivery.NOT_SENT) from None
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if task.cancelled() and (current is None or not current.cancelling()):
                    # close() gave the resolution up: the caller's command was not sent, it was not cancelled.
                    raise self._closed_error(label) from None
                raise
            except CacheException as exc:
                if not isinstance(exc, CacheUnavailableError) or loop.time() + RESOLVE_INTERVAL >= limit:
                    error = copy_error(exc, "", Delivery.NOT_SENT)
                    if isinstance(exc, CacheUnavailableError):
                        error.args = (
                            f"{label}: no primary of service {self.service_name!r} could be reached "
                            f"before the deadline; not sent (last attempt: {exc})",
                        )
                    else:
                        error.args = (f"{label}: {exc}",)
                    raise error from exc.__cause__
                last = exc  # a failover in progress: the next attempt may find the new primary

    def _closed_error(self, label: str) -> CacheUnavailableError:
        return CacheUnavailableError(
            f"{label}: Redis unavailable: the transport was closed while finding the primary of "
            f"service {self.service_name!r}; not sent"
        ).with_delivery(Delivery.NOT_SENT)

    async def _resolve(self) -> MultiplexedTransport:
        """Ask the sentinels, confirm with ``ROLE``, and swap the primary's transport if it moved."""
        self._watcher.start()
        loop = asyncio.get_running_loop()
        wait = self._next_attempt - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        self._next_attempt = loop.time() + RESOLVE_INTERVAL
        last: CacheException | None = None
        hint, self._hint = self._hint, None
        if hint is not None:
            # The address a +switch-master message announced: the decision is made, try it first.
            with contextlib.suppress(CacheUnavailableError):
                return await self._adopt(hint)
        async with contextlib.aclosing(self._resolver.primaries()) as candidates:
            async for address, sentinel in candidates:
                try:
                    inner = await self._adopt(address)
                except CacheUnavailableError as exc:
                    last = exc  # that sentinel lags behind a failover (or the server is down): ask the next
                    continue
                self._resolver.prefer(sentinel)
                return inner
        assert last is not None  # primaries() raises when it yields nothing
        raise last

    async def _adopt(self, address: Address) -> MultiplexedTransport:
        """Confirm the primary at ``address`` and make it the current one (swapping transports if it moved)."""
        loop = asyncio.get_running_loop()
        inner = self._inner
        # The current transport is kept only while it has a live connection to that
        # address: after losing it, it would wait out its connect backoff (up to 1 s)
        # before trying again, where a new one asks at once.
        fresh = inner is None or address != self._address or inner.pool_stats().created_connections == 0
        if fresh:
            inner = self._data_transport(address)
            self._registrations.install(inner)  # hooks run before the new primary serves anything
        assert inner is not None
        try:
            await self._confirm(inner, address, loop.time() + self._wait_bound)
        except BaseException:
            if fresh:
                await self._retire(inner)
            raise
        if fresh:
            old, moved = self._inner, address != self._address
            self._inner, self._address = inner, address
            if moved:
                self._router.primary_changed(address)
            if old is not None and moved:
                self.failovers += 1
                _log.warning(
                    "neuroglia-redis: service %r moved to a new primary at %s",
                    self.service_name,
                    format_address(address),
                )
            if old is not None:
                await self._retire(old)
        self._suspect = False
        return inner

    async def _confirm(self, inner: MultiplexedTransport, address: Address, deadline: float) -> None:
        """The server at ``address`` says it is a primary (``ROLE``), or the resolution fails."""
        try:
            role = await inner.execute(("ROLE",), deadline)
        except CachePermissionError:
            return  # an ACL without +role: the sentinels' word has to do
        kind = role[0] if isinstance(role, list) and role else role
        if kind != b"master":
            shown = kind.decode("utf-8", "replace") if isinstance(kind, bytes) else repr(kind)
            raise CacheUnavailableError(
                f"Redis unavailable: the sentinels name {format_address(address)} the primary of "
                f"{self.service_name!r} but it answers ROLE {shown}: a failover is in progress"
            ).with_delivery(Delivery.NOT_SENT)

    async def _retire(self, inner: MultiplexedTransport) -> None:
        """Close a primary's transport that is no longer used; its hooks report their connections lost."""
        self._registrations.uninstall(inner)
        await inner.close()
        self._registrations.forget(inner)

    def __repr__(self) -> str:
        where = format_address(self._address) if self._address else "unresolved"
        return f"SentinelTransport(service={self.service_name!r}, primary={where}, read_from={self._router.mode!r})"


def _may_be_failover(exc: CacheException, inner: MultiplexedTransport) -> bool:
    """A failure of the primary that a failover would explain (not local congestion, not a bad command)."""
    if not isinstance(exc, CacheUnavailableError) or isinstance(exc, PoolExhaustedError):
        return False
    if exc.delivery is Delivery.NOT_APPLIED:
        return "READONLY" in str(exc) or "MASTERDOWN" in str(exc)
    if isinstance(exc, CacheTimeoutError):
        # A slow reply under load is not a failover (asking the sentinels after every
        # timeout would load them for nothing); a connection given up as stalled is.
        return inner.pool_stats().created_connections == 0
    return True


def _consume(task: asyncio.Task[Any]) -> None:
    """Retrieve a background resolution's failure (the waiters got it; nobody else needs it)."""
    if not task.cancelled():
        error = task.exception()
        if error is not None:
            _log.debug("neuroglia-redis: finding the primary failed: %s", error)
