"""No stale read after the tracking connection was lost, restarted, cut silently, or never confirmed.

Each test has its own private redis-server (some restart it). ``reader`` has
the near cache; ``writer`` is another client whose writes the reader must
see. The stale value is always written first and cached; the test then
breaks the reader's view of Redis and writes the new value where the
reader cannot be told about it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from neuroglia.data.redis import (
    CacheException,
    CacheTimeoutError,
    CacheUnavailableError,
    RedisConfig,
    RedisRepository,
)
from neuroglia.data.redis.nearcache import NearCache
from neuroglia.data.redis.testing import RedisServer
from neuroglia.data.redis.transport import build_transport
from tests.support.cache import eventually
from tests.support.proxy import TcpProxy

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with RedisServer() as private:
        yield private


@pytest.fixture
async def writer(server: RedisServer) -> AsyncIterator[RedisRepository]:
    repo = RedisRepository(RedisConfig(url=server.url, retry_policy={"retries": 5, "retry_delay": 0.05}))
    yield repo
    await repo.disconnect()


def near_of(repo: RedisRepository) -> NearCache:
    near = repo.near_cache
    assert near is not None
    return near


async def until_answered(call: Any, within: float = 10.0) -> Any:
    """``await call()`` again until it answers (the server may still be coming back), bounded in time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            return await call()
        except CacheUnavailableError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.05)


async def cache_stale_value(reader: RedisRepository, writer: RedisRepository) -> None:
    await writer.set_async("menu", "stale")
    assert await reader.get_async("menu") == "stale"
    assert await reader.get_async("menu") == "stale"
    assert near_of(reader).statistics().hits == 1  # held locally


async def test_client_kill_of_the_tracking_connection(server: RedisServer, writer: RedisRepository) -> None:
    reader = RedisRepository(RedisConfig(url=server.url, near_cache=True, client_name="near-reader"))
    admin = build_transport(RedisConfig(url=server.url))
    try:
        await cache_stale_value(reader, writer)
        listing = (await admin.execute(("CLIENT", "LIST"))).decode()
        ids = [
            field.split("=")[1]
            for line in listing.splitlines()
            if "name=near-reader " in line
            for field in line.split()
            if field.startswith("id=")
        ]
        assert len(ids) == 1, listing
        assert await admin.execute(("CLIENT", "KILL", "ID", ids[0])) == 1
        await writer.set_async("menu", "fresh")  # Redis cannot tell the reader: its connection is gone
        near = near_of(reader)
        await eventually(lambda: near.statistics().flushes == 1, within=5, what="the near cache is flushed")
        assert len(near.store) == 0
        assert await until_answered(lambda: reader.get_async("menu")) == "fresh"
        assert await reader.get_async("menu") == "fresh"  # tracked again on the new connection
        assert near.statistics().hits == 2
        await writer.set_async("menu", "fresher")
        await eventually(lambda: len(near.store) == 0, within=5, what="the new connection's invalidation")
        assert await reader.get_async("menu") == "fresher"
    finally:
        await admin.close()
        await reader.disconnect()


async def test_a_server_restart(server: RedisServer, writer: RedisRepository) -> None:
    reader = RedisRepository(RedisConfig(url=server.url, near_cache=True, retry_policy={"retries": 0}))
    try:
        await cache_stale_value(reader, writer)
        server.restart()  # no persistence: the new server knows nothing, tracks nothing
        await until_answered(lambda: writer.set_async("menu", "fresh"))
        near = near_of(reader)
        await eventually(lambda: near.statistics().flushes >= 1, within=5, what="the near cache is flushed")
        assert await until_answered(lambda: reader.get_async("menu")) == "fresh"
        await writer.set_async("menu", "fresher")
        await eventually(lambda: len(near.store) == 0, within=5, what="the new server's invalidation")
        assert await reader.get_async("menu") == "fresher"
    finally:
        await reader.disconnect()


async def test_a_silent_cut_stops_the_hits_within_two_heartbeats(server: RedisServer, writer: RedisRepository) -> None:
    proxy = await TcpProxy("127.0.0.1", server.port).start()
    reader = RedisRepository(
        RedisConfig(
            url=proxy.url,
            near_cache={"heartbeat_interval": 0.1},
            operation_timeout=0.5,
            retry_policy={"retries": 0},
            circuit_breaker=False,
        )
    )
    try:
        await cache_stale_value(reader, writer)
        near = near_of(reader)
        proxy.hold_replies = True  # the connection stays open; nothing comes back (a partition)
        await writer.set_async("menu", "fresh")  # its invalidation is stuck in the cut
        await eventually(lambda: not near.serving, within=2, what="the near cache stops serving")
        # The stale value is still held, but never served: Redis is asked, and cannot answer in time.
        assert len(near.store) == 1
        with pytest.raises(CacheTimeoutError):
            await reader.get_async("menu")
        proxy.hold_replies = False  # the network heals: what was held arrives, in order
        await eventually(lambda: near.serving, within=2, what="a heartbeat is answered")
        assert await reader.get_async("menu") == "fresh"
    finally:
        await reader.disconnect()
        await proxy.close()


async def test_the_session_must_be_confirmed_before_anything_is_kept() -> None:
    # A server where CLIENT does not exist: tracking cannot be turned on.
    with RedisServer(args=["--rename-command", "CLIENT", ""]) as server:
        reader = RedisRepository(RedisConfig(url=server.url, near_cache=True, retry_policy={"retries": 0}))
        try:
            with pytest.raises(CacheException, match="CLIENT"):
                await reader.get_async("menu")
            near = near_of(reader)
            assert len(near.store) == 0
            assert not near.serving
        finally:
            await reader.disconnect()
