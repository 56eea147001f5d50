"""A transport over redis-py's asyncio client and connection pool.

Replies are deliberately *raw*: redis-py's per-command response callbacks
are switched off, so the repository parses every reply itself. redis-py's
exceptions are mapped into the library's error tree here, each with its
:class:`~neuroglia.data.redis.Delivery`, and never leave this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as rex
from redis.asyncio.connection import (
    Connection,
    ConnectionPool,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ..config import RedisConfig
from ..exceptions import (
    CacheAuthenticationError,
    CacheCommandError,
    CacheException,
    CachePermissionError,
    CacheTimeoutError,
    CacheTLSError,
    CacheUnavailableError,
    Delivery,
    InvalidArgumentError,
    PoolExhaustedError,
)
from .contract import Args, PoolStats
from .diagnosis import AUTH_PREFIXES, UNAVAILABLE_PREFIXES, describe_tls, missing_permission, tls_failure

__all__ = ["NotSentError", "RedisPySession", "RedisPyTransport", "build_redis_py_transport", "classify_error"]


class NotSentError(Exception):
    """A command failed before any byte of it was written to a socket.

    Transports raise it around the original error (no free connection,
    connection refused), so the retry layer knows that resending cannot
    apply a write twice.
    """

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


# redis-py's parser strips those codes from the message and raises these
# classes instead (LOADING even becomes a ConnectionError): test the type too.
_UNAVAILABLE_CLASSES: tuple[type[Exception], ...] = (
    rex.BusyLoadingError,
    rex.ReadOnlyError,
    rex.ClusterDownError,  # MasterDownError derives from it
    rex.TryAgainError,
)


def _cannot_serve_now(exc: BaseException) -> bool:
    """Whether the server refused the command, unrun, because of its state (LOADING, READONLY...)."""
    if isinstance(exc, _UNAVAILABLE_CLASSES):
        return True
    return isinstance(exc, rex.ResponseError) and str(exc).startswith(UNAVAILABLE_PREFIXES)


_log = logging.getLogger("neuroglia.data.redis")


def classify_error(exc: BaseException, command: str) -> CacheException | None:
    """Map a redis-py or socket exception to the library's error tree, with its delivery.

    Returns ``None`` for anything that is not a failure of the command (a
    bug in a parser, say), which then propagates untouched.
    """
    if isinstance(exc, CacheException):
        return exc
    if isinstance(exc, NotSentError):
        error = _classify(exc.error, command)
        return None if error is None else error.with_delivery(Delivery.NOT_SENT)
    error = _classify(exc, command)
    if error is not None and error.delivery is None:
        # A server error reply means the command did not run (a script may
        # have written before failing); anything else happened mid-command.
        refused = isinstance(exc, rex.ResponseError) and command not in _SCRIPT_COMMANDS
        error.delivery = Delivery.NOT_APPLIED if refused or _cannot_serve_now(exc) else Delivery.MAYBE_APPLIED
    return error


_SCRIPT_COMMANDS = frozenset({"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO", "EXEC"})


def _classify(exc: BaseException, command: str) -> CacheException | None:
    message = str(exc)
    where = f"{command}: " if command else ""
    if isinstance(exc, rex.AuthenticationError | rex.AuthenticationWrongNumberOfArgsError) or (
        isinstance(exc, rex.ResponseError) and message.startswith(AUTH_PREFIXES)
    ):
        return CacheAuthenticationError(f"{where}authentication failed: {message}")
    in_script = isinstance(exc, rex.ResponseError) and "The user executing the script can't" in message
    if isinstance(exc, rex.NoPermissionError) or message.startswith("NOPERM") or in_script:
        permission = missing_permission(message)
        shown = message if message.startswith("NOPERM") or in_script else f"NOPERM {message}"
        missing = f" (missing permission: {permission})" if permission else ""
        return CachePermissionError(f"{where}permission denied by an ACL rule{missing}: {shown}", permission=permission)
    if isinstance(exc, UnicodeEncodeError):
        # Raised while encoding the command, before any byte was written.
        return InvalidArgumentError(
            f"{where}a key, field or value is not valid Unicode text ({exc.reason} at position {exc.start}); "
            "nothing was sent"
        ).with_delivery(Delivery.NOT_SENT)
    tls = tls_failure(exc) if isinstance(exc, rex.ConnectionError | OSError) else None
    if tls is not None:
        return CacheTLSError(f"{where}{describe_tls(tls)}")
    if isinstance(exc, rex.TimeoutError | TimeoutError):
        return CacheTimeoutError(f"{where}timed out{': ' + message if message else ''}")
    if _cannot_serve_now(exc):
        # Put back the error code redis-py strips ("LOADING", "READONLY"...): operators grep for it.
        code = getattr(exc, "status_code", None)
        shown = f"{code} {message}" if isinstance(code, str) and not message.startswith(code) else message
        return CacheUnavailableError(f"{where}Redis cannot serve now: {shown}")
    if isinstance(exc, rex.ConnectionError):
        if message == "No connection available.":
            return PoolExhaustedError(f"{where}no connection became free in the pool in time")
        return CacheUnavailableError(f"{where}Redis unavailable: {message}")
    if isinstance(exc, rex.NoScriptError):
        # redis-py strips the error code; callers (Script) look for it.
        return CacheCommandError(f"{where}NOSCRIPT {message}")
    if isinstance(exc, rex.ResponseError):
        return CacheCommandError(f"{where}{message}")
    if isinstance(exc, rex.DataError):
        return InvalidArgumentError(f"{where}{message}")
    if isinstance(exc, rex.RedisError):
        # InvalidResponse and friends: the stream is not trustworthy.
        return CacheUnavailableError(f"{where}{type(exc).__name__}: {message}")
    if isinstance(exc, OSError):
        return CacheUnavailableError(f"{where}socket error: {exc.strerror or message}")
    return None


def _name(args: Args) -> str:
    return str(args[0]).upper() if args else ""


class RedisPyTransport:
    """A :class:`~neuroglia.data.redis.transport.Transport` over ``redis.asyncio.Redis`` (or fakeredis' subclass).

    Each command borrows a pooled connection for its round trip; the pool is
    bounded by ``max_connections`` and a borrow waits up to ``pool_timeout``.
    """

    def __init__(self, client: aioredis.Redis, max_connections: int, pool_timeout: float | None = None) -> None:
        # Raw replies: the repository parses them (see the module docstring).
        client.response_callbacks.clear()
        self._client = client
        self._max_connections = max_connections
        self._pool: Any = client.connection_pool
        # The pool is bounded here rather than by redis-py's blocking pool,
        # whose condition variable and timer cost more than the command on
        # the fast path; waiting (with a timeout) happens only when full.
        self._slots = asyncio.Semaphore(max_connections)
        self._pool_timeout = pool_timeout
        kwargs = self._pool.connection_kwargs
        # The longest a borrow may take when it has to open a connection.
        self._connect_bound = float(kwargs.get("socket_connect_timeout") or kwargs.get("socket_timeout") or math.inf)
        self._execute: Callable[..., Awaitable[Any]] = client.execute_command
        # Connections borrowed from redis-py's pool and kept here between
        # commands (most recently used last). Taking one back is a list pop:
        # redis-py's own borrow and return take its pool lock and report
        # four observability events on every command.
        self._idle: list[Any] = []
        # close() starts a new epoch; a connection lent before it (a command
        # in flight during close) is closed when it comes back, never kept.
        self._epoch = 0
        self._lent: dict[int, int] = {}

    async def _take_slot(self, deadline: float | None) -> None:
        """Take one of the pool's slots, waiting up to the pool timeout (and the deadline)."""
        slots = self._slots
        if not slots.locked():
            await slots.acquire()  # free: returns at once
            return
        wait = self._pool_timeout
        if deadline is not None:
            left = deadline - asyncio.get_running_loop().time()
            wait = left if wait is None else min(wait, left)
        try:
            async with asyncio.timeout(wait):
                await slots.acquire()
        except TimeoutError:
            raise NotSentError(rex.ConnectionError("No connection available.")) from None

    async def _acquire(self, deadline: float | None = None) -> Any:
        """Borrow a connection, waiting up to the pool timeout when all are busy.

        With a ``deadline`` (loop time) neither the wait for a free slot nor
        a connect of a new connection may outlast it.
        """
        # The epoch when the command asked: a connection it gets after a
        # close() that began meanwhile belongs to the closed epoch.
        epoch = self._epoch
        await self._take_slot(deadline)
        try:
            conn = await self._reuse()
            if conn is None:
                if deadline is not None and deadline - asyncio.get_running_loop().time() < self._connect_bound:
                    # Too little time left for a possible connect: bound it (rare).
                    async with asyncio.timeout_at(deadline):
                        conn = await self._pool.get_connection()
                else:
                    conn = await self._pool.get_connection()
            self._lent[id(conn)] = epoch
            return conn
        except BaseException as exc:
            self._slots.release()
            if isinstance(exc, Exception):
                raise NotSentError(exc) from exc
            raise

    async def _reuse(self) -> Any:
        """The most recently used idle connection that is still clean, if any.

        One the server closed while it was idle (or with bytes nobody asked
        for, which cannot happen after a complete reply but costs nothing to
        check) goes back to redis-py's pool, which reconnects it on a later
        borrow.
        """
        idle = self._idle
        while idle:
            conn = idle.pop()
            try:
                clean = conn.is_connected and not await conn.can_read()
            except Exception:  # redis-py's parser: "Buffer is closed."
                clean = False
            if clean:
                return conn
            try:
                await conn.disconnect(nowait=True)
            finally:
                await self._pool.release(conn)
        return None

    async def _give_back(self, conn: Any) -> None:
        try:
            if self._lent.pop(id(conn), self._epoch) != self._epoch:
                # Lent before close(): the transport was closed meanwhile.
                await conn.disconnect(nowait=True)
                await self._pool.release(conn)
            elif conn.is_connected and not conn.should_reconnect():
                self._idle.append(conn)
            else:  # dropped after a failure: the pool reconnects it when next lent
                await self._pool.release(conn)
        finally:
            self._slots.release()

    async def _send(self, conn: Any, args: Args) -> None:
        """Write one command; a failed health check of the connection means "not sent"."""
        try:
            await conn.check_health()
        except Exception as exc:
            raise NotSentError(exc) from exc
        await conn.send_packed_command(conn.pack_command(*args), check_health=False)

    async def execute(self, args: Args, deadline: float | None = None) -> Any:
        try:
            return await self._execute_one(args, deadline)
        except Exception as exc:
            error = classify_error(exc, _name(args))
            if error is None or error is exc:
                raise
            if (
                isinstance(error, CacheTimeoutError)
                and deadline is not None
                and asyncio.get_running_loop().time() >= deadline
            ):
                # The socket timeout was cut to the deadline: say which bound it was.
                delivery = error.delivery
                error = CacheTimeoutError(f"{_name(args)}: no reply within the operation deadline")
                error.delivery = delivery
            raise error from exc

    async def execute_blocking(self, args: Args, timeout: float) -> Any:
        try:
            return await self._execute_blocking(args, timeout)
        except Exception as exc:
            error = classify_error(exc, _name(args))
            if error is None or error is exc:
                raise
            raise error from exc

    async def execute_many(self, commands: Sequence[Args], *, transaction: bool) -> list[Any]:
        try:
            replies = await self._execute_many(commands, transaction=transaction)
        except Exception as exc:
            error = classify_error(exc, "MULTI" if transaction else "PIPELINE")
            if error is None or error is exc:
                raise
            raise error from exc
        # One command refused by the server fails alone.
        return [
            classify_error(reply, _name(args)) or reply if isinstance(reply, Exception) else reply
            for args, reply in zip(commands, replies, strict=True)
        ]

    async def _execute_one(self, args: Args, deadline: float | None = None) -> Any:
        conn = await self._acquire(deadline)
        socket_timeout = conn.socket_timeout
        clamped = False
        try:
            if deadline is not None:
                # The deadline rides on the socket timeout that redis-py
                # already applies to every write and read: no timer of our
                # own on the fast path. Only when less than a write plus a
                # read's worth of time is left are both cut to what remains.
                now = asyncio.get_running_loop().time
                left = deadline - now()
                if socket_timeout is None or left < 2 * socket_timeout:
                    if left <= 0:
                        raise NotSentError(rex.TimeoutError("operation deadline passed before sending"))
                    clamped = True
                    conn.socket_timeout = left
                    await self._send(conn, args)
                    conn.socket_timeout = max(deadline - now(), 0.001)
                    return await conn.read_response()
            await self._send(conn, args)
            return await conn.read_response()
        except NotSentError:
            raise  # nothing was written: the connection is clean
        except BaseException:
            # Cancelled or failed mid-command: a reply may still be in flight,
            # so this connection must never serve another caller.
            await conn.disconnect(nowait=True)
            raise
        finally:
            if clamped:
                conn.socket_timeout = socket_timeout
            await self._give_back(conn)

    async def _execute_blocking(self, args: Args, timeout: float) -> Any:
        conn = await self._acquire()
        try:
            await conn.send_command(*args)
            # The socket timeout would cut a legitimate block short: wait for
            # the command's own timeout plus a margin (0 means forever).
            if timeout <= 0:
                return await conn.read_response(timeout=math.inf)
            async with asyncio.timeout(timeout + 1.0):
                return await conn.read_response(timeout=math.inf)
        except BaseException:
            await conn.disconnect(nowait=True)
            raise
        finally:
            await self._give_back(conn)

    async def _execute_many(self, commands: Sequence[Args], *, transaction: bool) -> list[Any]:
        # Borrowed like any command's connection, so batches count against the
        # pool bound (and wait for a free connection) instead of failing with
        # "Too many connections", and a failure to connect is NotSentError.
        conn = await self._acquire()
        pipe = self._client.pipeline(transaction=transaction)
        # The pipeline gives the connection back to the pool when it ends
        # (its reset()), after dropping it if a reply may still be in flight.
        pipe.connection = conn
        try:
            for args in commands:
                pipe.execute_command(*args)
            return list(await pipe.execute(raise_on_error=False))
        finally:
            closed_meanwhile = self._lent.pop(id(conn), self._epoch) != self._epoch
            if pipe.connection is conn:  # execute() never reached its reset()
                pipe.connection = None
                await conn.disconnect(nowait=True)
                await self._pool.release(conn)
            elif closed_meanwhile:  # reset() gave it back to the pool: close it there
                await conn.disconnect(nowait=True)
            self._slots.release()

    @contextlib.asynccontextmanager
    async def dedicated(self) -> AsyncIterator[RedisPySession]:
        """One pooled connection for the caller alone (see the contract); closed unless left clean."""
        try:
            conn = await self._acquire()
        except Exception as exc:
            error = classify_error(exc, "WATCH")
            if error is None or error is exc:
                raise
            raise error from exc
        session = RedisPySession(conn)
        try:
            yield session
        finally:
            if not session.clean:
                await conn.disconnect(nowait=True)
            await self._give_back(conn)

    async def close(self) -> None:
        """Close every connection, those lent to commands in flight included (they fail).

        The transport stays usable: a later command opens new connections.
        """
        self._epoch += 1
        idle, self._idle = self._idle, []
        for conn in idle:
            await self._pool.release(conn)
        await self._client.aclose(close_connection_pool=True)

    def pool_stats(self) -> PoolStats:
        pool = self._client.connection_pool
        # The idle connections kept here are lent out in redis-py's books.
        idle = len(self._idle)
        in_use = len(getattr(pool, "_in_use_connections", ())) - idle
        available = len(getattr(pool, "_available_connections", ())) + idle
        return PoolStats(
            created_connections=in_use + available,
            in_use_connections=in_use,
            available_connections=available,
            max_connections=self._max_connections,
        )


class RedisPySession:
    """A pooled connection lent to one caller (:meth:`RedisPyTransport.dedicated`)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._watching = False
        self._interrupted = False

    @property
    def clean(self) -> bool:
        """Whether the connection may serve another borrower as it is."""
        return not self._interrupted and not self._watching and self._conn.is_connected

    async def execute(self, args: Args, deadline: float | None = None) -> Any:
        """Send one command on this connection and return its raw reply."""
        name = _name(args)
        try:
            async with asyncio.timeout_at(deadline):
                await self._conn.send_packed_command(self._conn.pack_command(*args), check_health=False)
                reply = await self._conn.read_response(disable_decoding=True)
        except rex.ResponseError as exc:  # refused by the server: the connection is fine
            raise (classify_error(exc, name) or exc) from exc
        except BaseException as exc:
            self._interrupted = True
            if isinstance(exc, Exception):
                error = classify_error(exc, name)
                if error is not None and error is not exc:
                    raise error from exc
            raise
        if name == "WATCH":
            self._watching = True
        elif name == "UNWATCH":
            self._watching = False
        return reply

    async def transaction(self, commands: Sequence[Args]) -> list[Any] | None:
        """``MULTI`` + ``commands`` + ``EXEC``; ``None`` when a watched key changed and nothing ran."""
        self._watching = False  # EXEC (or its refusal) ends every WATCH
        conn = self._conn
        try:
            await conn.send_packed_command(conn.pack_commands([("MULTI",), *commands, ("EXEC",)]), check_health=False)
            replies: list[Any] = []
            for _ in range(len(commands) + 2):
                try:
                    replies.append(await conn.read_response(disable_decoding=True))
                except rex.ResponseError as exc:
                    replies.append(exc)
        except BaseException as exc:
            self._interrupted = True
            if isinstance(exc, Exception):
                error = classify_error(exc, "MULTI")
                if error is not None and error is not exc:
                    raise error from exc
            raise
        outcome = replies[-1]
        if isinstance(outcome, Exception):  # EXECABORT: a command was refused while queued
            queued = next((r for r in replies[1:-1] if isinstance(r, Exception)), outcome)
            raise (classify_error(queued, "EXEC") or queued) from queued
        if outcome is None:
            return None
        return [
            classify_error(reply, _name(args)) or reply if isinstance(reply, Exception) else reply
            for args, reply in zip(commands, outcome, strict=True)
        ]


def build_redis_py_transport(config: RedisConfig) -> RedisPyTransport:
    """A redis-py transport for a ``redis://``, ``rediss://`` or ``unix://`` config (no I/O happens here)."""
    pool_cfg = config.pool
    kwargs: dict[str, Any] = {
        "db": config.db,
        "username": config.username,
        "password": config.password,
        "socket_timeout": pool_cfg.socket_timeout,
        "socket_connect_timeout": pool_cfg.socket_connect_timeout,
        "socket_keepalive": pool_cfg.socket_keepalive,
        "health_check_interval": pool_cfg.health_check_interval,
        "client_name": config.client_name,
        "decode_responses": False,
        # The repository parses RESP2 replies; pin it whatever the client's default.
        "protocol": 2,
        # Retries belong to the repository, which knows which commands are
        # safe to repeat; the client must never resend on its own.
        "retry": Retry(NoBackoff(), 0),
        "retry_on_timeout": False,
    }
    if pool_cfg.socket_keepalive_options:
        kwargs["socket_keepalive_options"] = dict(pool_cfg.socket_keepalive_options)
    connection_class: type[Connection] | type[UnixDomainSocketConnection]
    if config.scheme == "unix":
        connection_class = UnixDomainSocketConnection
        kwargs["path"] = config.unix_socket_path
        del kwargs["socket_keepalive"]
    else:
        kwargs["host"] = config.host
        kwargs["port"] = config.port
        connection_class = Connection
        if config.scheme == "rediss":
            connection_class = SSLConnection
            kwargs.update(_tls_settings(config))
    pool = ConnectionPool(max_connections=pool_cfg.max_connections, connection_class=connection_class, **kwargs)
    client = aioredis.Redis.from_pool(pool)
    return RedisPyTransport(client, pool_cfg.max_connections, pool_cfg.pool_timeout)


def _tls_settings(config: RedisConfig) -> dict[str, Any]:
    """SSLConnection settings: the certificate and host name are verified unless explicitly not.

    ``ssl_cert_reqs=None`` means "required" here, whereas redis-py would read
    it as "none": the page's config must not turn verification off.
    """
    verify = not config.ssl_insecure_skip_verify
    cert_reqs = config.ssl_cert_reqs or ("required" if verify else "none")
    check_hostname = verify and config.ssl_check_hostname
    if not verify:
        unchecked = "the host name is" if cert_reqs != "none" else "the certificate and host name are"
        _log.warning(
            "TLS verification is OFF for %s (ssl_insecure_skip_verify=True): %s not verified, so anyone on "
            "the network path can impersonate the server and read the traffic, credentials included",
            config.redacted_url,
            unchecked,
        )
    return {
        "ssl_cert_reqs": cert_reqs,
        "ssl_ca_certs": config.ssl_ca_certs,
        "ssl_certfile": config.ssl_certfile,
        "ssl_keyfile": config.ssl_keyfile,
        "ssl_check_hostname": check_hostname,
        "ssl_min_version": ssl.TLSVersion.TLSv1_2,
    }
