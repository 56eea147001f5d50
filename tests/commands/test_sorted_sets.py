"""Contract: sorted set commands: scores, ranks, ranges and removal."""

from __future__ import annotations

import pytest

from neuroglia.data.redis import InvalidArgumentError, RedisRepository

SCORES = {"margherita": 10, "pepperoni": 30, "hawaiian": 5, "diavola": 20, "marinara": 1}


async def filled(backend: RedisRepository) -> RedisRepository:
    assert await backend.zadd_async("z", SCORES) == 5
    return backend


async def test_zadd_and_zscore(backend: RedisRepository) -> None:
    await filled(backend)
    assert await backend.zscore_async("z", "pepperoni") == 30.0
    assert await backend.zscore_async("z", "missing") is None
    assert await backend.zadd_async("z", {"pepperoni": 31}) == 0  # updated, not added
    assert await backend.zscore_async("z", "pepperoni") == 31.0
    assert await backend.zadd_async("z", {"float": 2.5}) == 1
    assert await backend.zscore_async("z", "float") == 2.5


async def test_zadd_nx_xx(backend: RedisRepository) -> None:
    await backend.zadd_async("z", {"a": 1})
    assert await backend.zadd_async("z", {"a": 5, "b": 2}, nx=True) == 1
    assert await backend.zscore_async("z", "a") == 1.0
    assert await backend.zadd_async("z", {"a": 7, "c": 3}, xx=True) == 0
    assert await backend.zscore_async("z", "a") == 7.0
    assert await backend.zscore_async("z", "c") is None


async def test_zadd_gt_lt_ch(backend: RedisRepository) -> None:
    await backend.zadd_async("z", {"a": 10, "b": 10})
    assert await backend.zadd_async("z", {"a": 5, "b": 15}, gt=True, ch=True) == 1
    assert await backend.zscore_async("z", "a") == 10.0
    assert await backend.zscore_async("z", "b") == 15.0
    assert await backend.zadd_async("z", {"a": 5, "b": 20}, lt=True, ch=True) == 1
    assert await backend.zscore_async("z", "a") == 5.0
    assert await backend.zscore_async("z", "b") == 15.0
    # Without ch the count is of new members only.
    assert await backend.zadd_async("z", {"a": 1, "new": 1}, lt=True) == 1
    assert await backend.zadd_async("z", {"a": 2}, xx=True, ch=True) == 1


async def test_zadd_contradictory_flags(backend: RedisRepository) -> None:
    with pytest.raises(InvalidArgumentError, match="nx"):
        await backend.zadd_async("z", {"a": 1}, nx=True, xx=True)
    with pytest.raises(InvalidArgumentError, match="gt"):
        await backend.zadd_async("z", {"a": 1}, gt=True, lt=True)
    assert await backend.exists_async("z") is False


async def test_zincrby(backend: RedisRepository) -> None:
    assert await backend.zincrby_async("z", 1, "margherita") == 1.0
    assert await backend.zincrby_async("z", 2.5, "margherita") == 3.5
    assert await backend.zincrby_async("z", -1, "margherita") == 2.5


async def test_zrange_ascending_and_desc(backend: RedisRepository) -> None:
    await filled(backend)
    assert await backend.zrange_async("z", 0, -1) == ["marinara", "hawaiian", "margherita", "diavola", "pepperoni"]
    assert await backend.zrange_async("z", 0, 1) == ["marinara", "hawaiian"]
    assert await backend.zrange_async("z", 0, 0, desc=True) == ["pepperoni"]
    assert await backend.zrange_async("z", 0, 1, desc=True, withscores=True) == [("pepperoni", 30.0), ("diavola", 20.0)]
    assert await backend.zrange_async("z", -1, -1, withscores=True) == [("pepperoni", 30.0)]
    assert await backend.zrange_async("missing", 0, -1) == []


async def test_zrevrange(backend: RedisRepository) -> None:
    await filled(backend)
    assert await backend.zrevrange_async("z", 0, 2) == ["pepperoni", "diavola", "margherita"]
    top = await backend.zrevrange_async("z", 0, 1, withscores=True)
    assert top == [("pepperoni", 30.0), ("diavola", 20.0)]
    assert all(isinstance(score, float) for _, score in top)


async def test_zrangebyscore(backend: RedisRepository) -> None:
    await filled(backend)
    assert await backend.zrangebyscore_async("z", 5, 20) == ["hawaiian", "margherita", "diavola"]
    assert await backend.zrangebyscore_async("z", "(5", "(20") == ["margherita"]
    assert await backend.zrangebyscore_async("z", "-inf", "+inf") == [
        "marinara", "hawaiian", "margherita", "diavola", "pepperoni",
    ]  # fmt: skip
    assert await backend.zrangebyscore_async("z", float("-inf"), 5, withscores=True) == [
        ("marinara", 1.0),
        ("hawaiian", 5.0),
    ]
    assert await backend.zrangebyscore_async("z", 0, 100, offset=1, count=2) == ["hawaiian", "margherita"]
    assert await backend.zrangebyscore_async("z", 100, 200) == []


async def test_zrevrangebyscore(backend: RedisRepository) -> None:
    await filled(backend)
    assert await backend.zrevrangebyscore_async("z", 20, 5) == ["diavola", "margherita", "hawaiian"]
    assert await backend.zrevrangebyscore_async("z", "(20", "(5") == ["margherita"]
    assert await backend.zrevrangebyscore_async("z", "+inf", "-inf", offset=0, count=2, withscores=True) == [
        ("pepperoni", 30.0),
        ("diavola", 20.0),
    ]
    with pytest.raises(InvalidArgumentError, match="offset and count"):
        await backend.zrevrangebyscore_async("z", 10, 0, offset=1)


async def test_zrem(backend: RedisRepository) -> None:
    await filled(backend)
    assert await backend.zrem_async("z", "hawaiian", "missing") == 1
    assert await backend.zrem_async("z", "marinara", "diavola") == 2
    assert await backend.zrange_async("z", 0, -1) == ["margherita", "pepperoni"]


async def test_zremrangebyrank_keeps_the_top(backend: RedisRepository) -> None:
    await filled(backend)
    assert await backend.zremrangebyrank_async("z", 0, -3) == 3  # keep the top 2
    assert await backend.zrevrange_async("z", 0, -1) == ["pepperoni", "diavola"]
    assert await backend.zremrangebyrank_async("z", 0, -51) == 0


async def test_zremrangebyscore(backend: RedisRepository) -> None:
    await filled(backend)
    assert await backend.zremrangebyscore_async("z", "-inf", "(10") == 2
    assert await backend.zrange_async("z", 0, -1) == ["margherita", "diavola", "pepperoni"]
    assert await backend.zremrangebyscore_async("z", 20, 30) == 2
    assert await backend.zrange_async("z", 0, -1) == ["margherita"]


async def test_ranks_and_counts(backend: RedisRepository) -> None:
    await filled(backend)
    assert await backend.zrank_async("z", "marinara") == 0
    assert await backend.zrank_async("z", "pepperoni") == 4
    assert await backend.zrevrank_async("z", "pepperoni") == 0
    assert await backend.zrank_async("z", "missing") is None
    assert await backend.zrevrank_async("z", "missing") is None
    assert await backend.zcard_async("z") == 5
    assert await backend.zcard_async("missing") == 0
    assert await backend.zcount_async("z", 5, 20) == 3
    assert await backend.zcount_async("z", "(5", "+inf") == 3


async def test_zpopmax_zpopmin(backend: RedisRepository) -> None:
    await filled(backend)
    assert await backend.zpopmax_async("z") == [("pepperoni", 30.0)]
    assert await backend.zpopmin_async("z", 2) == [("marinara", 1.0), ("hawaiian", 5.0)]
    assert await backend.zrange_async("z", 0, -1) == ["margherita", "diavola"]
    assert await backend.zpopmax_async("missing") == []


async def test_bad_score_bounds(backend: RedisRepository) -> None:
    with pytest.raises(InvalidArgumentError, match="min"):
        await backend.zrangebyscore_async("z", "lots", 5)
    with pytest.raises(InvalidArgumentError, match="score"):
        await backend.zadd_async("z", {"a": "high"})  # type: ignore[dict-item]
    assert await backend.exists_async("z") is False
