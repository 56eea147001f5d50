"""Contract: server commands and the repository's lifetime (connect, disconnect, lazy use)."""

from __future__ import annotations

import asyncio

from neuroglia.data.redis import ConnectionPoolInfo, RedisConfig, RedisRepository
from tests.support.repositories import RepositoryFactory


async def test_ping(backend: RedisRepository) -> None:
    assert await backend.ping() is True
    assert await backend.ping_async() is True


async def test_info(backend: RedisRepository) -> None:
    info = await backend.info()
    assert isinstance(info, dict)
    assert str(info["redis_version"]).split(".")[0].isdigit()
    memory = await backend.info("memory")
    assert isinstance(memory["used_memory"], int)
    # Writing a value the size of 100 KB must show in the figure, on both backends.
    await backend.set_async("info:big", "x" * 100_000)
    grown = await backend.info("memory")
    assert grown["used_memory"] >= memory["used_memory"] + 90_000


async def test_dbsize_and_flushdb(backend: RedisRepository) -> None:
    assert await backend.dbsize() == 0
    await backend.set_many_async({"a": "1", "b": "2"})
    await backend.sadd_async("s", "m")
    assert await backend.dbsize() == 3
    assert await backend.flushdb() is True
    assert await backend.dbsize() == 0
    await backend.set_async("c", "3")
    assert await backend.flushdb(asynchronous=True) is True
    assert await backend.dbsize() == 0


async def test_memory_usage(backend: RedisRepository) -> None:
    await backend.set_async("big", "x" * 10_000)
    await backend.set_async("small", "x")
    total = await backend.memory_usage()
    big = await backend.memory_usage("big")
    small = await backend.memory_usage("small")
    assert isinstance(total, int)
    assert total > 0
    assert big >= 10_000
    assert 0 < small < big
    assert await backend.memory_usage("missing") == 0


async def test_connect_disconnect_and_reconnect(
    backend_kind: str, repo_factory: RepositoryFactory, backend_url: str
) -> None:
    repo = await repo_factory()
    assert repo.is_connected is True
    await repo.disconnect()
    assert repo.is_connected is False
    await repo.disconnect()  # twice is harmless
    await repo.connect()
    assert repo.is_connected is True
    await repo.set_async("k", "v")
    await repo.disconnect()
    # A command after disconnect reconnects lazily.
    assert await repo.set_async("k2", "v2") is True
    assert await repo.get_async("k2") == "v2"
    assert repo.is_connected is True


async def test_lazy_connection_on_first_use(backend: RedisRepository) -> None:
    repo = RedisRepository(backend.config)
    try:
        assert repo.is_connected is False
        assert await repo.connection_pool.created_connections == 0
        await backend.set_async("k", "v")
        assert await repo.get_async("k") == "v"
        assert repo.is_connected is True
    finally:
        await repo.disconnect()


async def test_async_with_repository(backend: RedisRepository) -> None:
    async with RedisRepository(backend.config) as repo:
        assert repo.is_connected is True
        await repo.set_async("inside", "yes")
    assert repo.is_connected is False
    assert await backend.get_async("inside") == "yes"


async def test_connection_pool_figures(backend: RedisRepository, backend_kind: str) -> None:
    await backend.set_async("k", "v")
    pool = backend.connection_pool
    assert isinstance(pool, ConnectionPoolInfo)
    created = await pool.created_connections
    assert isinstance(created, int)
    assert created >= 1
    assert pool.created_connections >= 1  # readable without await too
    assert await pool.in_use_connections == 0
    assert await pool.available_connections == created
    if backend_kind == "cluster":
        # The bound is per node; the figures are summed over the nodes the repository talks to.
        assert await pool.max_connections % backend.config.pool.max_connections == 0
        assert await pool.max_connections >= backend.config.pool.max_connections
    else:
        assert await pool.max_connections == backend.config.pool.max_connections


async def test_connections_are_reused_and_counted_while_lent(
    repo_factory: RepositoryFactory, backend_url: str, backend_kind: str
) -> None:
    repo = await repo_factory(connection_pool_size=4)
    pool = repo.connection_pool
    # On a cluster every key of the test shares a hash tag, so one node serves them all.
    tag = "{t}" if backend_kind == "cluster" else ""
    for n in range(20):
        await repo.set_async(f"{tag}k{n}", n)
    base = await pool.created_connections
    if backend_kind == "cluster":
        assert base >= 1  # one shared connection per primary (connect() pings each) and no more
    else:
        assert base == 1  # one at a time: the same connection every time

    # Three commands blocked on empty lists hold three connections.
    waiters = [asyncio.create_task(repo.blpop_async(f"{tag}wake:{n}", 5)) for n in range(3)]
    for _ in range(200):
        if await pool.in_use_connections == 3:
            break
        await asyncio.sleep(0.01)
    assert await pool.in_use_connections == 3
    for n in range(3):
        await repo.rpush_async(f"{tag}wake:{n}", "go")  # on a fourth connection
    assert await asyncio.gather(*waiters) == [(f"{tag}wake:{n}", "go") for n in range(3)]

    assert await pool.created_connections == base + 3
    assert await pool.in_use_connections == 0
    assert await pool.available_connections == base + 3


async def test_pool_size_from_config(repo_factory: RepositoryFactory, backend_url: str, backend_kind: str) -> None:
    repo = await repo_factory(connection_pool_size=3)
    if backend_kind == "cluster":
        await repo.ping()  # the bound is per node: the sum over the nodes the repository talks to
        assert await repo.connection_pool.max_connections % 3 == 0
    else:
        assert await repo.connection_pool.max_connections == 3


async def test_default_config_is_the_embedded_backend() -> None:
    async with RedisRepository() as repo:
        assert repo.config.scheme == "memory"
        await repo.set_async("k", "v")
        assert await repo.get_async("k") == "v"
    assert RedisConfig().scheme == "memory"


async def test_repr_names_the_location(backend: RedisRepository) -> None:
    text = repr(backend)
    assert "RedisRepository(" in text
    assert backend.config.redacted_url in text
