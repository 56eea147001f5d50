"""The sentinel transport: the multiplexed transport to whichever server the sentinels call the primary.

Commands go to a :class:`~neuroglia.data.redis.transport.multiplexed.MultiplexedTransport`
on the current primary (its throughput, deadlines and cancellation rules
unchanged). The primary is found by asking the sentinels
(:mod:`.resolver`) and confirmed by the server itself (``ROLE`` answers
``master``) before anything is sent to it.

A failover is followed by :mod:`.primary` (``+switch-master``, a
``READONLY`` reply or a lost connection make it ask the sentinels again;
callers wait for the new primary up to their deadline). Commands in flight
on the old primary end with
:class:`~neuroglia.data.redis.CacheUnavailableError` with the delivery the
multiplexed transport gives them (``NOT_SENT`` if never written,
``NOT_APPLIED`` for ``READONLY``, ``MAYBE_APPLIED`` if the reply was lost),
so the executor's retry rules resend exactly what is safe to resend.

Nothing waits past its deadline: a caller without one (batches, whose timer
is the executor's) waits at most ``socket_connect_timeout`` for a primary.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any

from neuroglia.data.redis.exceptions import (
    CacheException,
    CacheTimeoutError,
    CacheUnavailableError,
)

from ..contract import Args, PoolStats
from ..multiplexed import ConnectionSettings, DedicatedSession, MultiplexedTransport, PushHandler, SessionHook
from ..multiplexed.handshake import Credentials
from .hooks import Registrations
from .primary import PrimaryFollower
from .replicas import ReplicaRouter
from .resolver import Address, SentinelResolver, format_address

if TYPE_CHECKING:
    from ...config import RedisConfig

__all__ = ["SentinelTransport"]

_log = logging.getLogger("neuroglia.data.redis")


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
        self._registrations = Registrations()
        self._follower = PrimaryFollower(
            self._resolver,
            self._data_transport,
            self._registrations,
            self._primary_changed,
            wait_bound=self._wait_bound,
        )
        self._router = ReplicaRouter(
            read_from, self._resolver, self._data_transport, self._current, refresh_interval=replica_refresh_interval
        )

    # -- what it is connected to -----------------------------------------------------

    @property
    def settings(self) -> ConnectionSettings:
        """The data connections' settings (their ``host``/``port`` are the current primary's, when known)."""
        inner = self._follower.inner
        return inner.settings if inner is not None else self._template

    @property
    def service_name(self) -> str:
        """The monitored service this transport follows."""
        return self._resolver.service_name

    @property
    def primary_address(self) -> Address | None:
        """The confirmed primary's ``(host, port)``, ``None`` before the first command."""
        return self._follower.address

    @property
    def failovers(self) -> int:
        """How many times the transport moved to a new primary."""
        return self._follower.failovers

    @property
    def sentinels(self) -> list[Address]:
        """The sentinels, in the order they are asked."""
        return self._resolver.sentinels

    @property
    def replicas(self) -> list[Address]:
        """The replicas reads currently go to (``read_from`` other than ``"primary"``)."""
        return self._router.replicas

    def _current(self) -> tuple[Address | None, MultiplexedTransport | None]:
        return self._follower.address, self._follower.inner

    def _primary_changed(self, address: Address) -> None:
        self._router.primary_changed(address)

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
        inner = self._follower.fast
        if inner is None or (self._router.enabled and self._router.serves(args) and not self._registrations.active):
            return await self._execute_slow(args, deadline)
        try:
            return await inner.execute(args, deadline)
        except CacheException as exc:
            self._follower.observe(inner, exc)
            raise

    async def _execute_slow(self, args: Args, deadline: float | None) -> Any:
        if self._router.enabled and self._router.serves(args) and not self._registrations.active:
            return await self._read(args, deadline)
        inner = await self._follower.get(args[0], deadline)
        try:
            return await inner.execute(args, deadline)
        except CacheException as exc:
            self._follower.observe(inner, exc)
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
        inner = self._follower.fast
        if inner is None:
            inner = await self._follower.get(args[0], deadline)
        try:
            return await inner.execute(args, deadline)
        except CacheException as exc:
            self._follower.observe(inner, exc)
            raise

    async def execute_many(self, commands: Sequence[Args], *, transaction: bool) -> list[Any]:
        """Send a batch to the primary in one round trip (``MULTI``/``EXEC`` around it when asked)."""
        if not commands:
            return []
        inner = self._follower.fast
        if inner is None:
            inner = await self._follower.get("MULTI" if transaction else "PIPELINE", None)
        try:
            return await inner.execute_many(commands, transaction=transaction)
        except CacheException as exc:
            self._follower.observe(inner, exc)
            raise

    async def execute_blocking(self, args: Args, timeout: float) -> Any:
        """Send a blocking command to the primary on a dedicated connection."""
        inner = self._follower.fast
        if inner is None:
            inner = await self._follower.get(args[0], None)
        try:
            return await inner.execute_blocking(args, timeout)
        except CacheException as exc:
            self._follower.observe(inner, exc)
            raise

    @contextlib.asynccontextmanager
    async def dedicated(self) -> AsyncIterator[DedicatedSession]:
        """A dedicated connection to the primary (``WATCH`` ... ``EXEC``)."""
        inner = self._follower.fast
        if inner is None:
            inner = await self._follower.get("DEDICATED", None)
        async with inner.dedicated() as session:
            yield session

    async def close(self) -> None:
        """Close every connection (primary, replicas, sentinels); a later command finds the primary again."""
        await self._follower.close()
        await self._router.close()
        await self._resolver.close()

    def pool_stats(self) -> PoolStats:
        """The primary's connections plus the replicas' (sentinel connections are not counted)."""
        stats = [t.pool_stats() for t in (self._follower.inner, *self._router.transports) if t is not None]
        return PoolStats(
            created_connections=sum(s.created_connections for s in stats),
            in_use_connections=sum(s.in_use_connections for s in stats),
            available_connections=sum(s.available_connections for s in stats),
            max_connections=self._template.max_connections,
        )

    # -- push handlers and session hooks (the near cache) ----------------------------

    def add_push_handler(self, handler: PushHandler) -> None:
        """Call ``handler`` with every push message of the primary's connections, across failovers."""
        self._registrations.add_handler(handler, self._follower.inner)

    def remove_push_handler(self, handler: PushHandler) -> None:
        """Stop calling ``handler``."""
        self._registrations.remove_handler(handler, self._follower.inner)

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
        return self._registrations.add_hook(commands, on_ready, on_lost, self._follower.inner)

    def remove_session_hook(self, hook: SessionHook) -> None:
        """Stop running ``hook`` on new connections and stop its callbacks."""
        self._registrations.remove_hook(hook)

    def __repr__(self) -> str:
        address = self._follower.address
        where = format_address(address) if address else "unresolved"
        return f"SentinelTransport(service={self.service_name!r}, primary={where}, read_from={self._router.mode!r})"
