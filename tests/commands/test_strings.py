"""Contract: keys and strings, the same assertions on memory:// and a real server."""

from __future__ import annotations

import asyncio
import enum
from datetime import timedelta

import pytest

from neuroglia.data.redis import CacheCommandError, RedisRepository


async def wait_until_gone(repo: RedisRepository, key: str, *, limit: float = 2.0) -> bool:
    """Poll (bounded) until ``key`` no longer exists; returns whether it went."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while loop.time() < deadline:
        if not await repo.exists_async(key):
            return True
        await asyncio.sleep(0.02)
    return not await repo.exists_async(key)


async def test_get_missing_key_is_none(backend: RedisRepository) -> None:
    assert await backend.get_async("missing") is None


async def test_set_then_get_returns_str(backend: RedisRepository) -> None:
    assert await backend.set_async("greeting", "ciao") is True
    assert await backend.get_async("greeting") == "ciao"


async def test_set_numbers_come_back_as_text(backend: RedisRepository) -> None:
    await backend.set_async("int", 42)
    await backend.set_async("float", 1.5)
    assert await backend.get_async("int") == "42"
    assert await backend.get_async("float") == "1.5"


async def test_set_overwrites(backend: RedisRepository) -> None:
    await backend.set_async("k", "one")
    await backend.set_async("k", "two")
    assert await backend.get_async("k") == "two"


async def test_set_with_timedelta_expiration(backend: RedisRepository) -> None:
    await backend.set_async(key="menu", value="{}", expiration=timedelta(hours=24))
    ttl = await backend.ttl_async("menu")
    assert 24 * 3600 - 5 <= ttl <= 24 * 3600


async def test_set_with_seconds_expiration(backend: RedisRepository) -> None:
    await backend.set_async("session", "x", 90)
    assert 85 <= await backend.ttl_async("session") <= 90


async def test_set_with_fractional_seconds_uses_milliseconds(backend: RedisRepository) -> None:
    await backend.set_async("short", "x", expiration=2.5)
    pttl = await backend.pttl_async("short")
    assert 2000 < pttl <= 2500


async def test_set_nx_only_writes_missing_keys(backend: RedisRepository) -> None:
    assert await backend.set_async("k", "first", nx=True) is True
    assert await backend.set_async("k", "second", nx=True) is False
    assert await backend.get_async("k") == "first"


async def test_set_xx_only_writes_existing_keys(backend: RedisRepository) -> None:
    assert await backend.set_async("k", "first", xx=True) is False
    assert await backend.exists_async("k") is False
    await backend.set_async("k", "first")
    assert await backend.set_async("k", "second", xx=True) is True
    assert await backend.get_async("k") == "second"


async def test_set_keepttl_keeps_the_expiry(backend: RedisRepository) -> None:
    await backend.set_async("k", "v1", expiration=timedelta(minutes=10))
    await backend.set_async("k", "v2", keepttl=True)
    assert await backend.get_async("k") == "v2"
    assert 590 <= await backend.ttl_async("k") <= 600


async def test_plain_set_clears_the_expiry(backend: RedisRepository) -> None:
    await backend.set_async("k", "v1", expiration=timedelta(minutes=10))
    await backend.set_async("k", "v2")
    assert await backend.ttl_async("k") == -1


async def test_get_many_returns_values_by_key_with_none_for_misses(backend: RedisRepository) -> None:
    await backend.set_async("a", "1")
    await backend.set_async("c", "3")
    assert await backend.get_many_async(["a", "b", "c"]) == {"a": "1", "b": None, "c": "3"}
    assert await backend.get_many_async([]) == {}


async def test_set_many_writes_every_key(backend: RedisRepository) -> None:
    await backend.set_many_async({"a": "1", "b": 2, "c": b"3"})
    assert await backend.get_many_async(["a", "b", "c"]) == {"a": "1", "b": "2", "c": "3"}
    assert await backend.ttl_async("a") == -1


async def test_set_many_with_expiration(backend: RedisRepository) -> None:
    await backend.set_many_async({"a": "1", "b": "2"}, expiration=timedelta(seconds=60))
    assert await backend.get_many_async(["a", "b"]) == {"a": "1", "b": "2"}
    for key in ("a", "b"):
        assert 55 <= await backend.ttl_async(key) <= 60
    await backend.set_many_async({"c": "3"}, expiration=30)
    assert 25 <= await backend.ttl_async("c") <= 30


async def test_delete_one_key(backend: RedisRepository) -> None:
    await backend.set_async("a", "1")
    assert await backend.delete_async("a") == 1
    assert await backend.delete_async("a") == 0
    assert await backend.exists_async("a") is False


async def test_delete_many_keys(backend: RedisRepository) -> None:
    await backend.set_many_async({"a": "1", "b": "2", "c": "3", "keep": "4"})
    assert await backend.delete_async("a", "b", "missing") == 2
    assert await backend.delete_async(["c", "missing"]) == 1
    assert await backend.delete_async([]) == 0
    assert await backend.get_many_async(["a", "b", "c", "keep"]) == {"a": None, "b": None, "c": None, "keep": "4"}


async def test_exists(backend: RedisRepository) -> None:
    assert await backend.exists_async("k") is False
    await backend.set_async("k", "v")
    assert await backend.exists_async("k") is True
    assert await backend.exists_many_async(["k", "nope", "k"]) == 2


async def test_expire_ttl_pttl_persist(backend: RedisRepository) -> None:
    assert await backend.ttl_async("missing") == -2
    assert await backend.pttl_async("missing") == -2
    assert await backend.expire_async("missing", 10) is False
    await backend.set_async("k", "v")
    assert await backend.ttl_async("k") == -1
    assert await backend.pttl_async("k") == -1
    assert await backend.persist_async("k") is False
    assert await backend.expire_async("k", timedelta(minutes=5)) is True
    assert 295 <= await backend.ttl_async("k") <= 300
    assert await backend.expire_async("k", 100) is True
    assert 95_000 < await backend.pttl_async("k") <= 100_000
    assert await backend.persist_async("k") is True
    assert await backend.ttl_async("k") == -1
    assert await backend.get_async("k") == "v"


async def test_expire_flags(backend: RedisRepository) -> None:
    await backend.set_async("k", "v")
    assert await backend.expire_async("k", 100, xx=True) is False
    assert await backend.expire_async("k", 100, nx=True) is True
    assert await backend.expire_async("k", 50, gt=True) is False
    assert await backend.expire_async("k", 200, gt=True) is True
    assert await backend.expire_async("k", 10, lt=True) is True
    assert await backend.ttl_async("k") <= 10


async def test_short_px_expiration_disappears(backend: RedisRepository) -> None:
    await backend.set_async("flash", "x", expiration=timedelta(milliseconds=60))
    assert await backend.get_async("flash") == "x"
    assert 0 < await backend.pttl_async("flash") <= 60
    await asyncio.sleep(0.1)
    assert await wait_until_gone(backend, "flash")
    assert await backend.get_async("flash") is None
    assert await backend.ttl_async("flash") == -2


async def test_expire_async_with_short_timeout_removes_the_key(backend: RedisRepository) -> None:
    await backend.set_async("k", "v")
    assert await backend.expire_async("k", 0.05) is True
    await asyncio.sleep(0.08)
    assert await wait_until_gone(backend, "k")


async def test_incr_decr_family(backend: RedisRepository) -> None:
    assert await backend.incr_async("n") == 1
    assert await backend.incr_async("n") == 2
    assert await backend.incr_async("n", 5) == 7
    assert await backend.incrby_async("n", 10) == 17
    assert await backend.decr_async("n") == 16
    assert await backend.decr_async("n", 6) == 10
    assert await backend.decrby_async("n", 11) == -1
    assert await backend.get_async("n") == "-1"
    assert await backend.decr_async("fresh") == -1


async def test_incrbyfloat(backend: RedisRepository) -> None:
    assert await backend.incrbyfloat_async("f", 1.5) == pytest.approx(1.5)
    assert await backend.incrbyfloat_async("f", 2) == pytest.approx(3.5)
    assert await backend.incrbyfloat_async("f", -0.25) == pytest.approx(3.25)
    result = await backend.incrbyfloat_async("f", 0)
    assert isinstance(result, float)


async def test_incr_of_text_is_a_command_error(backend: RedisRepository) -> None:
    await backend.set_async("word", "pizza")
    with pytest.raises(CacheCommandError, match="not an integer"):
        await backend.incr_async("word")
    assert await backend.get_async("word") == "pizza"


async def test_type(backend: RedisRepository) -> None:
    await backend.set_async("s", "v")
    await backend.hset_async("h", "f", "v")
    await backend.rpush_async("l", "v")
    await backend.sadd_async("st", "v")
    await backend.zadd_async("z", {"v": 1})
    assert await backend.type_async("s") == "string"
    assert await backend.type_async("h") == "hash"
    assert await backend.type_async("l") == "list"
    assert await backend.type_async("st") == "set"
    assert await backend.type_async("z") == "zset"
    assert await backend.type_async("missing") is None


async def test_bytes_keys_work_like_str_keys(backend: RedisRepository) -> None:
    await backend.set_async(b"bkey", "v")
    assert await backend.get_async("bkey") == "v"
    assert await backend.get_async(b"bkey") == "v"


class Section(enum.StrEnum):
    MENU = "menu"


class Size(enum.IntEnum):
    LARGE = 3


async def test_str_and_int_subclasses_are_stored_as_their_plain_values(backend: RedisRepository) -> None:
    await backend.set_async(Section.MENU, Section.MENU)
    await backend.set_async("size", Size.LARGE)
    await backend.hset_async("sizes", Section.MENU, Size.LARGE)
    assert await backend.get_async("menu") == "menu"
    assert await backend.get_async(Section.MENU) == "menu"
    assert await backend.get_async("size") == "3"
    assert await backend.get_many_async([Section.MENU]) == {Section.MENU: "menu"}
    assert await backend.hgetall_async("sizes") == {"menu": "3"}


async def test_bytearray_and_memoryview_values(backend: RedisRepository) -> None:
    await backend.set_async("ba", bytearray(b"abc"))
    await backend.set_async("mv", memoryview(b"xyz"))
    assert await backend.get_many_async(["ba", "mv"]) == {"ba": "abc", "mv": "xyz"}
