"""Contract: hash commands."""

from __future__ import annotations

import pytest

from neuroglia.data.redis import CacheCommandError, InvalidArgumentError, RedisRepository


async def test_hset_with_a_mapping_positionally(backend: RedisRepository) -> None:
    assert await backend.hset_async("h", {"a": "1", "b": "2"}) == 2
    assert await backend.hgetall_async("h") == {"a": "1", "b": "2"}


async def test_hset_field_and_value(backend: RedisRepository) -> None:
    assert await backend.hset_async("h", "a", "1") == 1
    assert await backend.hset_async("h", "a", "2") == 0  # updated, not added
    assert await backend.hget_async("h", "a") == "2"


async def test_hset_mapping_keyword(backend: RedisRepository) -> None:
    assert await backend.hset_async("h", mapping={"a": 1, "b": 2.5}) == 2
    assert await backend.hset_async("h", "c", "3", mapping={"d": "4"}) == 2
    assert await backend.hgetall_async("h") == {"a": "1", "b": "2.5", "c": "3", "d": "4"}


async def test_hset_needs_fields(backend: RedisRepository) -> None:
    with pytest.raises(InvalidArgumentError, match="mapping"):
        await backend.hset_async("h", {})
    with pytest.raises(InvalidArgumentError, match="without a field"):
        await backend.hset_async("h", None, "orphan")
    assert await backend.exists_async("h") is False


async def test_hsetnx(backend: RedisRepository) -> None:
    assert await backend.hsetnx_async("h", "f", "first") is True
    assert await backend.hsetnx_async("h", "f", "second") is False
    assert await backend.hget_async("h", "f") == "first"


async def test_hget_misses(backend: RedisRepository) -> None:
    assert await backend.hget_async("missing", "f") is None
    await backend.hset_async("h", "f", "v")
    assert await backend.hget_async("h", "other") is None


async def test_hgetall_of_missing_key_is_empty(backend: RedisRepository) -> None:
    assert await backend.hgetall_async("missing") == {}


async def test_hmget_in_order_with_none_for_missing(backend: RedisRepository) -> None:
    await backend.hset_async("h", {"a": "1", "b": "2"})
    assert await backend.hmget_async("h", ["b", "x", "a"]) == ["2", None, "1"]
    assert await backend.hmget_async("h", "a", "b") == ["1", "2"]


async def test_hdel(backend: RedisRepository) -> None:
    await backend.hset_async("h", {"a": "1", "b": "2", "c": "3"})
    assert await backend.hdel_async("h", "a", "missing") == 1
    assert await backend.hdel_async("h", "b") == 1
    assert await backend.hgetall_async("h") == {"c": "3"}
    assert await backend.hdel_async("h", "c") == 1
    assert await backend.exists_async("h") is False


async def test_hincrby(backend: RedisRepository) -> None:
    assert await backend.hincrby_async("h", "n") == 1
    assert await backend.hincrby_async("h", "n", 10) == 11
    assert await backend.hincrby_async("h", "n", -12) == -1
    assert await backend.hget_async("h", "n") == "-1"


async def test_hincrbyfloat(backend: RedisRepository) -> None:
    assert await backend.hincrbyfloat_async("h", "x", 0.5) == pytest.approx(0.5)
    assert await backend.hincrbyfloat_async("h", "x", 1.25) == pytest.approx(1.75)


async def test_hincrby_of_text_field_is_a_command_error(backend: RedisRepository) -> None:
    await backend.hset_async("h", "name", "margherita")
    with pytest.raises(CacheCommandError, match="not an integer"):
        await backend.hincrby_async("h", "name")
    assert await backend.hget_async("h", "name") == "margherita"


async def test_hexists_hkeys_hvals_hlen(backend: RedisRepository) -> None:
    await backend.hset_async("h", {"a": "1", "b": "2"})
    assert await backend.hexists_async("h", "a") is True
    assert await backend.hexists_async("h", "z") is False
    assert sorted(await backend.hkeys_async("h")) == ["a", "b"]
    assert sorted(await backend.hvals_async("h")) == ["1", "2"]
    assert await backend.hlen_async("h") == 2
    assert await backend.hlen_async("missing") == 0
    assert await backend.hkeys_async("missing") == []
    assert await backend.hvals_async("missing") == []
