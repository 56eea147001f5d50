"""Multiplexing: concurrent callers share one connection, their writes are coalesced, replies go to their owners."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
import redis

from neuroglia.data.redis import CacheException, Delivery, RedisConfig, RedisRepository
from neuroglia.data.redis.testing import RedisServer
from tests.support.transports import MakeTransport, value_of

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90), pytest.mark.both_loops]


async def test_concurrent_callers_share_one_connection_and_few_writes(
    server: RedisServer, make_transport: MakeTransport
) -> None:
    transport = make_transport(server.url, client_name="mux-share")
    await transport.execute(("PING",))
    keys = [f"k{i}" for i in range(300)]
    assert await asyncio.gather(*(transport.execute(("SET", k, value_of(k))) for k in keys)) == [b"OK"] * 300
    conn = transport._shared[0]
    assert conn is not None
    writes_before = conn.writes
    replies = await asyncio.gather(*(transport.execute(("GET", k)) for k in keys))
    assert replies == [value_of(k) for k in keys]
    # 300 commands queued in one loop iteration: the first leaves at once (the
    # connection was idle), the other 299 together in one more write().
    assert conn.writes - writes_before == 2
    stats = transport.pool_stats()
    assert stats.created_connections == 1
    assert stats.in_use_connections == 0
    admin = redis.Redis(host=server.host, port=server.port)
    try:
        assert [c["name"] for c in admin.client_list()].count("mux-share") == 1
    finally:
        admin.close()


async def test_a_thousand_callers_with_cancellations_and_a_kill_get_only_their_own_replies(
    server: RedisServer, make_transport: MakeTransport
) -> None:
    transport = make_transport(server.url, socket_timeout=1.0, socket_connect_timeout=0.5)
    keys = [f"key:{i}" for i in range(200)]
    await asyncio.gather(*(transport.execute(("SET", k, value_of(k))) for k in keys))
    rng = random.Random(1000)
    loop = asyncio.get_running_loop()
    restarted = False

    async def caller(n: int) -> tuple[str, Any]:
        await asyncio.sleep(rng.uniform(0, 0.3))
        if n % 2:
            payload = f"echo:{n}:{rng.random()}".encode()
            try:
                reply = await transport.execute(("ECHO", payload), loop.time() + 2.0)
            except CacheException as exc:
                return "failed", exc
            assert reply == payload, (payload, reply)  # never another caller's reply
            return "ok", reply
        key = keys[n % len(keys)]
        try:
            reply = await transport.execute(("GET", key), loop.time() + 2.0)
        except CacheException as exc:
            return "failed", exc
        # The server is restarted without persistence: a key may be gone, never another key's value.
        assert reply == value_of(key) or (restarted and reply is None), (key, reply)
        return "ok", reply

    tasks = [asyncio.create_task(caller(n)) for n in range(1000)]
    cancelled = 0
    await asyncio.sleep(0.05)
    for task in rng.sample(tasks, 250):
        if task.cancel():
            cancelled += 1
    await asyncio.sleep(0.1)
    server.kill()
    await asyncio.sleep(0.05)
    server.start()
    restarted = True
    outcomes = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
    ok = [o for o in outcomes if isinstance(o, tuple) and o[0] == "ok"]
    failed = [o[1] for o in outcomes if isinstance(o, tuple) and o[0] == "failed"]
    was_cancelled = [o for o in outcomes if isinstance(o, asyncio.CancelledError)]
    assert len(ok) + len(failed) + len(was_cancelled) == 1000, [o for o in outcomes if not isinstance(o, tuple)][:3]
    assert cancelled >= 200
    assert ok  # traffic flowed before the kill and after the restart
    for error in failed:
        assert isinstance(error.delivery, Delivery), error
    # Afterwards the connection is clean and answers in order.
    payloads = [f"after:{i}".encode() for i in range(100)]
    assert await asyncio.gather(*(transport.execute(("ECHO", p)) for p in payloads)) == payloads
    assert transport.pool_stats().in_use_connections == 0


async def test_transactions_are_written_contiguously_among_other_commands(
    server: RedisServer, make_transport: MakeTransport
) -> None:
    transport = make_transport(server.url)
    await transport.execute(("MSET", "left", 0, "right", 0))

    async def transfer() -> list[Any]:
        return await transport.execute_many([("INCR", "left"), ("INCR", "right")], transaction=True)

    async def read() -> list[Any]:
        left, right = await transport.execute(("MGET", "left", "right"))
        assert left == right  # a transaction is never split by another caller's command
        return [left, right]

    work = [transfer() if n % 3 else read() for n in range(600)]
    results = await asyncio.gather(*work)
    transfers = [r for n, r in enumerate(results) if n % 3]
    assert sorted(r[0] for r in transfers) == list(range(1, len(transfers) + 1))
    assert await transport.execute(("MGET", "left", "right")) == [str(len(transfers)).encode()] * 2


async def test_pipelines_and_single_commands_interleave_correctly(
    server: RedisServer, make_transport: MakeTransport
) -> None:
    transport = make_transport(server.url)

    async def pipeline(n: int) -> None:
        keys = [f"p{n}:{i}" for i in range(50)]
        await transport.execute_many([("SET", k, value_of(k)) for k in keys], transaction=False)
        replies = await transport.execute_many([("GET", k) for k in keys], transaction=False)
        assert replies == [value_of(k) for k in keys]

    async def single(n: int) -> None:
        payload = f"single:{n}".encode()
        assert await transport.execute(("ECHO", payload)) == payload

    await asyncio.gather(*(pipeline(n) if n % 4 == 0 else single(n) for n in range(400)))


async def test_the_repository_runs_on_the_multiplexed_transport_by_default(server: RedisServer) -> None:
    async with RedisRepository(RedisConfig(url=server.url)) as repo:
        assert type(repo._transport).__name__ == "MultiplexedTransport"
        await asyncio.gather(*(repo.set_async(f"r{i}", f"v{i}") for i in range(100)))
        assert await asyncio.gather(*(repo.get_async(f"r{i}") for i in range(100))) == [f"v{i}" for i in range(100)]
        assert await repo.connection_pool.created_connections == 1
    async with RedisRepository(RedisConfig(url=server.url, transport="redis-py")) as repo:
        assert type(repo._transport).__name__ == "RedisPyTransport"
        assert await repo.get_async("r1") == "v1"
