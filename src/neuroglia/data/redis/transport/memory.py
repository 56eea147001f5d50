"""The embedded ``memory://`` backend: fakeredis behind the transport contract.

No server, no network: each ``memory://`` URL names an in-process server
(fakeredis with Lua), shared by the repositories of this process that name
it; an unnamed ``memory://`` is private to its repository. It answers like
a real Redis 7 for the commands the library uses: where fakeredis differs,
:mod:`.memory_commands` answers instead (INCRBYFLOAT's long double, INFO and
MEMORY USAGE everywhere, Lua's libraries and number conversion), and the
pool is bounded as a server's is. The contract suite and a differential
test hold it to the real server's answers; ``docs/usage.md`` lists what
still differs.

fakeredis has no ``CLIENT TRACKING``: instead, every key fakeredis
changes in a database (it tells its ``WATCH`` machinery of each one, scripts
and expirations on access included) is reported to the push handlers
registered on any transport of that in-process server, as the invalidation
message Redis would push, while the command runs; commands that empty a
database report every key. That is what keeps a near cache over
``memory://`` coherent. (Should a fakeredis version lack that hook, the
keys a command names are reported after it runs, and a script reports every
key.)
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from ..config import RedisConfig
from ..exceptions import ConfigurationError
from .contract import Args
from .invalidation import FLUSHING_COMMANDS, invalidation_message, written_keys
from .redis_py import RedisPyTransport

__all__ = ["MemoryTransport", "build_memory_transport"]


# memory:// servers by name, so that two repositories in one process can share
# data (``memory://orders``). Unnamed ``memory://`` gets a private server. Weak
# values: a server lives as long as some repository's client refers to it.
_memory_servers: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()


# The push handlers of each in-process server, shared by all its transports
# (a write through one repository reaches the near cache of another).
_push_handlers: weakref.WeakKeyDictionary[Any, list[Callable[[list[Any]], None]]] = weakref.WeakKeyDictionary()
_log = logging.getLogger("neuroglia.data.redis")
_SCRIPTS = frozenset({"EVAL", "EVALSHA", "FCALL"})
_HandlerList = list[Callable[[list[Any]], None]]


def _publish(handlers: _HandlerList, message: list[Any]) -> None:
    for handler in list(handlers):
        try:
            handler(message)
        except Exception:
            _log.exception("neuroglia-redis: a push message handler failed")


def _observe(server: Any, db: int, handlers: _HandlerList) -> bool:
    """Report each key fakeredis changes in database ``db`` to ``handlers``; ``False`` if it cannot be observed."""
    database = server.dbs[db]
    if getattr(database, "_neuroglia_push_handlers", None) is handlers:
        return True
    notify = getattr(database, "notify_watch", None)
    if not callable(notify):
        return False

    def notify_watch(key: bytes) -> None:
        notify(key)
        if handlers:
            _publish(handlers, [b"invalidate", [key]])

    database.notify_watch = notify_watch
    database._neuroglia_push_handlers = handlers
    return True


def build_memory_transport(config: RedisConfig) -> MemoryTransport:
    """The embedded backend for a ``memory://`` config: a private or named in-process server."""
    try:
        import fakeredis

        from .memory_commands import MemoryConnection
    except ImportError as exc:
        raise ConfigurationError(
            "url: memory:// needs the embedded backend: pip install 'neuroglia-redis[memory]'"
        ) from exc
    name = config.memory_name
    server = _memory_servers.get(name) if name else None
    if server is None:
        server = fakeredis.FakeServer(version=(7,))
        if name:
            _memory_servers[name] = server
    client = fakeredis.FakeAsyncRedis(
        server=server, db=config.db, decode_responses=False, protocol=2, connection_class=MemoryConnection
    )
    handlers = _push_handlers.get(server)
    if handlers is None:
        handlers = _push_handlers[server] = []
    observed = _observe(server, config.db or 0, handlers)
    return MemoryTransport(
        client, config.pool.max_connections, config.pool.pool_timeout, push_handlers=handlers, observed=observed
    )


class MemoryTransport(RedisPyTransport):
    """fakeredis' client, bounded like a pool of ``max_connections``.

    Every command, blocking command and batch holds one of the pool's
    connections while it runs; when all are busy it waits up to
    ``pool_timeout`` and then fails with
    :class:`~neuroglia.data.redis.PoolExhaustedError`, as on a real server.
    """

    def __init__(
        self,
        client: Any,
        max_connections: int,
        pool_timeout: float | None = None,
        *,
        push_handlers: _HandlerList | None = None,
        observed: bool = False,
    ) -> None:
        super().__init__(client, max_connections, pool_timeout)
        self._push_handlers = push_handlers if push_handlers is not None else []
        self._observed = observed

    # -- invalidation messages, as a tracking Redis would push them ---------------

    def add_push_handler(self, handler: Callable[[list[Any]], None]) -> None:
        """Call ``handler`` with ``[b"invalidate", [key, ...]]`` for each key any transport of this server changes.

        ``None`` instead of the list means every key (``FLUSHDB``); reads
        report nothing. Handlers run inside the command: they must be quick;
        an exception is logged.
        """
        self._push_handlers.append(handler)

    def remove_push_handler(self, handler: Callable[[list[Any]], None]) -> None:
        """Stop calling ``handler`` (no error if it was not registered)."""
        if handler in self._push_handlers:
            self._push_handlers.remove(handler)

    def _announce(self, args: Args) -> None:
        name = str(args[0]).upper()
        if name in FLUSHING_COMMANDS:
            _publish(self._push_handlers, invalidation_message(None))
        elif not self._observed:
            keys = None if name in _SCRIPTS else written_keys(args)
            if keys != ():
                _publish(self._push_handlers, invalidation_message(keys))

    async def execute(self, args: Args, deadline: float | None = None) -> Any:
        if not self._push_handlers:
            return await super().execute(args, deadline)
        try:
            return await super().execute(args, deadline)
        finally:
            self._announce(args)  # failed too: it may have applied

    async def execute_blocking(self, args: Args, timeout: float) -> Any:
        try:
            return await super().execute_blocking(args, timeout)
        finally:
            self._announce(args)

    async def execute_many(self, commands: Sequence[Args], *, transaction: bool) -> list[Any]:
        try:
            return await super().execute_many(commands, transaction=transaction)
        finally:
            for args in commands:
                self._announce(args)

    # -- the pool bound ----------------------------------------------------------------

    async def _borrow(self, deadline: float | None = None) -> None:
        """Take one of the pool's connections, waiting up to the pool timeout (and the deadline)."""
        await self._take_slot(deadline)

    async def _execute_one(self, args: Args, deadline: float | None = None) -> Any:
        await self._borrow(deadline)
        try:
            if deadline is None:
                return await self._execute(*args)
            async with asyncio.timeout_at(deadline):
                return await self._execute(*args)
        finally:
            self._slots.release()

    async def _execute_blocking(self, args: Args, timeout: float) -> Any:
        await self._borrow()
        try:
            if timeout <= 0:  # 0 means "wait forever", as on a real server
                return await self._execute(*args)
            return await asyncio.wait_for(self._execute(*args), timeout + 1.0)
        finally:
            self._slots.release()

    async def _execute_many(self, commands: Any, *, transaction: bool) -> list[Any]:
        await self._borrow()
        try:
            pipe = self._client.pipeline(transaction=transaction)
            for args in commands:
                pipe.execute_command(*args)
            return list(await pipe.execute(raise_on_error=False))
        finally:
            self._slots.release()
