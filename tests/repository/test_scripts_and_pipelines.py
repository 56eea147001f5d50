"""Contract: Lua scripts, pipelines and MULTI/EXEC transactions."""

from __future__ import annotations

import asyncio

import pytest

from neuroglia.data.redis import (
    CacheCommandError,
    InvalidArgumentError,
    Pipeline,
    RedisRepository,
    Script,
    TransactionAbortedError,
    Watch,
)
from tests.support.repositories import RepositoryFactory

COMPARE_AND_SET = """
-- KEYS[1]: the key; ARGV[1]: expected value; ARGV[2]: new value
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[2])
    return 1
end
return 0
"""


# -- scripts -------------------------------------------------------------------


async def test_register_script_runs_and_reruns(backend: RedisRepository) -> None:
    script = backend.register_script(COMPARE_AND_SET)
    assert isinstance(script, Script)
    assert len(script.sha) == 40
    await backend.set_async("k", "old")
    assert await script(keys=["k"], args=["old", "new"]) == 1  # first run: EVAL fallback
    assert await backend.get_async("k") == "new"
    assert await script(keys=["k"], args=["old", "newer"]) == 0  # cached: EVALSHA
    assert await backend.get_async("k") == "new"


async def test_script_keys_get_the_prefix(backend: RedisRepository, prefixed_backend: RedisRepository) -> None:
    script = prefixed_backend.register_script("return redis.call('SET', KEYS[1], ARGV[1])")
    assert await script(keys=["k"], args=["v"]) == "OK"
    assert await backend.get_async("app:k") == "v"


async def test_eval_async_replies(backend: RedisRepository) -> None:
    assert await backend.eval_async("return 42") == 42
    assert await backend.eval_async("return ARGV[1] .. ARGV[2]", args=["piz", "za"]) == "pizza"
    assert await backend.eval_async("return {KEYS[1], ARGV[1], 7}", keys=["k"], args=[1]) == ["k", "1", 7]
    assert await backend.eval_async("return redis.call('GET', KEYS[1])", keys=["missing"]) is None


async def test_script_errors_are_command_errors(backend: RedisRepository) -> None:
    with pytest.raises(CacheCommandError):
        await backend.eval_async("return redis.call('NOPE')")
    with pytest.raises(InvalidArgumentError, match="script"):
        backend.register_script("   ")


# -- pipelines -------------------------------------------------------------------


async def test_pipeline_results_in_order(backend: RedisRepository) -> None:
    pipe = backend.pipeline()
    assert isinstance(pipe, Pipeline)
    pipe.set_async("a", "1")
    pipe.incr_async("n")
    pipe.incr_async("n", 5)
    pipe.get_async("a")
    pipe.get_async("missing")
    pipe.rpush_async("l", "x", "y")
    pipe.lrange_async("l")
    pipe.hset_async("h", {"f": "v"})
    pipe.hgetall_async("h")
    pipe.zadd_async("z", {"m": 2})
    pipe.zrange_async("z", 0, -1, withscores=True)
    assert len(pipe) == 11
    assert await pipe.execute() == [True, 1, 6, "1", None, 2, ["x", "y"], 1, {"f": "v"}, 1, [("m", 2.0)]]
    assert len(pipe) == 0


async def test_pipeline_calls_chain(backend: RedisRepository) -> None:
    results = await backend.pipeline().set_async("a", "1").set_async("b", "2").get_many_async(["a", "b"]).execute()
    assert results == [True, True, {"a": "1", "b": "2"}]


async def test_pipeline_queue_may_be_awaited(backend: RedisRepository) -> None:
    pipe = backend.pipeline()
    await pipe.set_async("a", "1")
    await pipe.get_async("a")
    assert await backend.exists_async("a") is False  # nothing sent yet
    assert await pipe.execute() == [True, "1"]


async def test_pipeline_with_a_prefix(backend: RedisRepository, prefixed_backend: RedisRepository) -> None:
    assert await prefixed_backend.pipeline().set_async("k", "v").get_async("k").execute() == [True, "v"]
    assert await backend.get_async("app:k") == "v"


async def test_async_with_executes_at_exit(backend: RedisRepository) -> None:
    async with backend.pipeline() as pipe:
        pipe.set_async("a", "1")
        pipe.incr_async("n")
        assert await backend.exists_async("a") is False
    assert pipe.results == [True, 1]
    assert await backend.get_async("a") == "1"


async def test_async_with_discards_on_exception(backend: RedisRepository) -> None:
    async def fail_inside(pipe: Pipeline) -> None:
        async with pipe:
            pipe.set_async("a", "1")
            pipe.incr_async("n")
            raise RuntimeError("kitchen on fire")

    pipe = backend.pipeline()
    with pytest.raises(RuntimeError, match="kitchen on fire"):
        await fail_inside(pipe)
    assert pipe.results is None
    assert len(pipe) == 0

    tx = backend.transaction()
    with pytest.raises(RuntimeError, match="kitchen on fire"):
        await fail_inside(tx)
    assert tx.results is None
    assert await backend.get_many_async(["a", "n"]) == {"a": None, "n": None}


async def test_bad_input_in_a_pipeline_fails_at_once_and_sends_nothing(backend: RedisRepository) -> None:
    pipe = backend.pipeline()
    pipe.set_async("ok", "1")
    with pytest.raises(InvalidArgumentError, match="empty"):
        pipe.set_async("", "x")
    assert len(pipe) == 1
    pipe.discard()
    assert await pipe.execute() == []
    assert await backend.exists_async("ok") is False
    with pytest.raises(AttributeError, match="cannot be queued"):
        pipe.scan_async("*")


async def test_transaction_runs_as_a_block(backend: RedisRepository) -> None:
    async with backend.transaction() as tx:
        tx.set_async("{t}a", "1").set_async("{t}b", "2").incr_async("{t}n")
    assert tx.transaction is True
    assert tx.results == [True, True, 1]
    assert await backend.pipeline(transaction=True).get_async("{t}a").get_async("{t}b").execute() == ["1", "2"]


async def test_transaction_is_atomic_for_a_concurrent_reader(backend: RedisRepository) -> None:
    await backend.set_many_async({"{t}left": 0, "{t}right": 0})
    rounds = 150
    seen: list[tuple[str | None, str | None]] = []
    writer_done = asyncio.Event()

    async def writer() -> None:
        try:
            for _ in range(rounds):
                async with backend.transaction() as tx:
                    tx.incr_async("{t}left")
                    tx.set_async("{t}marker", "between")
                    tx.incr_async("{t}right")
                await asyncio.sleep(0)
        finally:
            writer_done.set()

    async def reader() -> None:
        while not writer_done.is_set():
            values = await backend.get_many_async(["{t}left", "{t}right"])
            seen.append((values["{t}left"], values["{t}right"]))

    await asyncio.wait_for(asyncio.gather(writer(), reader(), reader()), timeout=30)
    assert seen, "the reader never ran"
    assert all(left == right for left, right in seen), [s for s in seen if s[0] != s[1]][:5]
    assert await backend.get_many_async(["{t}left", "{t}right"]) == {"{t}left": str(rounds), "{t}right": str(rounds)}


async def test_failed_command_in_a_transaction(backend: RedisRepository) -> None:
    await backend.hset_async("{t}h", "f", "v")
    tx = backend.transaction()
    tx.set_async("{t}a", "1").lpush_async("{t}h", "x").incr_async("{t}n")
    results = await tx.execute(raise_on_error=False)
    assert results[0] is True
    assert isinstance(results[1], CacheCommandError)
    assert "WRONGTYPE" in str(results[1])
    assert results[2] == 1
    # Redis does not roll back: the other commands applied, the hash is intact.
    assert await backend.get_async("{t}a") == "1"
    assert await backend.hgetall_async("{t}h") == {"f": "v"}

    tx = backend.transaction()
    tx.incr_async("{t}n").lpush_async("{t}h", "x").incr_async("{t}n")
    with pytest.raises(CacheCommandError, match="WRONGTYPE"):
        await tx.execute()
    assert tx.results is not None
    assert tx.results[0] == 2
    assert tx.results[2] == 3


async def test_failed_command_in_a_pipeline(backend: RedisRepository) -> None:
    await backend.set_async("word", "pizza")
    pipe = backend.pipeline()
    pipe.incr_async("word").get_async("word")
    with pytest.raises(CacheCommandError, match="not an integer"):
        await pipe.execute()
    assert pipe.results is not None
    assert pipe.results[1] == "pizza"


async def test_a_transaction_isolates_but_does_not_roll_back(backend: RedisRepository) -> None:
    """MULTI/EXEC: a command refused at run time fails alone; the others stay applied, and say so."""
    await backend.set_async("{t}stock:basil", "10")
    await backend.set_async("{t}orders", "a string, not a list")
    tx = backend.transaction()
    tx.decr_async("{t}stock:basil")
    tx.rpush_async("{t}orders", "o-7")  # WRONGTYPE when it runs
    tx.incr_async("{t}orders:today")
    with pytest.raises(CacheCommandError, match="WRONGTYPE") as info:
        await tx.execute()
    assert any("does not roll back: commands 0, 2" in note for note in info.value.__notes__)
    assert tx.applied == [True, False, True]
    assert tx.results is not None
    assert tx.results[0] == 9
    assert tx.results[2] == 1
    assert await backend.get_async("{t}stock:basil") == "9"  # applied, although the transaction "failed"
    pipe = backend.pipeline()
    assert pipe.applied is None


async def test_an_optimistic_transaction_runs_only_if_nobody_changed_what_it_read(
    backend: RedisRepository, repo_factory: RepositoryFactory
) -> None:
    other = await repo_factory()  # another client
    await backend.set_async("{t}stock:basil", "10")
    async with backend.watch("{t}stock:basil") as watch:
        stock = int(await watch.get_async("{t}stock:basil") or 0)
        await other.set_async("{t}stock:basil", "3")  # someone else was faster
        tx = watch.transaction()
        tx.set_async("{t}stock:basil", str(stock - 1))
        tx.rpush_async("{t}orders", "o-7")
        with pytest.raises(TransactionAbortedError):
            await tx.execute()
    assert await backend.get_async("{t}stock:basil") == "3"  # nothing of the transaction ran
    assert await backend.exists_async("{t}orders") is False

    async with backend.watch("{t}stock:basil") as watch:  # unchanged this time: it runs
        stock = int(await watch.get_async("{t}stock:basil") or 0)
        async with watch.transaction() as tx:
            tx.set_async("{t}stock:basil", str(stock - 1))
    assert tx.results == [True]
    assert await backend.get_async("{t}stock:basil") == "2"


async def test_optimistic_async_retries_until_its_read_still_holds(
    backend: RedisRepository, repo_factory: RepositoryFactory
) -> None:
    other = await repo_factory()
    await backend.set_async("counter", "0")
    attempts = 0

    async def increment(watch: Watch) -> int:
        nonlocal attempts
        attempts += 1
        value = int(await watch.get_async("counter") or 0)
        if attempts < 3:
            await other.incr_async("counter")  # a concurrent writer, twice
        async with watch.transaction() as tx:
            tx.set_async("counter", str(value + 1))
        return value + 1

    assert await backend.optimistic_async(["counter"], increment) == 3
    assert attempts == 3
    assert await backend.get_async("counter") == "3"

    async def always_beaten(watch: Watch) -> None:
        await watch.get_async("counter")
        await other.incr_async("counter")
        async with watch.transaction() as tx:
            tx.set_async("counter", "0")

    with pytest.raises(TransactionAbortedError):
        await backend.optimistic_async(["counter"], always_beaten, retries=2)
    assert await backend.get_async("counter") == "6"  # three beaten attempts, nothing written by them


async def test_concurrent_optimistic_increments_lose_nothing(
    backend: RedisRepository, repo_factory: RepositoryFactory
) -> None:
    others = [await repo_factory() for _ in range(4)]
    await backend.set_async("visits", "0")

    async def increment(watch: Watch) -> None:
        value = int(await watch.get_async("visits") or 0)
        await asyncio.sleep(0)
        async with watch.transaction() as tx:
            tx.set_async("visits", str(value + 1))

    await asyncio.gather(
        *(repo.optimistic_async(["visits"], increment, retries=100) for repo in others for _ in range(10))
    )
    assert await backend.get_async("visits") == "40"
