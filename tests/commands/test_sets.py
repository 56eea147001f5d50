"""Contract: set commands and set algebra."""

from __future__ import annotations

import pytest

from neuroglia.data.redis import CacheCommandError, RedisRepository


async def test_sadd_srem_smembers(backend: RedisRepository) -> None:
    assert await backend.sadd_async("s", "a", "b", "a") == 2
    assert await backend.sadd_async("s", "b", "c") == 1
    assert await backend.smembers_async("s") == {"a", "b", "c"}
    assert await backend.srem_async("s", "a", "missing") == 1
    assert await backend.smembers_async("s") == {"b", "c"}
    assert await backend.smembers_async("missing") == set()


async def test_sadd_with_a_list_of_members(backend: RedisRepository) -> None:
    assert await backend.sadd_async("s", ["x", "y", 1]) == 3
    assert await backend.smembers_async("s") == {"x", "y", "1"}


async def test_sismember_scard(backend: RedisRepository) -> None:
    await backend.sadd_async("s", "a", "b")
    assert await backend.sismember_async("s", "a") is True
    assert await backend.sismember_async("s", "z") is False
    assert await backend.scard_async("s") == 2
    assert await backend.scard_async("missing") == 0


async def test_spop_and_srandmember(backend: RedisRepository) -> None:
    await backend.sadd_async("s", "a", "b", "c")
    picked = await backend.srandmember_async("s")
    assert picked in {"a", "b", "c"}
    assert await backend.scard_async("s") == 3
    popped = await backend.spop_async("s")
    assert popped in {"a", "b", "c"}
    assert await backend.sismember_async("s", popped) is False
    assert await backend.scard_async("s") == 2
    assert await backend.spop_async("missing") is None
    assert await backend.srandmember_async("missing") is None


async def fill(backend: RedisRepository) -> None:
    await backend.sadd_async("vip", "c1", "c2", "c3")
    await backend.sadd_async("vegetarian", "c2", "c3", "c4")
    await backend.sadd_async("weekday", "c3", "c5")


async def test_sinter_sunion_sdiff(backend: RedisRepository) -> None:
    await fill(backend)
    assert await backend.sinter_async(["vip", "vegetarian"]) == {"c2", "c3"}
    assert await backend.sinter_async("vip", "vegetarian", "weekday") == {"c3"}
    assert await backend.sunion_async(["vip", "weekday"]) == {"c1", "c2", "c3", "c5"}
    assert await backend.sdiff_async(["vip", "vegetarian"]) == {"c1"}
    assert await backend.sdiff_async("vegetarian", "vip", "weekday") == {"c4"}
    assert await backend.sinter_async(["vip", "missing"]) == set()
    assert await backend.sunion_async(["missing"]) == set()


async def test_store_forms(backend: RedisRepository, backend_kind: str) -> None:
    await fill(backend)
    if backend_kind == "cluster":
        # The sets are in different hash slots: a *STORE form cannot be split,
        # it is refused before anything is sent (docs/scale-out.md).
        stores = (
            lambda: backend.sinterstore_async("both", ["vip", "vegetarian"]),
            lambda: backend.sunionstore_async("campaign", ["vip", "vegetarian", "weekday"]),
            lambda: backend.sdiffstore_async("only_vip", "vip", "vegetarian"),
        )
        for store in stores:
            with pytest.raises(CacheCommandError, match=r"different hash slots.*\{order:42\}"):
                await store()
        assert await backend.exists_many_async(["both", "campaign", "only_vip"]) == 0
        return
    assert await backend.sinterstore_async("both", ["vip", "vegetarian"]) == 2
    assert await backend.smembers_async("both") == {"c2", "c3"}
    assert await backend.sunionstore_async("campaign", ["vip", "vegetarian", "weekday"]) == 5
    assert await backend.smembers_async("campaign") == {"c1", "c2", "c3", "c4", "c5"}
    assert await backend.sdiffstore_async("only_vip", "vip", "vegetarian") == 1
    assert await backend.smembers_async("only_vip") == {"c1"}
    # Storing an empty result removes the destination.
    assert await backend.sinterstore_async("both", ["vip", "missing"]) == 0
    assert await backend.exists_async("both") is False
