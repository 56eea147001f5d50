"""Batches: each command's outcome on its own, bad input refused when queued, no blocking pops inside.

Runs on memory:// and on a private redis-server (``backend``).
"""

from __future__ import annotations

import pytest

from neuroglia.data.redis import (
    CacheCommandError,
    InvalidArgumentError,
    RedisRepository,
    SerializationError,
)


async def written_by_msgpack(repo: RedisRepository, key: str) -> None:
    """A typed value another strategy wrote: a JSON reader refuses to decode it."""
    await repo.set_async(key, b"\xc1NG\x01\x00\x07msgpack" + b"\x81\xa1a\x01")


@pytest.mark.parametrize("transaction", [False, True], ids=["pipeline", "transaction"])
async def test_a_reply_that_fails_to_decode_is_that_command_s_outcome_only(
    backend: RedisRepository, transaction: bool
) -> None:
    await written_by_msgpack(backend, "{t}foreign")
    await backend.set_object_async("{t}menu", {"name": "Diavola"})
    pipe = backend.pipeline(transaction=transaction)
    pipe.set_async("{t}a", "1").get_object_async("{t}foreign").incr_async("{t}n").get_object_async("{t}menu").get_async(
        "{t}a"
    )
    results = await pipe.execute(raise_on_error=False)
    assert results[0] is True
    assert isinstance(results[1], SerializationError)
    assert "msgpack" in str(results[1])
    assert results[2:] == [1, {"name": "Diavola"}, "1"]
    # Everything else was applied.
    assert await backend.get_async("{t}n") == "1"

    # With raise_on_error (the default) the first failure is raised after the
    # whole batch ran, and every outcome is still there.
    pipe = backend.pipeline(transaction=transaction)
    pipe.incr_async("{t}n").get_object_async("{t}foreign").incr_async("{t}n")
    with pytest.raises(SerializationError, match="msgpack"):
        await pipe.execute()
    assert pipe.results is not None
    assert pipe.results[0] == 2
    assert isinstance(pipe.results[1], SerializationError)
    assert pipe.results[2] == 3
    assert await backend.get_async("{t}n") == "3"


async def test_a_server_error_is_that_command_s_outcome_only(backend: RedisRepository) -> None:
    await backend.set_async("text", "not a list")
    pipe = backend.pipeline()
    pipe.incr_async("n").lpush_async("text", "x").incr_async("n")
    results = await pipe.execute(raise_on_error=False)
    assert results[0] == 1
    assert isinstance(results[1], CacheCommandError)
    assert "WRONGTYPE" in str(results[1])
    assert results[2] == 2


@pytest.mark.parametrize("transaction", [False, True], ids=["pipeline", "transaction"])
@pytest.mark.parametrize("method", ["blpop_async", "brpop_async"])
async def test_blocking_pops_cannot_be_queued(backend: RedisRepository, transaction: bool, method: str) -> None:
    """A blocking pop would hold the batch's connection (or, in MULTI, not block at all): refused when queued."""
    pipe = backend.pipeline(transaction=transaction)
    pipe.rpush_async("queue", "job-1")
    with pytest.raises(InvalidArgumentError, match=f"{method} cannot be queued") as info:
        getattr(pipe, method)("queue", 5)
    assert "lpop_async" in str(info.value) or "rpop_async" in str(info.value)
    assert len(pipe) == 1, "nothing was queued for the refused call"
    assert await pipe.execute() == [1]
    # The repository's own blocking pop, bounded by its own timeout, still works.
    assert await getattr(backend, method)("queue", 1) == ("queue", "job-1")


@pytest.mark.parametrize("transaction", [False, True], ids=["pipeline", "transaction"])
async def test_a_lone_surrogate_is_refused_when_queued(backend: RedisRepository, transaction: bool) -> None:
    pipe = backend.pipeline(transaction=transaction)
    pipe.set_async("{t}before", "1")
    for queue in (
        lambda: pipe.set_async("{t}k", "\udfff"),
        lambda: pipe.set_async("surrogate:\ud800", "v"),
        lambda: pipe.hset_async("{t}h", {"\ud83d": "v"}),
        lambda: pipe.rpush_async("{t}l", "{t}ok", "\ud800"),
        lambda: pipe.zadd_async("{t}z", {"\ud800": 1}),
        lambda: pipe.get_many_async(["{t}ok", "\udc00"]),
    ):
        with pytest.raises(InvalidArgumentError, match="not valid Unicode text"):
            queue()
    pipe.set_async("{t}after", "2")
    assert len(pipe) == 2
    assert await pipe.execute() == [True, True]
    assert await backend.get_many_async(["{t}before", "{t}after"]) == {"{t}before": "1", "{t}after": "2"}
    assert await backend.dbsize() == 2
