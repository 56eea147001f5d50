"""Property: interleaved gets, sets, removes and tag removals never read a value older than a completed write.

Several tasks run operations drawn by hypothesis on two keys and two tags.
Every operation records when it started and ended on one logical clock (a
counter advanced before the first and after the last await of the
operation). For each read of a key:

* a value written by set S must not be *superseded* before the read began:
  no set, remove or removal of one of S's tags on that key started after S
  ended and ended before the read began;
* ``None`` must not hide a completed set S: when S ended before the read
  began, some remove, or removal of a tag carried by S or by a set that did
  not end before S began, must have overlapped or followed S (started
  before the read ended).
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuroglia.data.redis import RedisCache, RedisConfig, RedisRepository
from neuroglia.data.redis.testing import RedisEndpoint

KEYS = ("a", "b")
TAGS = ("t1", "t2")

operation = st.one_of(
    st.tuples(st.just("get"), st.sampled_from(KEYS)),
    st.tuples(st.just("set"), st.sampled_from(KEYS), st.frozensets(st.sampled_from(TAGS))),
    st.tuples(st.just("remove"), st.sampled_from(KEYS)),
    st.tuples(st.just("remove_tag"), st.sampled_from(TAGS)),
)
# Each operation is preceded by 0-2 yields to the event loop, drawn too, to vary the interleaving.
step = st.tuples(st.integers(0, 2), operation)
plan = st.lists(st.lists(step, min_size=1, max_size=12), min_size=2, max_size=4)


@dataclass
class Op:
    kind: str
    key: str | None
    tags: frozenset[str] = frozenset()
    version: int | None = None
    start: int = 0
    end: int = 0
    result: Any = None


@dataclass
class History:
    ops: list[Op] = field(default_factory=list)
    clock: itertools.count[int] = field(default_factory=itertools.count)

    def tick(self) -> int:
        return next(self.clock)


async def run_plan(cache: RedisCache, tasks: list[list[tuple[int, tuple[Any, ...]]]]) -> History:
    history = History()
    versions = itertools.count(1)

    async def worker(steps: list[tuple[int, tuple[Any, ...]]]) -> None:
        for yields, (kind, *args) in steps:
            for _ in range(yields):
                await asyncio.sleep(0)
            if kind == "get":
                op = Op("get", args[0])
                op.start = history.tick()
                op.result = await cache.get_async(args[0])
            elif kind == "set":
                op = Op("set", args[0], args[1], next(versions))
                op.start = history.tick()
                await cache.set_async(args[0], op.version, tags=sorted(op.tags))
            elif kind == "remove":
                op = Op("remove", args[0])
                op.start = history.tick()
                await cache.remove_async(args[0])
            else:
                op = Op("remove_tag", None, frozenset([args[0]]))
                op.start = history.tick()
                await cache.remove_by_tag_async(args[0])
            op.end = history.tick()
            history.ops.append(op)

    await asyncio.gather(*(worker(steps) for steps in tasks))
    return history


def removes(op: Op, key: str, written: Op) -> bool:
    """Whether ``op`` removes what ``written`` put under ``key``."""
    if op.kind == "remove":
        return op.key == key
    if op.kind == "remove_tag":
        return bool(op.tags & written.tags)
    return False


def may_remove(op: Op, key: str, written: Op, sets: list[Op]) -> bool:
    """Whether ``op`` may have removed ``written`` or a later value of ``key`` (a set not ended before it)."""
    if removes(op, key, written):
        return True
    if op.kind != "remove_tag":
        return False
    return any(s.key == key and s.tags & op.tags and s.end > written.start and s.start < op.end for s in sets)


def check(history: History) -> None:
    sets = [op for op in history.ops if op.kind == "set"]
    by_version = {op.version: op for op in sets}
    for read in (op for op in history.ops if op.kind == "get"):
        key = read.key
        assert key is not None
        if read.result is not None:
            written = by_version[read.result]
            assert written.key == key
            assert written.start < read.end, "read a value from the future"
            for other in history.ops:
                superseding = (other.kind == "set" and other.key == key and other is not written) or removes(
                    other, key, written
                )
                if superseding and written.end < other.start and other.end < read.start:
                    raise AssertionError(f"read {read} returned {written}, superseded by {other} before it began")
        else:
            for written in (s for s in sets if s.key == key and s.end < read.start):
                removed = any(
                    may_remove(other, key, written, sets) and other.end > written.start and other.start < read.end
                    for other in history.ops
                )
                if not removed:
                    raise AssertionError(f"read {read} returned None after {written} completed, nothing removed it")


async def exercise(url: str, tasks: list[list[tuple[int, tuple[Any, ...]]]], *, flush: bool) -> None:
    repo = RedisRepository(RedisConfig(url=url))
    try:
        if flush:
            await repo.flushdb()
        async with RedisCache(repo, "prop", default_expiration=60, tag_batch_size=1) as cache:
            history = await run_plan(cache, tasks)
        check(history)
    finally:
        await repo.disconnect()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tasks=plan)
def test_no_read_is_older_than_a_completed_write_memory(tasks: list[list[tuple[int, tuple[Any, ...]]]]) -> None:
    asyncio.run(exercise(f"memory://cache-prop-{uuid.uuid4().hex}", tasks, flush=False))


@pytest.mark.integration
def test_no_read_is_older_than_a_completed_write_redis(redis_server: RedisEndpoint) -> None:
    redis_url = redis_server.url

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(tasks=plan)
    def run(tasks: list[list[tuple[int, tuple[Any, ...]]]]) -> None:
        asyncio.run(exercise(redis_url, tasks, flush=True))

    run()


def test_the_checker_catches_a_stale_read() -> None:
    history = History()
    history.ops = [
        Op("set", "a", frozenset(), 1, start=0, end=1),
        Op("set", "a", frozenset(), 2, start=2, end=3),
        Op("get", "a", start=4, end=5, result=1),
    ]
    with pytest.raises(AssertionError, match="superseded"):
        check(history)
    history.ops = [
        Op("set", "a", frozenset({"t1"}), 1, start=0, end=1),
        Op("remove_tag", None, frozenset({"t1"}), start=2, end=3),
        Op("get", "a", start=4, end=5, result=1),
    ]
    with pytest.raises(AssertionError, match="superseded"):
        check(history)
    history.ops = [
        Op("set", "a", frozenset(), 1, start=0, end=1),
        Op("get", "a", start=4, end=5, result=None),
    ]
    with pytest.raises(AssertionError, match="returned None"):
        check(history)
    history.ops = [  # a racing tagged set may have superseded the untagged one, then been removed: fine
        Op("set", "a", frozenset(), 1, start=0, end=3),
        Op("set", "a", frozenset({"t1"}), 2, start=1, end=4),
        Op("remove_tag", None, frozenset({"t1"}), start=5, end=6),
        Op("get", "a", start=7, end=8, result=None),
    ]
    check(history)
    history.ops = [  # a removal overlapping the set may take it: fine
        Op("set", "a", frozenset({"t1"}), 1, start=0, end=3),
        Op("remove_tag", None, frozenset({"t1"}), start=1, end=4),
        Op("get", "a", start=5, end=6, result=None),
    ]
    check(history)
