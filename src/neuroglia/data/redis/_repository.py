"""RedisRepository: the cache repository and its one execute path."""

from __future__ import annotations

import asyncio
import contextvars
import enum
import hashlib
import logging
import math
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import timedelta
from time import perf_counter
from types import TracebackType
from typing import Any, Final, Self, TypeVar

from ._awaitable import AwaitableInt
from ._breaker import CircuitBreakerPolicy, CircuitState
from ._client import PoolExhaustedError, PoolStats, Transport, build_transport, classify_error, was_applied_maybe
from ._command import Command, command, decode_text, keep_bytes, parse_info
from ._config import RedisConfig
from ._envelope import EnvelopeSerializer
from ._fallback import FallbackPolicy, LastKnownGood
from ._keys import build_key, build_pattern, escape_pattern
from ._pipeline import Pipeline
from .exceptions import (
    CacheAuthenticationError,
    CacheCommandError,
    CacheException,
    CacheTimeoutError,
    CacheTLSError,
    CacheUnavailableError,
    CircuitOpenError,
    InvalidArgumentError,
    SerializationError,
)
from .exceptions import PoolExhaustedError as _ContractPoolExhaustedError
from .metrics import CacheMetrics
from .serialization import SerializationStrategy, from_plain

__all__ = ["ConnectionPoolInfo", "RedisRepository", "escape_pattern"]

T = TypeVar("T")
Key = str | bytes
Value = str | bytes
Expiration = timedelta | int | float
ScalarValue = str | bytes | int | float
# Mapping is invariant in its key type: spell out the key types a caller's
# dict may have, so that a plain dict[str, str] type-checks.
KeyMapping = Mapping[str, ScalarValue] | Mapping[bytes, ScalarValue] | Mapping[Key, ScalarValue]
ScoreMapping = Mapping[str, float] | Mapping[bytes, float] | Mapping[int, float] | Mapping[ScalarValue, float]

# Redis refuses bulk strings above proto-max-bulk-len (512 MiB by default);
# refusing earlier spares the round trip and the server's memory spike.
MAX_VALUE_BYTES: Final = 512 * 1024 * 1024
_log = logging.getLogger("neuroglia.data.redis")
# Set by the stale fallback; read by RedisRepository.served_stale() in the same task.
_served_stale: contextvars.ContextVar[bool] = contextvars.ContextVar("neuroglia_redis_served_stale", default=False)


class _State(enum.Enum):
    IDLE = "idle"  # no transport yet (never used, or disconnected)
    OPEN = "open"


class ConnectionPoolInfo:
    """Live figures of the repository's connection pool.

    Each figure is an ``int`` that can also be awaited, as the framework's
    page does with ``await redis.connection_pool.created_connections``.
    """

    __slots__ = ("_repository",)

    def __init__(self, repository: RedisRepository) -> None:
        self._repository = repository

    def _stats(self) -> PoolStats:
        return self._repository._pool_stats()

    @property
    def created_connections(self) -> AwaitableInt:
        """Connections currently open (idle or in use)."""
        return AwaitableInt(self._stats().created_connections)

    @property
    def in_use_connections(self) -> AwaitableInt:
        """Connections lent to a running command."""
        return AwaitableInt(self._stats().in_use_connections)

    @property
    def available_connections(self) -> AwaitableInt:
        """Idle connections ready for the next command."""
        return AwaitableInt(self._stats().available_connections)

    @property
    def max_connections(self) -> AwaitableInt:
        """The pool's bound."""
        return AwaitableInt(self._stats().max_connections)

    def __repr__(self) -> str:
        s = self._stats()
        return (
            f"ConnectionPoolInfo(created={s.created_connections}, in_use={s.in_use_connections}, "
            f"max={s.max_connections})"
        )


def _is_hit(reply: Any) -> bool:
    """Whether a read found something: a value, or a non-empty multi-reply with a value in it."""
    if reply.__class__ is list:  # HGETALL/SMEMBERS of a missing key, MGET of missing keys
        return any(item is not None for item in reply)
    return reply is not None


def _ok(reply: Any) -> bool:
    return reply is not None and reply != 0 and reply != b"0"


def _int(reply: Any) -> int:
    return int(reply)


def _float(reply: Any) -> float:
    return float(reply)


def _optional_float(reply: Any) -> float | None:
    return None if reply is None else float(reply)


def _optional_int(reply: Any) -> int | None:
    return None if reply is None else int(reply)


def _zero(_: Any) -> int:
    return 0


class RedisRepository:
    """The Redis cache repository: strings, hashes, lists, sets, sorted sets.

    Every method sends its command through one execute path, where errors are
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

    def __init__(self, config: RedisConfig | None = None, *, transport: Transport | None = None) -> None:
        self._config = config if config is not None else RedisConfig()
        self._prefix = self._config.key_prefix
        self._prefix_bytes = self._prefix.encode()
        self._text: Callable[[Any], Any] = decode_text if self._config.decode_responses else keep_bytes
        self._serializer: SerializationStrategy = self._config.serialization
        # The typed helpers wrap the strategy's bytes in the versioned envelope.
        self._codec = EnvelopeSerializer(self._serializer, self._config.envelope_policy)
        self._injected_transport = transport
        self._transport: Transport | None = None
        self._closed_transport: Transport | None = None
        self._scripts: dict[str, Script] = {}
        self._lock_state: Any = None  # the locks' per-repository state (_lock.py); dies with the repository
        self._state = _State.IDLE
        self._pool_info = ConnectionPoolInfo(self)
        self._breaker = CircuitBreakerPolicy.coerce(self._config.circuit_breaker)
        self._metrics = CacheMetrics(self._config.metrics_prefix) if self._config.enable_metrics else None
        if self._metrics is not None and self._breaker is not None:
            self._breaker.add_listener(self._on_breaker_change)
        self._operation_timeout = self._config.operation_timeout
        fallback = self._config.fallback
        self._last_known_good = LastKnownGood(fallback) if isinstance(fallback, FallbackPolicy) else None

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
        return self._metrics

    def _on_breaker_change(self, old: CircuitState, new: CircuitState) -> None:
        if self._metrics is not None:
            self._metrics.set_gauge("circuit_breaker_open", 1.0 if new is CircuitState.OPEN else 0.0)
            self._metrics.increment_counter("circuit_breaker_transitions_total", labels={"to": new.value})

    @property
    def circuit_breaker(self) -> CircuitBreakerPolicy | None:
        """The repository's own breaker (``None`` when turned off)."""
        return self._breaker

    @property
    def connection_pool(self) -> ConnectionPoolInfo:
        """Live figures of the connection pool."""
        return self._pool_info

    def _open(self) -> Transport:
        # A disconnected transport is reused: its pool reconnects on demand, and
        # a memory:// repository keeps its data across disconnect/connect.
        transport = self._injected_transport or self._closed_transport or build_transport(self._config)
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
        transport, self._transport = self._transport, None
        self._state = _State.IDLE
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

    def __repr__(self) -> str:
        return f"RedisRepository({self._config.redacted_url}, prefix={self._prefix!r}, state={self._state.value})"

    @staticmethod
    def configure(builder: Any, config: RedisConfig | str | Mapping[str, Any] | None = None, **options: Any) -> Any:
        """Register one shared repository in a Neuroglia application builder; returns the builder.

        Like the framework's other integrations; see :mod:`neuroglia.data.redis.hosting`.
        """
        from .hosting import configure

        return configure(builder, config, **options)

    # -- the one execute path ------------------------------------------------

    async def _execute(self, cmd: Command[T]) -> T:
        """Run one command. Every command of the repository comes through here.

        In order: the circuit breaker admits the call (or fails fast), the
        command runs under the operation deadline, a failure is mapped to the
        error tree and counted by the breaker, and retried with backoff only
        when a retry cannot apply it twice (never sent, refused unapplied, or
        idempotent) and the deadline leaves room. A read that finally fails
        with an outage may be answered by the stale fallback, if enabled.
        """
        args = cmd.args
        if not args:
            return cmd.parse(None)
        transport = self._transport or self._open()
        breaker = self._breaker
        metrics = self._metrics
        try:
            ticket = breaker.before_call() if breaker is not None else 0
        except CircuitOpenError as exc:
            if metrics is not None:
                metrics.record_error(cmd.name, exc)
            return self._fallback_or_raise(cmd, exc)
        started = perf_counter() if metrics is not None else 0.0
        timeout = self._operation_timeout
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None or cmd.block == 0 else loop.time() + timeout + (cmd.block or 0.0)
        # A single command's transport enforces the deadline without a timer;
        # blocking commands and batches get one.
        plain = cmd.block is None and cmd.batch is None
        attempt = 0
        while True:
            try:
                if deadline is None or plain:
                    reply = await self._send(transport, cmd, deadline)
                else:
                    async with asyncio.timeout_at(deadline):
                        reply = await self._send(transport, cmd, None)
            except Exception as exc:
                mapped = classify_error(exc, cmd.name)
                if isinstance(exc, TimeoutError) and deadline is not None and loop.time() >= deadline:
                    mapped = CacheTimeoutError(f"{cmd.name}: no reply within the operation deadline ({timeout}s)")
                attempt += 1
                delay = None if mapped is None else self._retry_delay(cmd, exc, mapped, attempt)
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
                # A full pool is local congestion, not an outage: not counted.
                if breaker is not None:
                    if isinstance(exc, PoolExhaustedError | _ContractPoolExhaustedError):
                        breaker.on_ignored(ticket)
                    else:
                        breaker.record(ticket, mapped or exc)
                if metrics is not None:
                    metrics.record_error(cmd.name, mapped or exc)
                if mapped is None:
                    raise
                if isinstance(mapped, CacheUnavailableError):
                    return self._fallback_or_raise(cmd, mapped, exc)
                if mapped is exc:
                    raise  # already in the tree (the transport mapped it), with its own cause
                raise mapped from exc
            except BaseException:
                # Cancellation says nothing about the server's health.
                if breaker is not None:
                    breaker.on_ignored(ticket)
                raise
            if breaker is not None:
                breaker.on_success(ticket)
            if metrics is not None:
                metrics.record_command(cmd.name, perf_counter() - started, read=cmd.read, hit=_is_hit(reply))
            if self._last_known_good is not None and cmd.read:
                self._last_known_good.remember(args, reply)
                _served_stale.set(False)
            return cmd.parse(reply)

    @staticmethod
    async def _send(transport: Transport, cmd: Command[Any], deadline: float | None) -> Any:
        task = asyncio.current_task()
        cancels = task.cancelling() if task is not None else 0
        try:
            if cmd.batch is not None:
                return await transport.execute_many(cmd.batch, transaction=cmd.args[0] == "MULTI")
            if cmd.block is None:
                return await transport.execute(cmd.args, deadline)
            return await transport.execute_blocking(cmd.args, cmd.block)
        finally:
            if task is not None and task.cancelling() > cancels:
                # A cancellation that landed as the command completed (or
                # failed) was swallowed on the way (asyncio.wait_for in
                # redis-py, Python 3.11): deliver it.
                raise asyncio.CancelledError

    def _retry_delay(self, cmd: Command[Any], exc: Exception, mapped: CacheException, attempt: int) -> float | None:
        """Seconds to wait before resending ``cmd``, or ``None`` to give up."""
        policy = self._config.retry
        if attempt > policy.retries or not isinstance(mapped, CacheUnavailableError):
            return None
        if isinstance(mapped, CircuitOpenError | CacheAuthenticationError | CacheTLSError):
            return None  # resending cannot change the answer
        if not cmd.idempotent and was_applied_maybe(exc):
            return None  # resending could apply a write twice
        return policy.delay(attempt)

    def _fallback_or_raise(self, cmd: Command[T], error: CacheException, cause: BaseException | None = None) -> T:
        store = self._last_known_good
        if store is not None and cmd.read:
            found, reply = store.recall(cmd.args)
            if found:
                _log.debug("%s: Redis unavailable, serving the last known value (%s)", cmd.name, error)
                _served_stale.set(True)
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

    def served_stale(self) -> bool:
        """Whether the last read in this task was answered by the stale fallback."""
        return _served_stale.get()

    async def _execute_many(self, cmds: list[Command[Any]], *, transaction: bool) -> list[Any]:
        """Many commands in one round trip, through :meth:`_execute` as one batch.

        The batch gets the same breaker, deadline and error mapping as a
        single command, and is resent only if it surely never reached the
        server (it is not idempotent as a whole). Returns one result per
        command; a command the server refused yields its mapped exception
        object in place of a result.
        """
        to_send = tuple(c.args for c in cmds if c.args)
        replies: list[Any] = []
        if to_send:
            name = "MULTI" if transaction else "PIPELINE"
            replies = await self._execute(Command((name,), list, idempotent=False, batch=to_send))
        results: list[Any] = []
        it = iter(replies)
        for cmd in cmds:
            if not cmd.args:
                results.append(cmd.parse(None))
                continue
            reply = next(it)
            if isinstance(reply, BaseException):
                results.append(classify_error(reply, cmd.name) or reply)
            else:
                results.append(cmd.parse(reply))
        return results

    # -- argument checks -----------------------------------------------------

    def _key(self, key: Key) -> Key:
        cls = key.__class__
        if cls is str:
            if key:
                return self._prefix + key if self._prefix else key  # type: ignore[operator]
        elif cls is bytes:
            if key:
                return self._prefix_bytes + key if self._prefix else key  # type: ignore[operator]
        elif isinstance(key, str | bytes):
            # A subclass (a StrEnum member...) is sent as its plain value.
            return self._key(str.__str__(key) if isinstance(key, str) else bytes(key))
        else:
            raise InvalidArgumentError(f"a key must be str or bytes, got {cls.__name__}")
        raise InvalidArgumentError("a key must not be empty")

    def _keys(self, keys: Key | Iterable[Key], more: tuple[Key, ...] = ()) -> list[Key]:
        if isinstance(keys, str | bytes):
            items: list[Key] = [keys, *more]
        else:
            if isinstance(keys, Mapping) or not isinstance(keys, Iterable):
                raise InvalidArgumentError(f"expected a key or an iterable of keys, got {type(keys).__name__}")
            items = [*keys, *more]
        return [self._key(k) for k in items]

    def _strip(self, key: Any) -> Any:
        """Remove the key prefix from a raw key returned by the server."""
        if self._prefix and key.startswith(self._prefix_bytes):
            key = key[len(self._prefix_bytes) :]
        return self._text(key)

    @staticmethod
    def _value(value: Any, what: str = "value") -> ScalarValue:
        cls = value.__class__
        if cls is str:
            if len(value) > MAX_VALUE_BYTES // 4 and len(value.encode()) > MAX_VALUE_BYTES:
                raise InvalidArgumentError(f"{what} is larger than Redis' 512 MiB limit")
            return value  # type: ignore[no-any-return]
        if cls is bytes or cls is bytearray or cls is memoryview:
            if len(value) > MAX_VALUE_BYTES:
                raise InvalidArgumentError(f"{what} is larger than Redis' 512 MiB limit")
            return bytes(value) if cls is not bytes else value
        if cls is int:
            return value  # type: ignore[no-any-return]
        if cls is float:
            if not math.isfinite(value):
                raise SerializationError(f"{what} {value!r} is not a finite number")
            return value  # type: ignore[no-any-return]
        if value is None:
            raise SerializationError(f"{what} is None; Redis cannot store None (use delete_async to remove a key)")
        if isinstance(value, bool):
            raise SerializationError(f"{what} is a bool; store '1'/'0' or use set_object_async")
        if isinstance(value, str | int):
            # A subclass (StrEnum, IntEnum...) is stored as its plain value, not its repr.
            return RedisRepository._value(str.__str__(value) if isinstance(value, str) else int(value), what)
        raise SerializationError(
            f"{what} of type {type(value).__name__} is not str, bytes, int or float; "
            "serialize it first or use set_object_async"
        )

    def _values(self, values: tuple[Any, ...], what: str) -> list[ScalarValue]:
        if not values:
            raise InvalidArgumentError(f"at least one {what} is required")
        if len(values) == 1 and isinstance(values[0], list | tuple | set | frozenset):
            values = tuple(values[0])
            if not values:
                raise InvalidArgumentError(f"at least one {what} is required")
        return [self._value(v, what) for v in values]

    @staticmethod
    def _milliseconds(expiration: Expiration, what: str = "expiration") -> int:
        if isinstance(expiration, timedelta):
            ms = expiration // timedelta(milliseconds=1)
        elif isinstance(expiration, int | float) and not isinstance(expiration, bool):
            if not math.isfinite(expiration):
                raise InvalidArgumentError(f"{what} must be a finite number of seconds, got {expiration!r}")
            ms = round(expiration * 1000)
        else:
            raise InvalidArgumentError(
                f"{what} must be a timedelta or a number of seconds, got {type(expiration).__name__}"
            )
        if ms <= 0:
            raise InvalidArgumentError(f"{what} must be at least 1 millisecond, got {expiration!r}")
        return ms

    def _decode_pairs(self, reply: list[Any]) -> dict[Any, Any]:
        text = self._text
        it = iter(reply)
        return {text(k): text(v) for k, v in zip(it, it, strict=True)}

    def _decode_scored(self, reply: list[Any]) -> list[tuple[Any, float]]:
        text = self._text
        it = iter(reply)
        return [(text(m), float(s)) for m, s in zip(it, it, strict=True)]

    def _decode_set(self, reply: list[Any]) -> set[Any]:
        text = self._text
        return {text(v) for v in reply}

    def _decode_list(self, reply: list[Any]) -> list[Any]:
        text = self._text
        return [text(v) for v in reply]

    def _decode_optional_list(self, reply: list[Any] | None) -> list[Any]:
        return [] if reply is None else self._decode_list(reply)

    # -- keys and strings ----------------------------------------------------

    @command
    def get_async(self, key: Key) -> Command[Value | None]:
        """Return the value at ``key``, or ``None`` when the key does not exist."""
        return Command(("GET", self._key(key)), self._text, read=True)

    @command
    def set_async(
        self,
        key: Key,
        value: ScalarValue,
        expiration: Expiration | None = None,
        *,
        nx: bool = False,
        xx: bool = False,
        keepttl: bool = False,
    ) -> Command[bool]:
        """Store ``value`` at ``key``; ``expiration`` is a ``timedelta`` or seconds.

        ``nx`` only sets a key that does not exist, ``xx`` only one that does,
        ``keepttl`` keeps the current time to live. Returns whether the value
        was written.
        """
        args: list[Any] = ["SET", self._key(key), self._value(value)]
        if expiration is not None:
            if keepttl:
                raise InvalidArgumentError("expiration and keepttl=True contradict each other")
            ms = self._milliseconds(expiration)
            args += ("EX", ms // 1000) if ms % 1000 == 0 else ("PX", ms)
        if nx and xx:
            raise InvalidArgumentError("nx=True and xx=True contradict each other")
        if nx:
            args.append("NX")
        elif xx:
            args.append("XX")
        if keepttl:
            args.append("KEEPTTL")
        # SET NX answers "was it written": resent after a lost reply, it would
        # say no for this caller's own write. Never resent after an uncertain send.
        return Command(tuple(args), _ok, idempotent=not nx)

    @command
    def get_many_async(self, keys: Iterable[Key]) -> Command[dict[Key, Value | None]]:
        """Read many keys in one round trip: ``{key: value or None}``."""
        wanted = list(keys) if not isinstance(keys, str | bytes) else [keys]
        full = self._keys(wanted)
        if not full:
            return Command((), lambda _: {})
        text = self._text
        return Command(
            ("MGET", *full), lambda reply: {k: text(v) for k, v in zip(wanted, reply, strict=True)}, read=True
        )

    async def set_many_async(self, mapping: KeyMapping, expiration: Expiration | None = None) -> None:
        """Write many keys in one round trip, atomically (``MSET``, or ``MULTI`` with a TTL)."""
        if not isinstance(mapping, Mapping):
            raise InvalidArgumentError(f"set_many_async expects a mapping, got {type(mapping).__name__}")
        items = [(self._key(k), self._value(v, f"value for key {k!r}")) for k, v in mapping.items()]
        if not items:
            return
        if expiration is None:
            flat = [part for item in items for part in item]
            await self._execute(Command(("MSET", *flat), _ok))
            return
        ms = self._milliseconds(expiration)
        cmds: list[Command[Any]] = [Command(("SET", k, v, "PX", ms), _ok) for k, v in items]
        for result in await self._execute_many(cmds, transaction=True):
            if isinstance(result, BaseException):
                raise result

    @command
    def delete_async(self, key: Key | Iterable[Key], *keys: Key) -> Command[int]:
        """Delete one or many keys; returns how many existed."""
        full = self._keys(key, keys)
        return Command(("DEL", *full), _int) if full else Command((), _zero)

    @command
    def exists_async(self, key: Key) -> Command[bool]:
        """Whether ``key`` exists."""
        return Command(("EXISTS", self._key(key)), bool)

    @command
    def exists_many_async(self, keys: Iterable[Key]) -> Command[int]:
        """How many of ``keys`` exist (a key named twice counts twice)."""
        full = self._keys(keys)
        return Command(("EXISTS", *full), _int) if full else Command((), _zero)

    @command
    def expire_async(
        self,
        key: Key,
        expiration: Expiration,
        *,
        nx: bool = False,
        xx: bool = False,
        gt: bool = False,
        lt: bool = False,
    ) -> Command[bool]:
        """Set the time to live of ``key``; returns whether it was set."""
        args: list[Any] = ["PEXPIRE", self._key(key), self._milliseconds(expiration)]
        flags = [name for name, on in (("NX", nx), ("XX", xx), ("GT", gt), ("LT", lt)) if on]
        if len(flags) > 1 and not (set(flags) <= {"XX", "GT"} or set(flags) <= {"XX", "LT"}):
            raise InvalidArgumentError(f"expire flags {flags} contradict each other")
        return Command((*args, *flags), bool)

    @command
    def ttl_async(self, key: Key) -> Command[int]:
        """Seconds to live: ``-1`` if the key has no expiry, ``-2`` if it does not exist."""
        return Command(("TTL", self._key(key)), _int)

    @command
    def pttl_async(self, key: Key) -> Command[int]:
        """Milliseconds to live: ``-1`` without expiry, ``-2`` if the key does not exist."""
        return Command(("PTTL", self._key(key)), _int)

    @command
    def persist_async(self, key: Key) -> Command[bool]:
        """Remove the expiry of ``key``; returns whether it had one."""
        return Command(("PERSIST", self._key(key)), bool)

    @command
    def type_async(self, key: Key) -> Command[str | None]:
        """The Redis type of ``key`` (``"string"``, ``"hash"``...), or ``None``."""
        return Command(("TYPE", self._key(key)), lambda r: None if r in (b"none", "none") else decode_text(r))

    @command
    def incr_async(self, key: Key, amount: int = 1) -> Command[int]:
        """Add ``amount`` to the integer at ``key`` (missing counts as 0); returns the new value."""
        return Command(("INCRBY", self._key(key), self._int_arg(amount, "amount")), _int, idempotent=False)

    @command
    def incrby_async(self, key: Key, amount: int) -> Command[int]:
        """Add ``amount`` to the integer at ``key``; returns the new value."""
        return Command(("INCRBY", self._key(key), self._int_arg(amount, "amount")), _int, idempotent=False)

    @command
    def decr_async(self, key: Key, amount: int = 1) -> Command[int]:
        """Subtract ``amount`` from the integer at ``key``; returns the new value."""
        return Command(("DECRBY", self._key(key), self._int_arg(amount, "amount")), _int, idempotent=False)

    @command
    def decrby_async(self, key: Key, amount: int) -> Command[int]:
        """Subtract ``amount`` from the integer at ``key``; returns the new value."""
        return Command(("DECRBY", self._key(key), self._int_arg(amount, "amount")), _int, idempotent=False)

    @command
    def incrbyfloat_async(self, key: Key, amount: float) -> Command[float]:
        """Add a float ``amount`` to the number at ``key``; returns the new value."""
        return Command(("INCRBYFLOAT", self._key(key), self._float_arg(amount, "amount")), _float, idempotent=False)

    @staticmethod
    def _int_arg(value: Any, what: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgumentError(f"{what} must be an int, got {type(value).__name__}")
        return value

    @staticmethod
    def _float_arg(value: Any, what: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidArgumentError(f"{what} must be a finite number, got {value!r}")
        return float(value)

    async def scan_async(self, pattern: str = "*", *, count: int = 500, type: str | None = None) -> AsyncIterator[Key]:
        """Iterate over the keys matching ``pattern`` (SCAN, never KEYS).

        ``pattern`` is relative to the key prefix. Escape untrusted parts with
        :func:`escape_pattern`. A key may be yielded twice if it is modified
        during the scan (a property of SCAN).
        """
        match = self._pattern(pattern)
        cursor: Any = 0
        while True:
            args: tuple[Any, ...] = ("SCAN", cursor, "MATCH", match, "COUNT", self._int_arg(count, "count"))
            if type is not None:
                args += ("TYPE", type)
            cursor, keys = await self._execute(Command(args, _scan_reply))
            for raw in keys:
                yield self._strip(raw)
            if cursor == 0:
                return

    async def delete_pattern_async(self, pattern: str, *, batch_size: int = 500) -> int:
        """Delete every key matching ``pattern`` with SCAN and UNLINK in batches.

        Never uses ``KEYS``, so it does not block the server on large
        databases. ``pattern`` is relative to the key prefix; escape
        untrusted parts with :func:`escape_pattern`. Returns how many keys
        were removed.
        """
        match = self._pattern(pattern)
        count = self._int_arg(batch_size, "batch_size")
        if count < 1:
            raise InvalidArgumentError(f"batch_size must be >= 1, got {count}")
        deleted = 0
        cursor: Any = 0
        while True:
            cursor, keys = await self._execute(Command(("SCAN", cursor, "MATCH", match, "COUNT", count), _scan_reply))
            if keys:
                deleted += await self._execute(Command(("UNLINK", *keys), _int))
            if cursor == 0:
                return deleted

    def _pattern(self, pattern: str) -> str:
        if not isinstance(pattern, str) or not pattern:
            raise InvalidArgumentError(f"a pattern must be a non-empty str, got {pattern!r}")
        return escape_pattern(self._prefix) + pattern

    escape_pattern = staticmethod(escape_pattern)
    build_key = staticmethod(build_key)
    build_pattern = staticmethod(build_pattern)

    # -- typed objects ---------------------------------------------------------

    @command
    def set_object_async(
        self, key: Key, value: Any, expiration: Expiration | None = None, *, nx: bool = False, xx: bool = False
    ) -> Command[bool]:
        """Serialize ``value`` with the configured strategy and store it in the versioned envelope.

        The envelope names the strategy (a reader configured with another one
        refuses the value instead of misreading it) and compresses large
        values; see ``docs/security.md``.
        """
        if value is None:
            raise SerializationError("value is None; Redis cannot store None (use delete_async to remove a key)")
        data = self._codec.dumps(value)
        return self.set_async.build(self, key, data, expiration, nx=nx, xx=xx)  # type: ignore[attr-defined, no-any-return]

    @command
    def get_object_async(self, key: Key, type_: type[T] | None = None) -> Command[T | None]:
        """Load and deserialize the value at ``key``; ``type_`` rebuilds a dataclass or model.

        A value written by another strategy raises
        :class:`~neuroglia.data.redis.SerializationError` naming both; a value
        without the envelope (written by ``set_async``) goes to the strategy
        as it is.
        """
        loads = self._codec.loads
        return Command(("GET", self._key(key)), lambda r: None if r is None else from_plain(loads(r), type_), read=True)

    # -- hashes ----------------------------------------------------------------

    @command
    def hset_async(
        self,
        key: Key,
        field: Key | KeyMapping | None = None,
        value: ScalarValue | None = None,
        *,
        mapping: KeyMapping | None = None,
    ) -> Command[int]:
        """Set hash fields: ``hset_async(key, {"f": "v"})`` or ``hset_async(key, "f", "v")``.

        Returns the number of fields that were added (not updated).
        """
        pairs: list[Any] = []
        if isinstance(field, Mapping):
            if mapping is not None:
                raise InvalidArgumentError("give the fields once: a mapping argument or mapping=, not both")
            if value is not None:
                raise InvalidArgumentError("a value cannot follow a mapping of fields")
            mapping, field = field, None
        if field is not None:
            pairs += (self._value(field, "field"), self._value(value, f"value of field {field!r}"))
        elif value is not None:
            raise InvalidArgumentError("a value was given without a field")
        for f, v in (mapping or {}).items():
            pairs += (self._value(f, "field"), self._value(v, f"value of field {f!r}"))
        if not pairs:
            raise InvalidArgumentError("hset_async needs a field and value, or a non-empty mapping")
        return Command(("HSET", self._key(key), *pairs), _int)

    @command
    def hsetnx_async(self, key: Key, field: Key, value: ScalarValue) -> Command[bool]:
        """Set a hash field only if it does not exist yet."""
        return Command(
            ("HSETNX", self._key(key), self._value(field, "field"), self._value(value)), bool, idempotent=False
        )

    @command
    def hget_async(self, key: Key, field: Key) -> Command[Value | None]:
        """The value of one hash field, or ``None``."""
        return Command(("HGET", self._key(key), self._value(field, "field")), self._text, read=True)

    @command
    def hgetall_async(self, key: Key) -> Command[dict[Any, Any]]:
        """Every field of the hash (``{}`` when the key does not exist)."""
        return Command(("HGETALL", self._key(key)), self._decode_pairs, read=True)

    @command
    def hmget_async(self, key: Key, fields: Key | Iterable[Key], *more: Key) -> Command[list[Value | None]]:
        """Several hash fields in one call, ``None`` for missing ones, in order."""
        names = [fields, *more] if isinstance(fields, str | bytes) else [*fields, *more]
        return Command(("HMGET", self._key(key), *self._values(tuple(names), "field")), self._decode_list, read=True)

    @command
    def hdel_async(self, key: Key, *fields: Key) -> Command[int]:
        """Delete hash fields; returns how many existed."""
        return Command(("HDEL", self._key(key), *self._values(fields, "field")), _int)

    @command
    def hincrby_async(self, key: Key, field: Key, amount: int = 1) -> Command[int]:
        """Add ``amount`` to an integer hash field; returns the new value."""
        args = ("HINCRBY", self._key(key), self._value(field, "field"), self._int_arg(amount, "amount"))
        return Command(args, _int, idempotent=False)

    @command
    def hincrbyfloat_async(self, key: Key, field: Key, amount: float) -> Command[float]:
        """Add a float ``amount`` to a hash field; returns the new value."""
        args = ("HINCRBYFLOAT", self._key(key), self._value(field, "field"), self._float_arg(amount, "amount"))
        return Command(args, _float, idempotent=False)

    @command
    def hexists_async(self, key: Key, field: Key) -> Command[bool]:
        """Whether the hash has ``field``."""
        return Command(("HEXISTS", self._key(key), self._value(field, "field")), bool)

    @command
    def hkeys_async(self, key: Key) -> Command[list[Any]]:
        """The hash's field names."""
        return Command(("HKEYS", self._key(key)), self._decode_list)

    @command
    def hvals_async(self, key: Key) -> Command[list[Any]]:
        """The hash's values."""
        return Command(("HVALS", self._key(key)), self._decode_list)

    @command
    def hlen_async(self, key: Key) -> Command[int]:
        """The number of fields in the hash."""
        return Command(("HLEN", self._key(key)), _int)

    # -- lists -----------------------------------------------------------------

    @command
    def lpush_async(self, key: Key, *values: ScalarValue) -> Command[int]:
        """Prepend values (the last one ends up first); returns the new length."""
        return Command(("LPUSH", self._key(key), *self._values(values, "value")), _int, idempotent=False)

    @command
    def rpush_async(self, key: Key, *values: ScalarValue) -> Command[int]:
        """Append values; returns the new length."""
        return Command(("RPUSH", self._key(key), *self._values(values, "value")), _int, idempotent=False)

    @command
    def lpop_async(self, key: Key) -> Command[Value | None]:
        """Remove and return the first element, or ``None`` if the list is empty."""
        return Command(("LPOP", self._key(key)), self._text, idempotent=False)

    @command
    def rpop_async(self, key: Key) -> Command[Value | None]:
        """Remove and return the last element, or ``None`` if the list is empty."""
        return Command(("RPOP", self._key(key)), self._text, idempotent=False)

    @command
    def lpop_many_async(self, key: Key, count: int) -> Command[list[Any]]:
        """Remove and return up to ``count`` elements from the head."""
        n = self._positive_count(count)
        return Command(("LPOP", self._key(key), n), self._decode_optional_list, idempotent=False)

    @command
    def rpop_many_async(self, key: Key, count: int) -> Command[list[Any]]:
        """Remove and return up to ``count`` elements from the tail."""
        n = self._positive_count(count)
        return Command(("RPOP", self._key(key), n), self._decode_optional_list, idempotent=False)

    @command
    def blpop_async(self, keys: Key | Iterable[Key], timeout: float) -> Command[tuple[Any, Any] | None]:
        """Pop from the first non-empty list, waiting up to ``timeout`` seconds.

        Returns ``(key, value)`` or ``None`` when the timeout passes.
        ``timeout=0`` waits forever.
        """
        return self._blocking_pop("BLPOP", keys, timeout)

    @command
    def brpop_async(self, keys: Key | Iterable[Key], timeout: float) -> Command[tuple[Any, Any] | None]:
        """Like :meth:`blpop_async`, from the tail."""
        return self._blocking_pop("BRPOP", keys, timeout)

    def _blocking_pop(self, name: str, keys: Key | Iterable[Key], timeout: float) -> Command[tuple[Any, Any] | None]:
        full = self._keys(keys)
        if not full:
            raise InvalidArgumentError(f"{name} needs at least one key")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout >= 0:
            raise InvalidArgumentError(f"timeout must be a number of seconds >= 0, got {timeout!r}")

        def parse(reply: Any) -> tuple[Any, Any] | None:
            return None if reply is None else (self._strip(reply[0]), self._text(reply[1]))

        return Command((name, *full, timeout), parse, idempotent=False, block=float(timeout))

    @command
    def lmove_async(
        self, source: Key, destination: Key, wherefrom: str = "LEFT", whereto: str = "RIGHT"
    ) -> Command[Value | None]:
        """Atomically move an element between lists (a reliable queue's hand-off)."""
        ends = ("LEFT", "RIGHT")
        if wherefrom.upper() not in ends or whereto.upper() not in ends:
            raise InvalidArgumentError(f"wherefrom/whereto must be one of {ends}")
        args = ("LMOVE", self._key(source), self._key(destination), wherefrom.upper(), whereto.upper())
        return Command(args, self._text, idempotent=False)

    @command
    def lrange_async(self, key: Key, start: int = 0, end: int = -1) -> Command[list[Any]]:
        """Elements from ``start`` to ``end`` inclusive (negative counts from the end)."""
        args = ("LRANGE", self._key(key), self._int_arg(start, "start"), self._int_arg(end, "end"))
        return Command(args, self._decode_list)

    @command
    def lindex_async(self, key: Key, index: int) -> Command[Value | None]:
        """The element at ``index``, or ``None``."""
        return Command(("LINDEX", self._key(key), self._int_arg(index, "index")), self._text)

    @command
    def llen_async(self, key: Key) -> Command[int]:
        """The list's length (0 when it does not exist)."""
        return Command(("LLEN", self._key(key)), _int)

    @command
    def ltrim_async(self, key: Key, start: int, end: int) -> Command[bool]:
        """Keep only the elements from ``start`` to ``end`` inclusive."""
        start, end = self._int_arg(start, "start"), self._int_arg(end, "end")
        # Keeping the first N (0, N-1) or the last N (-N, -1) is the same twice;
        # any other range (1, -1: drop the head) trims again when resent.
        idempotent = (start == 0 and end >= 0) or (end == -1 and start <= 0)
        return Command(("LTRIM", self._key(key), start, end), _ok, idempotent=idempotent)

    @command
    def lrem_async(self, key: Key, count: int, value: ScalarValue) -> Command[int]:
        """Remove occurrences of ``value`` (``count`` > 0 from the head, < 0 from the tail, 0 all)."""
        args = ("LREM", self._key(key), self._int_arg(count, "count"), self._value(value))
        return Command(args, _int, idempotent=False)

    @command
    def lset_async(self, key: Key, index: int, value: ScalarValue) -> Command[bool]:
        """Replace the element at ``index``."""
        return Command(("LSET", self._key(key), self._int_arg(index, "index"), self._value(value)), _ok)

    def _positive_count(self, count: int) -> int:
        n = self._int_arg(count, "count")
        if n < 1:
            raise InvalidArgumentError(f"count must be >= 1, got {n}")
        return n

    # -- sets ------------------------------------------------------------------

    @command
    def sadd_async(self, key: Key, *members: ScalarValue) -> Command[int]:
        """Add members; returns how many were new."""
        return Command(("SADD", self._key(key), *self._values(members, "member")), _int)

    @command
    def srem_async(self, key: Key, *members: ScalarValue) -> Command[int]:
        """Remove members; returns how many were present."""
        return Command(("SREM", self._key(key), *self._values(members, "member")), _int)

    @command
    def smembers_async(self, key: Key) -> Command[set[Any]]:
        """Every member (an empty set when the key does not exist)."""
        return Command(("SMEMBERS", self._key(key)), self._decode_set, read=True)

    @command
    def sismember_async(self, key: Key, member: ScalarValue) -> Command[bool]:
        """Whether ``member`` is in the set."""
        return Command(("SISMEMBER", self._key(key), self._value(member, "member")), bool)

    @command
    def scard_async(self, key: Key) -> Command[int]:
        """The number of members."""
        return Command(("SCARD", self._key(key)), _int)

    @command
    def spop_async(self, key: Key) -> Command[Value | None]:
        """Remove and return a random member, or ``None``."""
        return Command(("SPOP", self._key(key)), self._text, idempotent=False)

    @command
    def srandmember_async(self, key: Key) -> Command[Value | None]:
        """A random member without removing it, or ``None``."""
        return Command(("SRANDMEMBER", self._key(key)), self._text)

    @command
    def sinter_async(self, keys: Key | Iterable[Key], *more: Key) -> Command[set[Any]]:
        """Members present in every set."""
        return Command(("SINTER", *self._nonempty_keys(keys, more)), self._decode_set)

    @command
    def sunion_async(self, keys: Key | Iterable[Key], *more: Key) -> Command[set[Any]]:
        """Members present in any set."""
        return Command(("SUNION", *self._nonempty_keys(keys, more)), self._decode_set)

    @command
    def sdiff_async(self, keys: Key | Iterable[Key], *more: Key) -> Command[set[Any]]:
        """Members of the first set that are in none of the others."""
        return Command(("SDIFF", *self._nonempty_keys(keys, more)), self._decode_set)

    @command
    def sinterstore_async(self, destination: Key, keys: Key | Iterable[Key], *more: Key) -> Command[int]:
        """Store the intersection at ``destination``; returns its size."""
        return Command(("SINTERSTORE", self._key(destination), *self._nonempty_keys(keys, more)), _int)

    @command
    def sunionstore_async(self, destination: Key, keys: Key | Iterable[Key], *more: Key) -> Command[int]:
        """Store the union at ``destination``; returns its size."""
        return Command(("SUNIONSTORE", self._key(destination), *self._nonempty_keys(keys, more)), _int)

    @command
    def sdiffstore_async(self, destination: Key, keys: Key | Iterable[Key], *more: Key) -> Command[int]:
        """Store the difference at ``destination``; returns its size."""
        return Command(("SDIFFSTORE", self._key(destination), *self._nonempty_keys(keys, more)), _int)

    def _nonempty_keys(self, keys: Key | Iterable[Key], more: tuple[Key, ...]) -> list[Key]:
        full = self._keys(keys, more)
        if not full:
            raise InvalidArgumentError("at least one key is required")
        return full

    # -- sorted sets -----------------------------------------------------------

    @command
    def zadd_async(
        self,
        key: Key,
        mapping: ScoreMapping,
        *,
        nx: bool = False,
        xx: bool = False,
        gt: bool = False,
        lt: bool = False,
        ch: bool = False,
    ) -> Command[int]:
        """Add members with scores: ``zadd_async(key, {"member": 1.5})``.

        ``nx``/``xx`` only add new / update existing members; ``gt``/``lt``
        only update when the new score is greater / less. Returns the number
        of members added (changed, with ``ch=True``).
        """
        if not isinstance(mapping, Mapping) or not mapping:
            raise InvalidArgumentError("zadd_async needs a non-empty mapping of member to score")
        if nx and (xx or gt or lt):
            raise InvalidArgumentError("nx=True cannot be combined with xx, gt or lt")
        if gt and lt:
            raise InvalidArgumentError("gt=True and lt=True contradict each other")
        flags = [name for name, on in (("NX", nx), ("XX", xx), ("GT", gt), ("LT", lt), ("CH", ch)) if on]
        pairs: list[Any] = []
        for member, score in mapping.items():
            pairs += (self._score(score), self._value(member, "member"))
        return Command(("ZADD", self._key(key), *flags, *pairs), _int)

    @staticmethod
    def _score(score: Any) -> float:
        if isinstance(score, bool) or not isinstance(score, int | float) or math.isnan(score):
            raise InvalidArgumentError(f"a score must be a number, got {score!r}")
        return score

    @staticmethod
    def _bound(value: Any, what: str) -> Any:
        """A score bound: a number, ``"-inf"``/``"+inf"``, or ``"(x"`` for exclusive."""
        if isinstance(value, bool):
            raise InvalidArgumentError(f"{what} must be a number or a score bound string, got {value!r}")
        if isinstance(value, int | float):
            if math.isnan(value):
                raise InvalidArgumentError(f"{what} must not be NaN")
            return "+inf" if value == math.inf else "-inf" if value == -math.inf else value
        if isinstance(value, str):
            body = value[1:] if value.startswith("(") else value
            try:
                float(body)
            except ValueError:
                raise InvalidArgumentError(f"{what} {value!r} is not a number, '-inf', '+inf' or '(number'") from None
            return value
        raise InvalidArgumentError(f"{what} must be a number or a score bound string, got {type(value).__name__}")

    @command
    def zincrby_async(self, key: Key, amount: float, member: ScalarValue) -> Command[float]:
        """Add ``amount`` to ``member``'s score; returns the new score."""
        args = ("ZINCRBY", self._key(key), self._score(amount), self._value(member, "member"))
        return Command(args, _float, idempotent=False)

    @command
    def zrange_async(
        self, key: Key, start: int, end: int, desc: bool = False, withscores: bool = False
    ) -> Command[list[Any]]:
        """Members by rank, lowest first (highest first with ``desc``).

        With ``withscores`` the items are ``(member, score)`` tuples.
        """
        args: list[Any] = ["ZRANGE", self._key(key), self._int_arg(start, "start"), self._int_arg(end, "end")]
        if desc:
            args.append("REV")
        return self._zrange(args, withscores)

    @command
    def zrevrange_async(self, key: Key, start: int, end: int, withscores: bool = False) -> Command[list[Any]]:
        """Members by rank, highest first."""
        args: list[Any] = ["ZRANGE", self._key(key), self._int_arg(start, "start"), self._int_arg(end, "end"), "REV"]
        return self._zrange(args, withscores)

    @command
    def zrangebyscore_async(
        self,
        key: Key,
        min: float | str,
        max: float | str,
        *,
        withscores: bool = False,
        offset: int | None = None,
        count: int | None = None,
    ) -> Command[list[Any]]:
        """Members with ``min <= score <= max``, lowest first (``"(x"`` excludes x)."""
        args: list[Any] = ["ZRANGE", self._key(key), self._bound(min, "min"), self._bound(max, "max"), "BYSCORE"]
        return self._zrange(args + self._limit(offset, count), withscores)

    @command
    def zrevrangebyscore_async(
        self,
        key: Key,
        max: float | str,
        min: float | str,
        *,
        withscores: bool = False,
        offset: int | None = None,
        count: int | None = None,
    ) -> Command[list[Any]]:
        """Members with ``max >= score >= min``, highest first."""
        args: list[Any] = ["ZRANGE", self._key(key), self._bound(max, "max"), self._bound(min, "min"), "BYSCORE", "REV"]
        return self._zrange(args + self._limit(offset, count), withscores)

    def _limit(self, offset: int | None, count: int | None) -> list[Any]:
        if offset is None and count is None:
            return []
        if offset is None or count is None:
            raise InvalidArgumentError("offset and count go together")
        return ["LIMIT", self._int_arg(offset, "offset"), self._int_arg(count, "count")]

    def _zrange(self, args: list[Any], withscores: bool) -> Command[list[Any]]:
        if withscores:
            return Command((*args, "WITHSCORES"), self._decode_scored)
        return Command(tuple(args), self._decode_list)

    @command
    def zrem_async(self, key: Key, *members: ScalarValue) -> Command[int]:
        """Remove members; returns how many were present."""
        return Command(("ZREM", self._key(key), *self._values(members, "member")), _int)

    @command
    def zremrangebyrank_async(self, key: Key, start: int, end: int) -> Command[int]:
        """Remove members by rank (``0, -51`` keeps the top 50); returns how many."""
        start, end = self._int_arg(start, "start"), self._int_arg(end, "end")
        # Keeping the lowest `start` and highest `-end-1` members (start >= 0,
        # end < 0, as in "keep the top 50") is the same twice; removing a
        # fixed rank range (0, 2: the three lowest) removes three more when resent.
        idempotent = start >= 0 and end < 0
        return Command(("ZREMRANGEBYRANK", self._key(key), start, end), _int, idempotent=idempotent)

    @command
    def zremrangebyscore_async(self, key: Key, min: float | str, max: float | str) -> Command[int]:
        """Remove members with ``min <= score <= max``; returns how many."""
        args = ("ZREMRANGEBYSCORE", self._key(key), self._bound(min, "min"), self._bound(max, "max"))
        return Command(args, _int)

    @command
    def zscore_async(self, key: Key, member: ScalarValue) -> Command[float | None]:
        """``member``'s score, or ``None``."""
        return Command(("ZSCORE", self._key(key), self._value(member, "member")), _optional_float)

    @command
    def zrank_async(self, key: Key, member: ScalarValue) -> Command[int | None]:
        """``member``'s rank, lowest score first, or ``None``."""
        return Command(("ZRANK", self._key(key), self._value(member, "member")), _optional_int)

    @command
    def zrevrank_async(self, key: Key, member: ScalarValue) -> Command[int | None]:
        """``member``'s rank, highest score first, or ``None``."""
        return Command(("ZREVRANK", self._key(key), self._value(member, "member")), _optional_int)

    @command
    def zcard_async(self, key: Key) -> Command[int]:
        """The number of members."""
        return Command(("ZCARD", self._key(key)), _int)

    @command
    def zcount_async(self, key: Key, min: float | str, max: float | str) -> Command[int]:
        """How many members have ``min <= score <= max``."""
        return Command(("ZCOUNT", self._key(key), self._bound(min, "min"), self._bound(max, "max")), _int)

    @command
    def zpopmax_async(self, key: Key, count: int = 1) -> Command[list[tuple[Any, float]]]:
        """Remove and return up to ``count`` highest-scored ``(member, score)`` pairs."""
        return Command(("ZPOPMAX", self._key(key), self._positive_count(count)), self._decode_scored, idempotent=False)

    @command
    def zpopmin_async(self, key: Key, count: int = 1) -> Command[list[tuple[Any, float]]]:
        """Remove and return up to ``count`` lowest-scored ``(member, score)`` pairs."""
        return Command(("ZPOPMIN", self._key(key), self._positive_count(count)), self._decode_scored, idempotent=False)

    # -- scripts ---------------------------------------------------------------

    def register_script(self, source: str) -> Script:
        """Prepare a Lua script; call the result with ``keys=`` and ``args=``.

        The first call sends the source with ``EVAL`` (which also caches it on
        the server); later calls send only its digest with ``EVALSHA``, and
        fall back to ``EVAL`` once if the server forgot it (a restart). The
        same source gives the same :class:`Script`. Keys get the repository's
        prefix.
        """
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = Script(self, source)
        return script

    @command
    def eval_async(self, source: str, keys: Iterable[Key] = (), args: Iterable[ScalarValue] = ()) -> Command[Any]:
        """Run a Lua script with ``EVAL`` (prefer :meth:`register_script`)."""
        full = self._keys(list(keys))
        values = [self._value(a, "argument") for a in args]
        return Command(("EVAL", source, len(full), *full, *values), self._text_deep, idempotent=False)

    def _text_deep(self, reply: Any) -> Any:
        if isinstance(reply, list):
            return [self._text_deep(r) for r in reply]
        return self._text(reply)

    # -- pipelines and transactions --------------------------------------------

    def pipeline(self, *, transaction: bool = False) -> Pipeline:
        """Queue commands and send them in one round trip.

        ``async with repo.pipeline() as pipe:`` queues the repository's own
        methods (``pipe.set_async(...)``, no ``await`` needed) and executes
        them when the block ends; ``await pipe.execute()`` runs them earlier
        and returns their results. With ``transaction=True`` they run as one
        ``MULTI``/``EXEC`` block.
        """
        return Pipeline(self, transaction=transaction)

    def transaction(self) -> Pipeline:
        """A ``MULTI``/``EXEC`` pipeline: every queued command applies, or none when the block fails."""
        return Pipeline(self, transaction=True)

    # -- server ----------------------------------------------------------------

    @command
    def ping(self) -> Command[bool]:
        """Check the server answers."""
        return Command(("PING",), lambda r: r in (b"PONG", "PONG", True))

    @command
    def info(self, section: str | None = None) -> Command[dict[str, Any]]:
        """The server's ``INFO`` as a dict (numbers converted)."""
        return Command(("INFO", section) if section else ("INFO",), parse_info)

    @command
    def dbsize(self) -> Command[int]:
        """The number of keys in the database (all prefixes)."""
        return Command(("DBSIZE",), _int)

    async def memory_usage(self, key: Key | None = None) -> int:
        """Bytes used: by the server (no ``key``) or by one key (0 if it does not exist)."""
        if key is None:
            info = await self.info("memory")
            return int(info.get("used_memory", 0))
        return await self._execute(Command(("MEMORY", "USAGE", self._key(key)), lambda r: int(r or 0)))

    @command
    def flushdb(self, asynchronous: bool = False) -> Command[bool]:
        """Delete every key of the database, whatever its prefix. Meant for tests."""
        return Command(("FLUSHDB", "ASYNC") if asynchronous else ("FLUSHDB",), _ok)

    ping_async = ping
    info_async = info


def _scan_reply(reply: Any) -> tuple[int, list[Any]]:
    return int(reply[0]), reply[1]


class Script:
    """A Lua script bound to a repository (see :meth:`RedisRepository.register_script`)."""

    __slots__ = ("_loaded", "_repository", "sha", "source")

    def __init__(self, repository: RedisRepository, source: str) -> None:
        if not isinstance(source, str) or not source.strip():
            raise InvalidArgumentError("a script must be a non-empty str")
        self._repository = repository
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
        self._loaded = False

    async def __call__(self, keys: Iterable[Key] = (), args: Iterable[ScalarValue] = ()) -> Any:
        """Run the script; returns its reply with text decoded like other reads."""
        repo = self._repository
        full = repo._keys(list(keys))
        return await self._run((len(full), *full, *(repo._value(a, "argument") for a in args)))

    async def _run(self, prepared: tuple[Any, ...]) -> Any:
        """Run the script with ``prepared`` = (number of keys, *keys, *args), checked and prefixed.

        :meth:`__call__` checks a caller's keys and arguments first; the
        library's own hot paths (locks) prepare theirs once and call this.
        """
        repo = self._repository
        if self._loaded:
            try:
                return await repo._execute(Command(("EVALSHA", self.sha, *prepared), repo._text_deep, idempotent=False))
            except CacheCommandError as exc:
                if "NOSCRIPT" not in str(exc):
                    raise
        result = await repo._execute(Command(("EVAL", self.source, *prepared), repo._text_deep, idempotent=False))
        self._loaded = True
        return result
