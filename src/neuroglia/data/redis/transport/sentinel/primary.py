"""Following the primary: which server it is now, and moving to the next one after a failover.

:class:`PrimaryFollower` holds the transport to the confirmed primary. A
failover is noticed three ways: a ``+switch-master`` message on the
sentinel subscription (:mod:`.watcher`), a ``READONLY`` reply (the server
was demoted), or a connection failure of the primary. Each marks the
primary *suspect* and starts one resolution (single-flight: concurrent
callers share it; attempts are spaced by ``RESOLVE_INTERVAL``): the
sentinels are asked (:mod:`.resolver`), each candidate is confirmed by the
server itself (``ROLE`` answers ``master``), and when the primary moved the
inner transport is swapped and the old one closed. While the primary is
suspect, callers wait for the resolution up to their deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from neuroglia.data.redis.exceptions import (
    CacheCommandError,
    CacheException,
    CacheTimeoutError,
    CacheTLSError,
    CacheUnavailableError,
    Delivery,
    PoolExhaustedError,
)

from ..multiplexed import MultiplexedTransport
from ..multiplexed.connection import command_name, copy_error
from .hooks import Registrations
from .resolver import Address, SentinelResolver, format_address
from .watcher import SwitchWatcher

__all__ = ["RESOLVE_INTERVAL", "PrimaryFollower"]

_log = logging.getLogger("neuroglia.data.redis")

RESOLVE_INTERVAL = 0.1
"""Seconds between two resolutions of the primary (a failing one is retried no faster)."""


class PrimaryFollower:
    """The confirmed primary's transport, kept current across failovers; see the module docstring.

    ``build(address)`` makes the transport of a data server;
    ``primary_changed(address)`` is told when the primary moved (the
    replica reads' list changes with it).
    """

    def __init__(
        self,
        resolver: SentinelResolver,
        build: Callable[[Address], MultiplexedTransport],
        registrations: Registrations,
        primary_changed: Callable[[Address], None],
        *,
        wait_bound: float,
    ) -> None:
        self._resolver = resolver
        self._build = build
        self._registrations = registrations
        self._primary_changed = primary_changed
        self._wait_bound = wait_bound  # how long a caller without a deadline waits for a primary
        self._watcher = SwitchWatcher(resolver, self._on_switch, self._on_subscribed)
        self.inner: MultiplexedTransport | None = None
        self.address: Address | None = None
        self.fast: MultiplexedTransport | None = None
        """The primary's transport while it is confirmed and not suspect: the one attribute the fast path reads."""
        self._suspect = True  # no primary confirmed yet
        self._resolving: asyncio.Task[MultiplexedTransport] | None = None
        self._next_attempt = 0.0
        self._hint: Address | None = None  # the new primary a +switch-master message named
        self._generation = 0  # bumped by close()
        self.failovers = 0
        """How many times the primary moved."""

    @property
    def suspect(self) -> bool:
        """The primary may have moved: callers wait for a resolution before sending."""
        return self._suspect

    @suspect.setter
    def suspect(self, value: bool) -> None:
        self._suspect = value
        self.fast = None if value else self.inner

    async def close(self) -> None:
        """Stop following: callers waiting give up, the subscription and the primary's transport close."""
        self._generation += 1
        await self._watcher.stop()
        task, self._resolving = self._resolving, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, CacheException):
                await task
        inner, self.inner = self.inner, None
        self.address = None
        self.suspect = True
        self._next_attempt = 0.0
        if inner is not None:
            await self.retire(inner)

    def observe(self, inner: MultiplexedTransport, exc: CacheException) -> None:
        """A failure of the primary's transport: if it may mean a failover, re-resolve."""
        if inner is not self.inner or not _may_be_failover(exc, inner):
            return
        self.suspect = True
        self._start_resolution()

    def _on_switch(self, address: Address) -> None:
        if address != self.address:
            self._hint = address
            self.suspect = True
            self._next_attempt = 0.0  # the sentinels have decided: ask them now
            self._start_resolution()

    def _on_subscribed(self) -> None:
        # A switch may have happened while nobody listened: check (cheap when nothing changed).
        if self.inner is not None:
            self._start_resolution()

    def _start_resolution(self) -> asyncio.Task[MultiplexedTransport]:
        task = self._resolving
        if task is None or task.done():
            task = self._resolving = asyncio.get_running_loop().create_task(
                self._resolve(), name="neuroglia-redis-sentinel-resolve"
            )
            task.add_done_callback(_consume)
        return task

    async def get(self, name: Any, deadline: float | None) -> MultiplexedTransport:
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
                    f"{self._resolver.service_name!r} through the sentinels{why}; not sent"
                ).with_delivery(Delivery.NOT_SENT) from None
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if task.cancelled() and (current is None or not current.cancelling()):
                    # close() gave the resolution up: the caller's command was not sent, it was not cancelled.
                    raise self._closed_error(label) from None
                raise
            except CacheException as exc:
                # A refusal (credentials, TLS trust, an unknown service) will not heal by asking again.
                refused = isinstance(exc, CacheTLSError) or not isinstance(exc, CacheUnavailableError)
                if refused or loop.time() + RESOLVE_INTERVAL >= limit:
                    error = copy_error(exc, "", Delivery.NOT_SENT)
                    if not refused:
                        error.args = (
                            f"{label}: no primary of service {self._resolver.service_name!r} could be reached "
                            f"before the deadline; not sent (last attempt: {exc})",
                        )
                    else:
                        error.args = (f"{label}: {exc}",)
                    raise error from exc.__cause__
                last = exc  # a failover in progress: the next attempt may find the new primary

    def _closed_error(self, label: str) -> CacheUnavailableError:
        return CacheUnavailableError(
            f"{label}: Redis unavailable: the transport was closed while finding the primary of "
            f"service {self._resolver.service_name!r}; not sent"
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
        inner = self.inner
        # The current transport is kept only while it has a live connection to that
        # address: after losing it, it would wait out its connect backoff (up to 1 s)
        # before trying again, where a new one asks at once.
        fresh = inner is None or address != self.address or inner.pool_stats().created_connections == 0
        if fresh:
            inner = self._build(address)
            self._registrations.install(inner)  # hooks run before the new primary serves anything
        assert inner is not None
        try:
            await self._confirm(inner, address, loop.time() + self._wait_bound)
        except BaseException:
            if fresh:
                await self.retire(inner)
            raise
        if fresh:
            old, moved = self.inner, address != self.address
            self.inner, self.address = inner, address
            self._registrations.install(inner)  # what was registered while it was being confirmed
            if moved:
                self._primary_changed(address)
            if old is not None and moved:
                self.failovers += 1
                _log.warning(
                    "neuroglia-redis: service %r moved to a new primary at %s",
                    self._resolver.service_name,
                    format_address(address),
                )
            if old is not None:
                await self.retire(old)
        self.suspect = False
        return inner

    async def _confirm(self, inner: MultiplexedTransport, address: Address, deadline: float) -> None:
        """The server at ``address`` says it is a primary (``ROLE``), or the resolution fails."""
        try:
            role = await inner.execute(("ROLE",), deadline)
        except CacheCommandError:
            return  # an ACL without +role, or ROLE renamed: the sentinels' word has to do
        kind = role[0] if isinstance(role, list) and role else role
        if kind != b"master":
            shown = kind.decode("utf-8", "replace") if isinstance(kind, bytes) else repr(kind)
            raise CacheUnavailableError(
                f"Redis unavailable: the sentinels name {format_address(address)} the primary of "
                f"{self._resolver.service_name!r} but it answers ROLE {shown}: a failover is in progress"
            ).with_delivery(Delivery.NOT_SENT)

    async def retire(self, inner: MultiplexedTransport) -> None:
        """Close a primary's transport that is no longer used; its hooks report their connections lost."""
        self._registrations.uninstall(inner)
        await inner.close()
        self._registrations.forget(inner)


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
