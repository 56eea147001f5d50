"""Bad input: each gives a clear error (type and message) and nothing is written."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from neuroglia.data.redis import (
    CacheCommandError,
    CacheException,
    ConfigurationError,
    InvalidArgumentError,
    RedisConfig,
    RedisRepository,
    SerializationError,
    escape_pattern,
)


async def assert_empty(repo: RedisRepository) -> None:
    assert await repo.dbsize() == 0, "a refused command must not write anything"


# -- keys ------------------------------------------------------------------------


async def test_empty_key(backend: RedisRepository) -> None:
    with pytest.raises(InvalidArgumentError, match="key must not be empty"):
        await backend.set_async("", "v")
    with pytest.raises(InvalidArgumentError, match="key must not be empty"):
        await backend.set_async(b"", "v")
    with pytest.raises(InvalidArgumentError, match="key must not be empty"):
        await backend.hset_async("", "f", "v")
    with pytest.raises(InvalidArgumentError, match="key must not be empty"):
        await backend.get_async("")
    await assert_empty(backend)


@pytest.mark.parametrize("key", [123, 1.5, None, ["a"], ("a",), object()], ids=repr)
async def test_non_string_key(backend: RedisRepository, key: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="key must be str or bytes") as info:
        await backend.set_async(key, "v")
    assert type(key).__name__ in str(info.value)
    await assert_empty(backend)
    assert await backend.exists_async(str(key)) is False


async def test_a_bad_key_among_many_writes_nothing(backend: RedisRepository) -> None:
    with pytest.raises(InvalidArgumentError, match="key must be str or bytes"):
        await backend.set_many_async({"good": "1", 7: "2"})  # type: ignore[dict-item]
    with pytest.raises(InvalidArgumentError, match="key must not be empty"):
        await backend.delete_async("good", "")
    await assert_empty(backend)


async def test_bad_input_is_also_a_value_error_and_a_cache_exception(backend: RedisRepository) -> None:
    with pytest.raises(ValueError, match="empty"):
        await backend.set_async("", "v")
    with pytest.raises(CacheException):
        await backend.set_async("", "v")


# -- values ----------------------------------------------------------------------


async def test_none_value(backend: RedisRepository) -> None:
    with pytest.raises(SerializationError, match="None"):
        await backend.set_async("k", None)  # type: ignore[arg-type]
    with pytest.raises(SerializationError, match="None"):
        await backend.set_object_async("k", None)
    with pytest.raises(SerializationError, match="None"):
        await backend.hset_async("h", {"f": None})  # type: ignore[dict-item]
    with pytest.raises(SerializationError, match="None"):
        await backend.set_many_async({"a": "1", "b": None})  # type: ignore[dict-item]
    await assert_empty(backend)
    assert await backend.exists_async("k") is False
    assert await backend.exists_async("a") is False


@pytest.mark.parametrize(
    ("value", "type_name"),
    [({"name": "Margherita"}, "dict"), (["a"], "list"), ({1, 2}, "set"), (True, "bool"), (object(), "object")],
    ids=["dict", "list", "set", "bool", "object"],
)
async def test_unsupported_value_types(backend: RedisRepository, value: Any, type_name: str) -> None:
    with pytest.raises(SerializationError, match=type_name) as info:
        await backend.set_async("k", value)
    assert "set_object_async" in str(info.value) or "'1'/'0'" in str(info.value)
    assert await backend.exists_async("k") is False
    await assert_empty(backend)


async def test_non_finite_float(backend: RedisRepository) -> None:
    with pytest.raises(SerializationError, match="finite"):
        await backend.set_async("k", float("nan"))
    assert await backend.exists_async("k") is False


async def test_value_the_strategy_cannot_serialize(backend: RedisRepository) -> None:
    class Oven:
        temperature = 450

    with pytest.raises(SerializationError, match="json") as info:
        await backend.set_object_async("oven", Oven())
    assert "Oven" in str(info.value)
    with pytest.raises(SerializationError, match="json"):
        await backend.set_object_async("nested", {"oven": Oven()})
    assert await backend.exists_async("oven") is False
    assert await backend.exists_async("nested") is False


# -- wrong types -------------------------------------------------------------------


async def test_wrongtype_leaves_the_hash_intact(backend: RedisRepository) -> None:
    await backend.hset_async("session", {"customer_id": "c1", "cart": "[]"})
    with pytest.raises(CacheCommandError, match="WRONGTYPE") as info:
        await backend.lpush_async("session", "oops")
    assert "LPUSH" in str(info.value)
    with pytest.raises(CacheCommandError, match="WRONGTYPE"):
        await backend.get_async("session")
    with pytest.raises(CacheCommandError, match="WRONGTYPE"):
        await backend.sadd_async("session", "m")
    with pytest.raises(CacheCommandError, match="WRONGTYPE"):
        await backend.zadd_async("session", {"m": 1})
    assert await backend.type_async("session") == "hash"
    assert await backend.hgetall_async("session") == {"customer_id": "c1", "cart": "[]"}


# -- URLs and settings ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "field", "problem"),
    [
        ("localhost:6379", "url", "scheme"),
        ("http://localhost:6379/0", "url", "unsupported scheme 'http'"),
        ("redis://localhost:notaport/0", "url", "malformed URL"),
        ("redis://localhost:99999/0", "url", "malformed URL"),
        ("redis://localhost:6379/pizza", "db", "database number"),
        ("redis://localhost:6379/1?db=2", "db", "disagree"),
        ("redis://:6379/0", "url", "missing host"),
        ("redis://localhost:6379/0?colour=red", "url", "unknown query parameter 'colour'"),
        ("unix://", "url", "socket path"),
    ],
)
def test_malformed_urls(url: str, field: str, problem: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        RedisConfig(url=url)
    message = str(info.value)
    assert message.startswith(f"{field}:"), message
    assert problem in message


def test_malformed_url_in_host() -> None:
    with pytest.raises(ConfigurationError, match="unsupported scheme"):
        RedisConfig(host="ftp://localhost:6379")


# -- expirations ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "expiration",
    [0, -1, -0.5, 0.0001, timedelta(0), timedelta(seconds=-5), timedelta(microseconds=10)],
    ids=repr,
)
async def test_zero_or_negative_ttl_on_set(backend: RedisRepository, expiration: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="expiration must be at least 1 millisecond"):
        await backend.set_async("k", "v", expiration=expiration)
    with pytest.raises(InvalidArgumentError, match="expiration"):
        await backend.set_many_async({"a": "1"}, expiration=expiration)
    with pytest.raises(InvalidArgumentError, match="expiration"):
        await backend.set_object_async("o", {"v": 1}, expiration=expiration)
    await assert_empty(backend)


@pytest.mark.parametrize("expiration", [0, -10, timedelta(0), timedelta(days=-1)], ids=repr)
async def test_zero_or_negative_ttl_on_expire_leaves_the_key(backend: RedisRepository, expiration: Any) -> None:
    await backend.set_async("k", "v")
    with pytest.raises(InvalidArgumentError, match="expiration must be at least 1 millisecond"):
        await backend.expire_async("k", expiration)
    # Redis would delete the key on a non-positive TTL; refusing keeps it.
    assert await backend.get_async("k") == "v"
    assert await backend.ttl_async("k") == -1


@pytest.mark.parametrize("expiration", ["60", None, float("inf"), True], ids=repr)
async def test_expiration_of_the_wrong_type(backend: RedisRepository, expiration: Any) -> None:
    await backend.set_async("k", "v")
    with pytest.raises(InvalidArgumentError, match="expiration"):
        await backend.expire_async("k", expiration)
    assert await backend.ttl_async("k") == -1


async def test_expiration_with_keepttl(backend: RedisRepository) -> None:
    with pytest.raises(InvalidArgumentError, match="keepttl"):
        await backend.set_async("k", "v", expiration=10, keepttl=True)
    await assert_empty(backend)


# -- contradictory flags ---------------------------------------------------------------


async def test_nx_and_xx_together(backend: RedisRepository) -> None:
    with pytest.raises(InvalidArgumentError, match="nx=True and xx=True"):
        await backend.set_async("k", "v", nx=True, xx=True)
    with pytest.raises(InvalidArgumentError, match="nx=True and xx=True"):
        await backend.set_object_async("k", {"v": 1}, nx=True, xx=True)
    assert await backend.exists_async("k") is False
    await backend.set_async("e", "v")
    with pytest.raises(InvalidArgumentError, match="contradict"):
        await backend.expire_async("e", 10, nx=True, xx=True)
    assert await backend.ttl_async("e") == -1


# -- pattern deletion ----------------------------------------------------------------------


async def test_pattern_delete_with_glob_characters_in_an_escaped_part(backend: RedisRepository) -> None:
    # A customer id full of glob characters, escaped, must match only itself:
    # no other customer's data may be deleted.
    await backend.set_many_async(
        {
            "orders:alice:1": "a",
            "orders:bob:1": "b",
            "orders:[ab]*:1": "odd",
        }
    )
    hostile = "*"
    assert await backend.delete_pattern_async(f"orders:{escape_pattern(hostile)}:*") == 0
    assert await backend.dbsize() == 3
    hostile = "[ab]*"
    assert await backend.delete_pattern_async(f"orders:{escape_pattern(hostile)}:*") == 1
    assert await backend.get_many_async(["orders:alice:1", "orders:bob:1", "orders:[ab]*:1"]) == {
        "orders:alice:1": "a",
        "orders:bob:1": "b",
        "orders:[ab]*:1": None,
    }


@pytest.mark.parametrize("part", [None, 42, b"bytes"], ids=repr)
def test_escape_pattern_refuses_non_str(part: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="escape_pattern expects a str"):
        escape_pattern(part)


@pytest.mark.parametrize("pattern", ["", None, 5], ids=repr)
async def test_pattern_delete_refuses_a_bad_pattern(backend: RedisRepository, pattern: Any) -> None:
    await backend.set_async("keep", "v")
    with pytest.raises(InvalidArgumentError, match="pattern must be a non-empty str"):
        await backend.delete_pattern_async(pattern)
    assert await backend.get_async("keep") == "v"


@pytest.mark.parametrize("amount", [None, "abc", "1.5", float("nan"), float("inf"), True], ids=repr)
async def test_bad_float_increments(backend: RedisRepository, amount: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="amount must be a finite number"):
        await backend.incrbyfloat_async("f", amount)
    with pytest.raises(InvalidArgumentError, match="amount must be a finite number"):
        await backend.hincrbyfloat_async("h", "f", amount)
    await assert_empty(backend)


@pytest.mark.parametrize("amount", [None, "2", 1.5, False], ids=repr)
async def test_bad_int_increments(backend: RedisRepository, amount: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="amount must be an int"):
        await backend.incrby_async("n", amount)
    with pytest.raises(InvalidArgumentError, match="amount must be an int"):
        await backend.hincrby_async("h", "n", amount)
    await assert_empty(backend)
