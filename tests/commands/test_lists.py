"""Contract: list commands, including blocking pops with a timeout."""

from __future__ import annotations

import asyncio

import pytest

from neuroglia.data.redis import CacheCommandError, InvalidArgumentError, RedisRepository


async def test_push_on_both_ends_and_lrange(backend: RedisRepository) -> None:
    assert await backend.rpush_async("l", "b") == 1
    assert await backend.rpush_async("l", "c", "d") == 3
    assert await backend.lpush_async("l", "a") == 4
    assert await backend.lpush_async("l", "y", "z") == 6  # the last value ends up first
    assert await backend.lrange_async("l") == ["z", "y", "a", "b", "c", "d"]
    assert await backend.lrange_async("l", 1, 2) == ["y", "a"]
    assert await backend.lrange_async("l", -2, -1) == ["c", "d"]
    assert await backend.lrange_async("missing") == []


async def test_push_a_list_of_values(backend: RedisRepository) -> None:
    assert await backend.rpush_async("l", ["a", "b", 3]) == 3
    assert await backend.lrange_async("l", 0, -1) == ["a", "b", "3"]


async def test_pops(backend: RedisRepository) -> None:
    await backend.rpush_async("l", "a", "b", "c")
    assert await backend.lpop_async("l") == "a"
    assert await backend.rpop_async("l") == "c"
    assert await backend.lpop_async("l") == "b"
    assert await backend.lpop_async("l") is None
    assert await backend.rpop_async("l") is None


async def test_pop_many(backend: RedisRepository) -> None:
    await backend.rpush_async("l", "a", "b", "c", "d", "e")
    assert await backend.lpop_many_async("l", 2) == ["a", "b"]
    assert await backend.rpop_many_async("l", 2) == ["e", "d"]
    assert await backend.lpop_many_async("l", 5) == ["c"]
    assert await backend.lpop_many_async("l", 3) == []
    assert await backend.rpop_many_async("l", 3) == []
    with pytest.raises(InvalidArgumentError, match="count"):
        await backend.lpop_many_async("l", 0)


async def test_lindex_llen(backend: RedisRepository) -> None:
    await backend.rpush_async("l", "a", "b", "c")
    assert await backend.lindex_async("l", 0) == "a"
    assert await backend.lindex_async("l", -1) == "c"
    assert await backend.lindex_async("l", 10) is None
    assert await backend.llen_async("l") == 3
    assert await backend.llen_async("missing") == 0


async def test_ltrim(backend: RedisRepository) -> None:
    await backend.rpush_async("l", *[str(i) for i in range(10)])
    assert await backend.ltrim_async("l", 0, 2) is True
    assert await backend.lrange_async("l") == ["0", "1", "2"]
    assert await backend.ltrim_async("l", -1, -1) is True
    assert await backend.lrange_async("l") == ["2"]


async def test_lrem(backend: RedisRepository) -> None:
    await backend.rpush_async("l", "x", "a", "x", "b", "x")
    assert await backend.lrem_async("l", 1, "x") == 1
    assert await backend.lrange_async("l") == ["a", "x", "b", "x"]
    assert await backend.lrem_async("l", -1, "x") == 1
    assert await backend.lrange_async("l") == ["a", "x", "b"]
    assert await backend.lrem_async("l", 0, "x") == 1
    assert await backend.lrange_async("l") == ["a", "b"]
    assert await backend.lrem_async("l", 0, "nope") == 0


async def test_lset(backend: RedisRepository) -> None:
    await backend.rpush_async("l", "a", "b")
    assert await backend.lset_async("l", 1, "B") is True
    assert await backend.lrange_async("l") == ["a", "B"]
    with pytest.raises(CacheCommandError, match="index out of range"):
        await backend.lset_async("l", 5, "x")
    assert await backend.lrange_async("l") == ["a", "B"]


async def test_lmove(backend: RedisRepository) -> None:
    await backend.rpush_async("{t}pending", "o1", "o2")
    assert await backend.lmove_async("{t}pending", "{t}processing") == "o1"
    assert await backend.lmove_async("{t}pending", "{t}processing", "RIGHT", "LEFT") == "o2"
    assert await backend.lrange_async("{t}processing") == ["o2", "o1"]
    assert await backend.lmove_async("{t}pending", "{t}processing") is None
    assert await backend.exists_async("{t}pending") is False
    with pytest.raises(InvalidArgumentError, match="wherefrom"):
        await backend.lmove_async("{t}processing", "{t}x", "UP", "LEFT")


async def test_blpop_returns_an_available_value_at_once(backend: RedisRepository) -> None:
    await backend.rpush_async("{t}q2", "first", "second")
    assert await backend.blpop_async(["{t}q1", "{t}q2"], timeout=1) == ("{t}q2", "first")
    assert await backend.brpop_async("{t}q2", timeout=1) == ("{t}q2", "second")


async def test_blpop_waits_for_a_push(backend: RedisRepository) -> None:
    async def push_later() -> None:
        await asyncio.sleep(0.05)
        await backend.rpush_async("q", "late")

    pusher = asyncio.create_task(push_later())
    try:
        assert await backend.blpop_async("q", timeout=5) == ("q", "late")
    finally:
        await pusher
    assert await backend.llen_async("q") == 0


async def test_brpop_waits_for_a_push(backend: RedisRepository) -> None:
    async def push_later() -> None:
        await asyncio.sleep(0.05)
        await backend.lpush_async("q", "a", "b")

    pusher = asyncio.create_task(push_later())
    try:
        assert await backend.brpop_async("q", timeout=5) == ("q", "a")
    finally:
        await pusher
    assert await backend.lrange_async("q") == ["b"]


async def test_blocking_pops_return_none_after_the_timeout(backend: RedisRepository) -> None:
    assert await backend.blpop_async("{t}empty", timeout=0.1) is None
    assert await backend.brpop_async(["{t}empty", "{t}also-empty"], timeout=0.1) is None
    # The connection that blocked is usable afterwards.
    await backend.rpush_async("{t}empty", "now")
    assert await backend.lpop_async("{t}empty") == "now"


async def test_blocking_pop_rejects_a_negative_timeout(backend: RedisRepository) -> None:
    with pytest.raises(InvalidArgumentError, match="timeout"):
        await backend.blpop_async("q", timeout=-1)


async def test_timeout_zero_waits_until_a_push(backend: RedisRepository) -> None:
    # timeout=0 means "wait forever": the pop must outlast the transport's
    # one-second read margin, then return the value pushed meanwhile.
    async def push_later() -> None:
        await asyncio.sleep(1.2)
        await backend.rpush_async("q", "patient")

    pusher = asyncio.create_task(push_later())
    try:
        assert await asyncio.wait_for(backend.blpop_async("q", timeout=0), timeout=10) == ("q", "patient")
    finally:
        await pusher
