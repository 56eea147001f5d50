"""RedisRepository: the command families over one executor, and the repository's lifetime."""

from __future__ import annotations

import enum
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, ClassVar, Literal, Self, TypeVar

from ..commands import (
    HashCommands,
    KeyOperations,
    ListCommands,
    ServerOperations,
    SetCommands,
    SortedSetCommands,
    StringOperations,
)
from ..config import RedisConfig
from ..core.arguments import Arguments
from ..core.executor import Executor
from ..core.keys import build_key, build_pattern, escape_pattern
from ..core.near_executor import NearCachingExecutor
from ..core.probe import RecoveryProbe
from ..core.replies import Replies
from ..core.scripts import Script
from ..exceptions import ConfigurationError, InvalidArgumentError, TransactionAbortedError
from ..nearcache import NearCache
from ..observability.metrics import CacheMetrics
from ..resilience.breaker import CircuitBreakerPolicy, CircuitState
from ..resilience.fallback import FallbackPolicy, LastKnownGood
from ..serialization import SerializationStrategy
from ..serialization.envelope import EnvelopeSerializer
from ..transport import PoolStats, Transport, build_transport
from .near_reads import install_near_reads
from .optimistic import Watch, watching
from .pipeline import Pipeline
from .pool_info import ConnectionPoolInfo

__all__ = ["RedisRepository"]

A = TypeVar("A")
T = TypeVar("T")
_log = logging.getLogger("neuroglia.data.redis")


class _State(enum.Enum):
    IDLE = "idle"  # no transport yet (never used, or disconnected)
    OPEN = "open"


class RedisRepository(
    StringOperations,
    KeyOperations,
    HashCommands,
    ListCommands,
    SetCommands,
    SortedSetCommands,
    ServerOperations,
):
    """The Redis cache repository: strings, hashes, lists, sets, sorted sets.

    Every method sends its command through one executor, where errors are
    mapped to :class:`~neuroglia.data.redis.CacheException` subclasses. A
    miss returns ``None`` (or an empty container for collection reads); an
    outage raises :class:`~neuroglia.data.redis.CacheUnavailableError`.

    The connection is opened lazily on first use; :meth:`connect` opens and
    checks it eagerly. ``async with RedisRepository(config) as repo:`` closes
    it at the end. ``key_prefix`` from the config is prepended to every key
    and removed from every key returned.

    Text replies are ``str``; a stored value that is not valid UTF-8 comes
    back as ``bytes`` unchanged. With ``decode_responses=False`` every reply
    is ``bytes``.
    """

    _command_mode: ClassVar[Literal["run", "queue"] | None] = "run"

    def __init__(self, config: RedisConfig | None = None, *, transport: Transport | None = None) -> None:
        self._config = config if config is not None else RedisConfig()
        prefix = self._config.key_prefix
        self._arg = Arguments(prefix)
        self._reply = Replies(prefix, decode=bool(self._config.decode_responses))
        self._serializer: SerializationStrategy = self._config.serialization
        # The typed helpers wrap the strategy's bytes in the versioned envelope.
        self._codec = EnvelopeSerializer(self._serializer, self._config.envelope_policy)
        self._injected_transport = transport
        self._transport: Transport | None = None
        self._closed_transport: Transport | None = None
        self._scripts: dict[str, Script] = {}
        self._attachments: dict[type[Any], Any] = {}
        self._state = _State.IDLE
        self._pool_info = ConnectionPoolInfo(self)
        breaker = CircuitBreakerPolicy.coerce(self._config.circuit_breaker)
        metrics = CacheMetrics(self._config.metrics_prefix) if self._config.enable_metrics else None
        if metrics is not None and breaker is not None:
            breaker.add_listener(self._on_breaker_change)
        fallback = self._config.fallback
        near_options = self._config.near_cache_options
        self._near = NearCache(near_options, key_prefix=prefix, metrics=metrics) if near_options is not None else None
        settings: dict[str, Any] = {
            "retry": self._config.retry,
            "timeout": self._config.operation_timeout,
            "breaker": breaker,
            "metrics": metrics,
            "fallback": LastKnownGood(fallback) if isinstance(fallback, FallbackPolicy) else None,
        }
        self._executor = (
            NearCachingExecutor(self._current_transport, near=self._near, **settings)
            if self._near is not None
            else Executor(self._current_transport, **settings)
        )
        self._run = self._executor.run
        if self._near is not None:
            install_near_reads(self, RedisRepository)
        # While the breaker is open, recovery follows the server, not a timer.
        self._probe = RecoveryProbe(breaker, self._current_transport) if breaker is not None else None

    # -- lifetime ------------------------------------------------------------

    @property
    def config(self) -> RedisConfig:
        """The configuration this repository was built with."""
        return self._config

    @property
    def serializer(self) -> SerializationStrategy:
        """The strategy used by the typed helpers."""
        return self._serializer

    @property
    def codec(self) -> EnvelopeSerializer:
        """The strategy inside the versioned envelope: what the typed helpers write and read."""
        return self._codec

    @property
    def is_connected(self) -> bool:
        """Whether a client (and its pool) currently exists."""
        return self._state is _State.OPEN

    @property
    def metrics(self) -> CacheMetrics | None:
        """The figures of this repository's commands (``None`` unless ``enable_metrics``)."""
        return self._executor.metrics

    @property
    def near_cache(self) -> NearCache | None:
        """The in-process level in front of Redis (``None`` unless ``near_cache`` is configured).

        Its ``statistics()`` give hits, misses, evictions, invalidations and
        flushes; see ``docs/caching.md``.
        """
        return self._near

    @property
    def circuit_breaker(self) -> CircuitBreakerPolicy | None:
        """The repository's own breaker (``None`` when turned off)."""
        return self._executor.breaker

    @property
    def connection_pool(self) -> ConnectionPoolInfo:
        """Live figures of the connection pool."""
        return self._pool_info

    def _on_breaker_change(self, old: CircuitState, new: CircuitState) -> None:
        metrics = self._executor.metrics
        if metrics is not None:
            metrics.set_gauge("circuit_breaker_open", 1.0 if new is CircuitState.OPEN else 0.0)
            metrics.increment_counter("circuit_breaker_transitions_total", labels={"to": new.value})

    def _current_transport(self) -> Transport:
        return self._transport or self._open()

    def _open(self) -> Transport:
        # A disconnected transport is reused: its pool reconnects on demand, and
        # a memory:// repository keeps its data across disconnect/connect.
        if self._injected_transport is None and self._closed_transport is None and self._config.memory_by_default:
            _log.warning(
                "no Redis server is configured (set REDIS_URL, or url=/host=): this repository uses a private "
                "in-process memory:// store, which other processes do not share (locks do not coordinate across "
                "processes); pass url='memory://' to choose it, or require_server=True (REDIS_REQUIRE_SERVER=1) "
                "to refuse it"
            )
        transport = self._injected_transport or self._closed_transport or build_transport(self._config)
        if self._near is not None:
            # Before any command is sent on it: every read it keeps must be tracked.
            self._near.attach(transport)
        self._transport = transport
        self._state = _State.OPEN
        return transport

    async def connect(self) -> None:
        """Open the client and check the server answers (raises if it does not)."""
        if self._transport is None:
            self._open()
        await self.ping()

    async def disconnect(self) -> None:
        """Close every connection. A later call reconnects lazily."""
        if self._probe is not None:
            await self._probe.close()
        # The last transport is closed even when it looks closed already:
        # commands that were under way at an earlier disconnect() may have
        # left connections behind in it since.
        transport, self._transport = self._transport or self._closed_transport, None
        self._state = _State.IDLE
        self._executor.disconnected()
        if self._near is not None:
            await self._near.detach()
        if transport is not None and transport is not self._injected_transport:
            self._closed_transport = transport
            await transport.close()

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.disconnect()

    def _pool_stats(self) -> PoolStats:
        if self._transport is None:
            return PoolStats(0, 0, 0, self._config.pool.max_connections)
        return self._transport.pool_stats()

    def served_stale(self) -> bool:
        """Whether the last read in this task, on this repository, was answered by the stale fallback."""
        return self._executor.served_stale()

    def attachment(self, kind: type[A], make: Callable[[RedisRepository], A]) -> A:
        """The one ``kind`` object attached to this repository, made by ``make(self)`` on first use.

        How the layers above keep per-repository state (the locks' runtime,
        for example) without module-level registries: it lives and dies with
        the repository.
        """
        if not isinstance(kind, type) or not callable(make):
            raise InvalidArgumentError("attachment(kind, make): kind must be a class and make a callable")
        found = self._attachments.get(kind)
        if found is None:
            found = self._attachments[kind] = make(self)
        return found

    def __repr__(self) -> str:
        return f"RedisRepository({self._config.redacted_url}, prefix={self._arg.prefix!r}, state={self._state.value})"

    @staticmethod
    def configure(builder: Any, config: RedisConfig | str | Mapping[str, Any] | None = None, **options: Any) -> Any:
        """Register one shared repository in a Neuroglia application builder; returns the builder.

        In the style of the framework's other integrations: the same as
        ``builder.services.add_redis_repository(config, ...)``, and without a
        config it reads the builder settings' ``"redis"`` connection string,
        then ``REDIS_*`` environment variables. Needs the framework
        (``neuroglia-redis[neuroglia]``); see ``docs/framework.md``.
        """
        register = getattr(getattr(builder, "services", None), "add_redis_repository", None)
        if register is None:
            raise ConfigurationError(
                "RedisRepository.configure needs the Neuroglia framework's application builder "
                "(pip install 'neuroglia-redis[neuroglia]'); its services have no add_redis_repository"
            )
        register(config, settings=getattr(builder, "settings", None), **options)
        return builder

    # -- pipelines and transactions --------------------------------------------

    def pipeline(self, *, transaction: bool = False) -> Pipeline:
        """Queue commands and send them in one round trip.

        ``async with repo.pipeline() as pipe:`` queues the repository's own
        methods (``pipe.set_async(...)``, no ``await`` needed) and executes
        them when the block ends; ``await pipe.execute()`` runs them earlier
        and returns their results. With ``transaction=True`` they run as one
        ``MULTI``/``EXEC`` block: see :meth:`transaction` for what that
        guarantees.
        """
        return Pipeline(self, transaction=transaction)

    def watch(self, *keys: str | bytes) -> AbstractAsyncContextManager[Watch]:
        """``WATCH`` ``keys`` on a connection of their own, for an optimistic transaction.

        ::

            async with repo.watch("stock:basil") as watch:
                stock = int(await watch.get_async("stock:basil") or 0)
                async with watch.transaction() as tx:   # runs only if stock:basil did not change
                    tx.set_async("stock:basil", stock - 1)

        The transaction raises :class:`~neuroglia.data.redis.TransactionAbortedError`
        (and runs nothing) when another client changed a watched key since the
        ``WATCH``. :meth:`optimistic_async` retries for you.
        """
        watched = list(keys)
        self._arg.keys(watched)  # checked before a connection is lent
        return watching(self, self._current_transport(), watched)

    async def optimistic_async(
        self, keys: Iterable[str | bytes], work: Callable[[Watch], Awaitable[T]], *, retries: int = 5
    ) -> T:
        """Run ``work(watch)`` with ``keys`` watched until its transaction goes through; returns what it returns.

        ``work`` reads through the watch and writes in ``watch.transaction()``;
        when another client changed a watched key in between, nothing was
        written and ``work`` runs again, up to ``retries`` more times, then
        the :class:`~neuroglia.data.redis.TransactionAbortedError` is raised.
        """
        if isinstance(keys, str | bytes) or not isinstance(keys, Iterable):
            raise InvalidArgumentError(f"keys must be an iterable of keys, got {type(keys).__name__}")
        watched = list(keys)
        self._arg.keys(watched)
        if not callable(work):
            raise InvalidArgumentError(f"work must be an async function taking the Watch, got {type(work).__name__}")
        attempts = self._arg.integer(retries, "retries") + 1
        if attempts < 1:
            raise InvalidArgumentError(f"retries must be >= 0, got {retries!r}")
        for attempt in range(attempts):
            async with self.watch(*watched) as watch:
                outcome = work(watch)
                if not inspect.isawaitable(outcome):
                    raise InvalidArgumentError(
                        f"work must be an async function taking the Watch; it returned {type(outcome).__name__}"
                    )
                try:
                    return await outcome
                except TransactionAbortedError:
                    if attempt + 1 == attempts:
                        raise
        raise AssertionError("unreachable")  # pragma: no cover

    def transaction(self) -> Pipeline:
        """A ``MULTI``/``EXEC`` pipeline: no other client sees part of it.

        Redis runs the queued commands one after the other with nothing in
        between; it does not roll back: a command that fails at run time
        (``WRONGTYPE``) fails alone, and the commands before and after it
        still apply. Each command's outcome is in the results.
        """
        return Pipeline(self, transaction=True)

    escape_pattern = staticmethod(escape_pattern)
    build_key = staticmethod(build_key)
    build_pattern = staticmethod(build_pattern)
