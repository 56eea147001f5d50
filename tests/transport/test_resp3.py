"""RESP3: the same RESP2-shaped replies, push messages to a handler, and session hooks for client tracking."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
import redis

from neuroglia.data.redis import (
    CacheCommandError,
    CacheException,
    CacheUnavailableError,
    Delivery,
    RedisConfig,
    RedisRepository,
)
from neuroglia.data.redis.testing import RedisServer

if TYPE_CHECKING:
    from tests.support.transports import MakeTransport

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60), pytest.mark.both_loops]

COMMANDS: list[tuple[Any, ...]] = [
    ("HGETALL", "h"),
    ("HRANDFIELD", "h", 3, "WITHVALUES"),  # every field: the same set each time
    ("ZRANGE", "z", 0, -1, "WITHSCORES"),
    ("ZRANGE", "z", 0, -1),
    ("ZREVRANGE", "z", 0, -1, "withscores"),
    ("ZRANGEBYSCORE", "z", "-inf", "+inf", "WITHSCORES"),
    ("ZSCORE", "z", "a"),
    ("ZSCORE", "z", "b"),
    ("ZMSCORE", "z", "a", "b", "missing"),
    ("ZINCRBY", "z", 0.25, "c"),
    ("ZPOPMIN", "zz", 2),
    ("ZPOPMAX", "zz"),
    ("ZRANDMEMBER", "one", 1, "WITHSCORES"),
    ("SMEMBERS", "s"),
    ("SISMEMBER", "s", "x"),
    ("SMISMEMBER", "s", "x", "nope"),
    ("INCRBYFLOAT", "f", 1.5),
    ("HINCRBYFLOAT", "h", "n", 2),
    ("GET", "missing"),
    ("MGET", "h", "missing"),
    ("CONFIG", "GET", "maxmemory-policy"),
    ("SCAN", 0, "MATCH", "h*", "COUNT", 100),
    ("EVAL", "return {1, 'two', {3}}", 0),
    ("TYPE", "h"),
    ("TTL", "h"),
    ("OBJECT", "ENCODING", "h"),
]


async def seed(transport: Any) -> None:
    await transport.execute(("FLUSHDB",))
    await transport.execute(("HSET", "h", "f1", "v1", "f2", "v2", "n", "1"))
    await transport.execute(("ZADD", "z", 1, "a", 2.5, "b", 3, "c"))
    await transport.execute(("ZADD", "zz", 1, "a", 2, "b", 3, "c", 4, "d"))
    await transport.execute(("ZADD", "one", 7, "only"))
    await transport.execute(("SADD", "s", "x"))


def canonical(reply: Any) -> Any:
    """HRANDFIELD/SCAN pick at random and HGETALL/SMEMBERS/CONFIG have no order: compare as sorted."""
    if isinstance(reply, list):
        return sorted(repr(canonical(item)) for item in reply)
    return reply


async def test_resp3_replies_have_the_same_shapes_as_resp2(server: RedisServer, make_transport: MakeTransport) -> None:
    resp2 = make_transport(server.url)
    resp3 = make_transport(server.url + "?protocol=3")
    await seed(resp2)
    for args in COMMANDS:
        two = await resp2.execute(args)
        await seed(resp2)
        three = await resp3.execute(args)
        await seed(resp2)
        if args[0] in ("HRANDFIELD", "HGETALL", "SMEMBERS", "SCAN", "CONFIG"):
            assert canonical(two) == canonical(three), args
            assert type(two) is type(three), args
        else:
            assert two == three, (args, two, three)
    # Batches and transactions are reshaped command by command too.
    batch = [("ZRANGE", "z", 0, -1, "WITHSCORES"), ("ZSCORE", "z", "b"), ("HGETALL", "h")]
    assert await resp3.execute_many(batch, transaction=False) == await resp2.execute_many(batch, transaction=False)
    assert await resp3.execute_many(batch, transaction=True) == await resp2.execute_many(batch, transaction=True)


async def test_the_repository_gives_the_same_answers_on_resp3(server: RedisServer) -> None:
    async with RedisRepository(RedisConfig(url=server.url, protocol=3)) as repo:
        await repo.flushdb()
        await repo.zadd_async("z", {"a": 1, "b": 2.5})
        await repo.hset_async("h", mapping={"f": "v"})
        assert await repo.zrange_async("z", 0, -1, withscores=True) == [("a", 1.0), ("b", 2.5)]
        assert await repo.zscore_async("z", "b") == 2.5
        assert await repo.hgetall_async("h") == {"f": "v"}
        assert await repo.exists_async("h") is True


async def test_push_messages_reach_the_handler_and_session_hooks_follow_connections(
    server: RedisServer, make_transport: MakeTransport
) -> None:
    transport = make_transport(server.url + "?protocol=3", client_name="tracked")
    pushes: list[list[Any]] = []
    ready: list[int] = []
    lost: list[int] = []
    transport.add_push_handler(pushes.append)
    await transport.execute(("SET", "menu", "margherita"))  # a connection exists before the hook
    hook = transport.add_session_hook([("CLIENT", "TRACKING", "ON")], on_ready=ready.append, on_lost=lost.append)
    assert await transport.execute(("GET", "menu")) == b"margherita"  # tracked: the hook ran before it
    assert len(ready) == 1
    admin = redis.Redis(host=server.host, port=server.port)
    try:
        admin.set("menu", "pepperoni")
        for _ in range(100):  # bounded: the invalidation arrives within milliseconds
            if pushes:
                break
            await asyncio.sleep(0.01)
        assert pushes == [[b"invalidate", [b"menu"]]]

        # The connection is lost: whatever it would have received is unknown.
        admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        for _ in range(100):
            if lost:
                break
            await asyncio.sleep(0.01)
        assert lost == ready
        # The next connection runs the hook in its handshake, before any command.
        assert await transport.execute(("GET", "menu")) == b"pepperoni"
        assert len(ready) == 2
        assert ready[1] != ready[0]
        admin.set("menu", "quattro formaggi")
        for _ in range(100):
            if len(pushes) == 2:
                break
            await asyncio.sleep(0.01)
        assert pushes[1] == [b"invalidate", [b"menu"]]
        assert b"flags=t" in admin.execute_command("CLIENT", "LIST") or any(
            "t" in c.get("flags", "") for c in admin.client_list() if c.get("name") == "tracked"
        )
    finally:
        admin.close()

    # A handler that raises is logged and does not break the connection.
    def broken(_: list[Any]) -> None:
        raise RuntimeError("handler bug")

    transport.add_push_handler(broken)
    transport.remove_session_hook(hook)
    transport.remove_push_handler(pushes.append)
    await transport.execute(("GET", "menu"))
    admin = redis.Redis(host=server.host, port=server.port)
    try:
        admin.set("menu", "diavola")
    finally:
        admin.close()
    await asyncio.sleep(0.1)
    assert await transport.execute(("ECHO", "still fine")) == b"still fine"
    assert len(pushes) == 2


async def test_a_refused_session_hook_closes_the_connection(server: RedisServer, make_transport: MakeTransport) -> None:
    transport = make_transport(server.url + "?protocol=3")
    await transport.execute(("PING",))
    hook = transport.add_session_hook([("CLIENT", "TRACKING", "maybe")])
    try:
        result: Any = await transport.execute(("PING",))
    except CacheException as exc:
        result = exc
    # Queued behind the hook on the open connection: answered, or failed with it.
    assert result == b"PONG" or isinstance(result, CacheUnavailableError), result
    await asyncio.sleep(0.05)
    assert transport.pool_stats().created_connections == 0  # the refusal closed it
    # Every later connect attempt runs the hook in its handshake and is refused, not sent.
    with pytest.raises(CacheCommandError, match="TRACKING") as info:
        await transport.execute(("PING",))
    assert info.value.delivery is Delivery.NOT_SENT
    transport.remove_session_hook(hook)
    loop = asyncio.get_running_loop()
    for _ in range(100):  # bounded: the reconnect backoff is at most a second
        try:
            assert await transport.execute(("PING",), loop.time() + 2) == b"PONG"
            break
        except CacheCommandError:
            await asyncio.sleep(0.02)
    assert transport.pool_stats().created_connections == 1
