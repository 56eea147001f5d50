"""A repository with a near cache, on both backends: what it serves locally, and that nothing it serves is stale.

``reader`` has the near cache; ``writer`` is another repository on the same
data (another process would behave the same on the real server; on
``memory://`` the in-process server reports its writes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from neuroglia.data.redis import ConfigurationError, RedisConfig, RedisRepository
from neuroglia.data.redis.testing import MockTransport
from tests.support.cache import eventually
from tests.support.repositories import RepositoryFactory

pytestmark = pytest.mark.timeout(60)


@dataclass
class Pizza:
    name: str
    price: float


async def pair(repo_factory: RepositoryFactory, **near: Any) -> tuple[RedisRepository, RedisRepository]:
    reader = await repo_factory(key_prefix="app:", near_cache=near or True, enable_metrics=True)
    writer = await repo_factory(key_prefix="app:")
    return reader, writer


def sent(repo: RedisRepository, command: str) -> int:
    """How many ``command`` the repository sent to Redis."""
    assert repo.metrics is not None
    return int(repo.metrics.get_counter("commands_total", {"command": command}))


async def test_a_second_read_is_served_without_asking_redis(backend_url: str, repo_factory: RepositoryFactory) -> None:
    reader, writer = await pair(repo_factory)
    await writer.set_async("menu", "margherita")
    assert await reader.get_async("menu") == "margherita"
    assert await reader.get_async("menu") == "margherita"
    assert await reader.get_async("menu") == "margherita"
    assert sent(reader, "GET") == 1
    near = reader.near_cache
    assert near is not None
    stats = near.statistics()
    assert (stats.hits, stats.misses, stats.entries) == (2, 1, 1)
    assert stats.serving
    assert reader.metrics is not None
    assert reader.metrics.get_counter("near_cache_hits_total") == 2


async def test_a_write_of_another_repository_is_seen(backend_url: str, repo_factory: RepositoryFactory) -> None:
    reader, writer = await pair(repo_factory)
    await writer.set_async("menu", "margherita")
    assert await reader.get_async("menu") == "margherita"
    await writer.set_async("menu", "marinara")
    # memory:// reports it while the write runs; Redis pushes it within the round trip
    seen: list[Any] = []

    async def read() -> None:
        seen.append(await reader.get_async("menu"))

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while True:
        await read()
        if seen[-1] == "marinara" or loop.time() > deadline:
            break
        await asyncio.sleep(0.005)
    assert seen[-1] == "marinara"
    if backend_url.startswith("memory://"):
        assert seen == ["marinara"]  # at once: the in-process server reported the write as it ran
    assert reader.near_cache is not None
    assert reader.near_cache.statistics().invalidations == 1


Reads = Callable[[RedisRepository], Awaitable[Any]]


PARITY: list[tuple[str, Reads]] = [
    ("get_async", lambda r: r.get_async("text")),
    ("get_async bytes", lambda r: r.get_async("binary")),
    ("get_async missing", lambda r: r.get_async("missing")),
    ("get_object_async", lambda r: r.get_object_async("pizza", Pizza)),
    ("get_object_async plain", lambda r: r.get_object_async("pizza")),
    ("get_object_async missing", lambda r: r.get_object_async("missing", Pizza)),
    ("get_many_async", lambda r: r.get_many_async(["text", "binary", "missing"])),
    ("hget_async", lambda r: r.hget_async("order", "status")),
    ("hget_async missing", lambda r: r.hget_async("order", "nope")),
    ("hgetall_async", lambda r: r.hgetall_async("order")),
    ("hgetall_async missing", lambda r: r.hgetall_async("missing")),
    ("hmget_async", lambda r: r.hmget_async("order", ["status", "nope", "pizza"])),
    ("smembers_async", lambda r: r.smembers_async("toppings")),
]


@pytest.mark.parametrize("decode", [True, False], ids=["decoded", "bytes"])
@pytest.mark.parametrize(("label", "call"), PARITY, ids=[label for label, _ in PARITY])
async def test_hits_and_misses_answer_as_the_repository_without_it(
    backend_url: str, repo_factory: RepositoryFactory, label: str, call: Reads, decode: bool
) -> None:
    plain = await repo_factory(key_prefix="app:", decode_responses=decode)
    near = await repo_factory(key_prefix="app:", decode_responses=decode, near_cache=True)
    await plain.set_async("text", "café")
    await plain.set_async("binary", b"\xff\x00\xfe")
    await plain.set_object_async("pizza", Pizza("margherita", 8.5))
    await plain.hset_async("order", {"status": "baking", "pizza": "diavola"})
    await plain.sadd_async("toppings", "basil", "mozzarella")
    expected = await call(plain)
    assert await call(near) == expected  # a miss: read from Redis
    assert await call(near) == expected  # a hit
    assert near.near_cache is not None
    assert near.near_cache.statistics().hits >= 1


WRITES: list[tuple[str, Reads, Reads, Any]] = [
    # (label, write, read back, expected)
    ("set", lambda r: r.set_async("k", "new"), lambda r: r.get_async("k"), "new"),
    ("delete", lambda r: r.delete_async("k"), lambda r: r.get_async("k"), None),
    ("incr", lambda r: r.incr_async("n"), lambda r: r.get_async("n"), "2"),
    ("expire now", lambda r: r.expire_async("k", 0.001), lambda r: asyncio.sleep(0.01, None), None),
    ("set_many", lambda r: r.set_many_async({"k": "new", "n": "9"}), lambda r: r.get_many_async(["k", "n"]),
     {"k": "new", "n": "9"}),
    ("set_many with ttl", lambda r: r.set_many_async({"k": "new"}, 60), lambda r: r.get_async("k"), "new"),
    ("set_object", lambda r: r.set_object_async("pizza", Pizza("diavola", 9.0)),
     lambda r: r.get_object_async("pizza", Pizza), Pizza("diavola", 9.0)),
    ("hset", lambda r: r.hset_async("order", "status", "ready"), lambda r: r.hget_async("order", "status"), "ready"),
    ("hdel", lambda r: r.hdel_async("order", "status"), lambda r: r.hgetall_async("order"), {"pizza": "diavola"}),
    ("sadd", lambda r: r.sadd_async("toppings", "olives"), lambda r: r.smembers_async("toppings"),
     {"basil", "olives"}),
    ("script", lambda r: r.eval_async("return redis.call('SET', KEYS[1], ARGV[1])", ["k"], ["scripted"]),
     lambda r: r.get_async("k"), "scripted"),
]  # fmt: skip


@pytest.mark.parametrize(("label", "write", "read", "expected"), WRITES, ids=[w[0] for w in WRITES])
async def test_its_own_write_is_read_back_at_once(
    backend_url: str, repo_factory: RepositoryFactory, label: str, write: Reads, read: Reads, expected: Any
) -> None:
    repo = await repo_factory(key_prefix="app:", near_cache=True)
    await repo.set_async("k", "old")
    await repo.set_async("n", "1")
    await repo.set_object_async("pizza", Pizza("margherita", 8.5))
    await repo.hset_async("order", {"status": "baking", "pizza": "diavola"})
    await repo.sadd_async("toppings", "basil")
    # Everything read once: held by the near cache.
    await repo.get_many_async(["k", "n"])
    for key in ("k", "n"):
        await repo.get_async(key)
    await repo.get_object_async("pizza", Pizza)
    await repo.hget_async("order", "status")
    await repo.hgetall_async("order")
    await repo.smembers_async("toppings")
    await write(repo)
    if label == "expire now":
        await asyncio.sleep(0.05)
        assert await repo.get_async("k") is None
        return
    assert await read(repo) == expected


async def test_pipelines_and_transactions_drop_what_they_write(
    backend_url: str, repo_factory: RepositoryFactory
) -> None:
    repo = await repo_factory(key_prefix="app:", near_cache=True)
    await repo.set_many_async({"a": "1", "b": "1"})
    assert await repo.get_many_async(["a", "b"]) == {"a": "1", "b": "1"}
    async with repo.pipeline() as pipe:
        pipe.set_async("a", "2")
    assert await repo.get_async("a") == "2"
    async with repo.transaction() as tx:
        tx.set_async("b", "3")
        tx.get_async("b")  # a read inside a transaction is sent, never served locally
    assert tx.results == [True, "3"]
    assert await repo.get_many_async(["a", "b"]) == {"a": "2", "b": "3"}


async def test_an_entry_never_outlives_the_keys_ttl(backend_url: str, repo_factory: RepositoryFactory) -> None:
    reader, writer = await pair(repo_factory)
    await writer.set_async("session", "s", expiration=0.3)
    await writer.hset_async("cart", "pizza", "1")
    await writer.expire_async("cart", 0.3)
    assert await reader.get_async("session") == "s"
    assert await reader.hgetall_async("cart") == {"pizza": "1"}
    await asyncio.sleep(0.35)
    # Redis may not have sent (or even decided) the expiry yet: the entry's own deadline answers.
    assert await reader.get_async("session") is None
    assert await reader.hgetall_async("cart") == {}


async def test_flushdb_by_another_repository_empties_it(backend_url: str, repo_factory: RepositoryFactory) -> None:
    reader, writer = await pair(repo_factory)
    await writer.set_async("k", "v")
    assert await reader.get_async("k") == "v"
    await writer.flushdb()
    near = reader.near_cache
    assert near is not None
    await eventually(lambda: len(near.store) == 0, within=5, what="the near cache is flushed")
    assert await reader.get_async("k") is None


async def test_options_limit_what_is_kept(backend_url: str, repo_factory: RepositoryFactory) -> None:
    repo = await repo_factory(
        key_prefix="app:", near_cache={"prefixes": ["menu:"], "commands": ["GET"]}, enable_metrics=True
    )
    await repo.set_async("menu:1", "m")
    await repo.set_async("orders:1", "o")
    await repo.hset_async("menu:h", "f", "v")
    for _ in range(2):
        assert await repo.get_async("menu:1") == "m"
        assert await repo.get_async("orders:1") == "o"
        assert await repo.hgetall_async("menu:h") == {"f": "v"}
    assert sent(repo, "GET") == 3  # menu:1 once, orders:1 twice
    assert sent(repo, "HGETALL") == 2


async def test_disconnect_empties_it_and_a_reconnect_fills_it_again(
    backend_url: str, repo_factory: RepositoryFactory
) -> None:
    repo = await repo_factory(key_prefix="app:", near_cache=True)
    await repo.set_async("k", "v")
    assert await repo.get_async("k") == "v"
    near = repo.near_cache
    assert near is not None
    assert len(near.store) == 1
    await repo.disconnect()
    assert len(near.store) == 0
    assert not near.serving
    assert near.tracking_mode == "detached"
    assert await repo.get_async("k") == "v"  # reconnects lazily, tracking again
    assert await repo.get_async("k") == "v"
    assert near.statistics().hits == 1
    assert near.tracking_mode == ("in-process" if backend_url.startswith("memory://") else "default")


async def test_a_transport_that_cannot_deliver_invalidations_is_refused() -> None:
    repo = RedisRepository(RedisConfig(url="memory://refused", near_cache=True), transport=MockTransport(b"v"))
    with pytest.raises(ConfigurationError, match="cannot deliver invalidations"):
        await repo.get_async("k")


async def test_a_subclass_override_of_a_fast_read_is_kept(backend_url: str) -> None:
    class Shouting(RedisRepository):
        async def get_async(self, key: Any) -> Any:  # type: ignore[override]
            value = await super().get_async(key)
            return None if value is None else str(value).upper()

    repo = Shouting(RedisConfig(url=backend_url, near_cache=True))
    try:
        await repo.set_async("greeting", "ciao")
        assert await repo.get_async("greeting") == "CIAO"
        assert await repo.get_async("greeting") == "CIAO"
    finally:
        await repo.flushdb()
        await repo.disconnect()


async def test_its_own_writes_do_not_wait_for_the_servers_message(repo_factory: RepositoryFactory) -> None:
    """The executor drops what a write changes itself, before and after sending it, whatever Redis reports."""
    repo = await repo_factory("memory://own-writes", key_prefix="app:", near_cache=True)
    await repo.set_async("k", "old")
    await repo.hset_async("h", "f", "old")
    assert await repo.get_async("k") == "old"
    assert await repo.hgetall_async("h") == {"f": "old"}
    near = repo.near_cache
    assert near is not None
    transport: Any = repo._transport
    transport.remove_push_handler(near.on_push)  # as if Redis' messages were late
    try:
        await repo.set_async("k", "new")
        async with repo.pipeline() as pipe:
            pipe.hset_async("h", "f", "new")
        assert await repo.get_async("k") == "new"
        assert await repo.hgetall_async("h") == {"f": "new"}
        assert near.statistics().invalidations == 2
    finally:
        transport.add_push_handler(near.on_push)


@pytest.mark.integration
@pytest.mark.parametrize("connections", [1, 2])
async def test_broadcast_mode_hears_of_every_change_under_its_prefixes(
    redis_server: Any, repo_factory: RepositoryFactory, connections: int
) -> None:
    url = redis_server.url
    reader = await repo_factory(
        url,
        key_prefix="app:",
        near_cache={"mode": "broadcast", "prefixes": ["menu:", "orders:"]},
        connection_pool={"multiplexed_connections": connections},
    )
    writer = await repo_factory(url, key_prefix="app:")
    await writer.flushdb()
    await writer.set_many_async({"menu:1": "margherita", "orders:1": "placed", "other": "x"})
    for _ in range(2):
        assert await reader.get_many_async(["menu:1", "orders:1", "other"]) == {
            "menu:1": "margherita",
            "orders:1": "placed",
            "other": "x",
        }
    near = reader.near_cache
    assert near is not None
    assert near.tracking_mode == "broadcast"
    assert sorted(entry.args[1] for entry in near.entries()) == ["app:menu:1", "app:orders:1"]  # not "other"
    await writer.set_async("menu:1", "marinara")
    await writer.delete_async("orders:1")
    await eventually(lambda: len(near.store) == 0, within=5, what="both invalidations")
    assert await reader.get_many_async(["menu:1", "orders:1"]) == {"menu:1": "marinara", "orders:1": None}
