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
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from redis import exceptions as rex

from ..config import RedisConfig
from ..exceptions import ConfigurationError
from .contract import Args
from .redis_py import NotSentError, RedisPyTransport

__all__ = ["MemoryTransport", "build_memory_transport"]


# memory:// servers by name, so that two repositories in one process can share
# data (``memory://orders``). Unnamed ``memory://`` gets a private server. Weak
# values: a server lives as long as some repository's client refers to it.
_memory_servers: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()


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
    return MemoryTransport(client, config.pool.max_connections, config.pool.pool_timeout)


class MemoryTransport(RedisPyTransport):
    """fakeredis' client, bounded like a pool of ``max_connections``.

    Every command, blocking command and batch holds one of the pool's
    connections while it runs; when all are busy it waits up to
    ``pool_timeout`` and then fails with
    :class:`~neuroglia.data.redis.PoolExhaustedError`, as on a real server.
    """

    async def _borrow(self, deadline: float | None = None) -> None:
        """Take one of the pool's connections, waiting up to the pool timeout (and the deadline)."""
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
