"""Concurrency: this process never reads its own write stale, however many reads are in flight.

Each key has one writer task writing increasing versions; reader tasks read
at random meanwhile. A read must return a version no older than the last
write that completed before the read began, and no newer than the last that
began before it ended (a linearizable register, per key). Seeded, bounded in
count and time, on both backends.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from neuroglia.data.redis import RedisRepository
from tests.support.repositories import RepositoryFactory

pytestmark = pytest.mark.timeout(120)

KEYS = 4
WRITES = 60
READERS = 12


class Register:
    """What the writers of one key have done: versions begun and completed."""

    def __init__(self) -> None:
        self.started = 0
        self.completed = 0


async def write(repo: RedisRepository, kind: str, key: str, version: int) -> None:
    if kind == "set":
        await repo.set_async(key, str(version))
    elif kind == "hset":
        await repo.hset_async(key + ":h", "v", str(version))
    elif kind == "pipeline":
        async with repo.pipeline() as pipe:
            pipe.set_async(key, str(version))
    elif kind == "set_many":
        await repo.set_many_async({key: str(version)})
    else:  # a script whose key is named
        await repo.eval_async("return redis.call('SET', KEYS[1], ARGV[1])", [key], [str(version)])


async def read(repo: RedisRepository, kind: str, key: str) -> int:
    if kind == "hset":
        value: Any = await repo.hget_async(key + ":h", "v")
    elif kind == "set_many":
        value = (await repo.get_many_async([key]))[key]
    else:
        value = await repo.get_async(key)
    return int(value)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("kind", ["set", "hset", "pipeline", "set_many", "script"])
async def test_no_read_is_older_than_the_last_completed_write(
    backend_url: str, repo_factory: RepositoryFactory, kind: str, seed: int
) -> None:
    repo = await repo_factory(key_prefix="race:", near_cache=True)
    keys = [f"k{n}" for n in range(KEYS)]
    registers = {key: Register() for key in keys}
    for key in keys:
        await write(repo, kind, key, 0)
    chance = random.Random(seed)
    done = asyncio.Event()
    checked = 0

    async def writer(key: str) -> None:
        register = registers[key]
        for version in range(1, WRITES + 1):
            register.started = version
            await write(repo, kind, key, version)
            register.completed = version
            if chance.random() < 0.5:
                await asyncio.sleep(0)

    async def reader() -> None:
        nonlocal checked
        while not done.is_set():
            key = chance.choice(keys)
            register = registers[key]
            low = register.completed
            version = await read(repo, kind, key)
            high = register.started
            assert low <= version <= high, f"{key}: read version {version}, expected within [{low}, {high}]"
            checked += 1
            await asyncio.sleep(0)  # a hit never suspends: let the others run

    readers = [asyncio.create_task(reader()) for _ in range(READERS)]
    try:
        await asyncio.wait_for(asyncio.gather(*(writer(key) for key in keys)), 60)
    finally:
        done.set()
        results = await asyncio.gather(*readers, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    assert checked > 100
    near = repo.near_cache
    assert near is not None
    for key in keys:  # and at the end, every read gives the last version, from the near cache the second time
        assert await read(repo, kind, key) == WRITES
    hits = near.statistics().hits
    for key in keys:
        assert await read(repo, kind, key) == WRITES
    assert near.statistics().hits == hits + KEYS


async def test_reads_in_flight_across_a_write_of_another_repository_keep_nothing_stale(
    backend_url: str, repo_factory: RepositoryFactory
) -> None:
    """Reads racing another repository's writes end up with the last value once its invalidations are in."""
    reader = await repo_factory(key_prefix="race:", near_cache=True)
    writer = await repo_factory(key_prefix="race:")
    await writer.set_async("k", "0")
    stop = asyncio.Event()

    async def hammer() -> None:
        while not stop.is_set():
            await reader.get_async("k")
            await asyncio.sleep(0)

    tasks = [asyncio.create_task(hammer()) for _ in range(8)]
    try:
        for version in range(1, 101):
            await writer.set_async("k", str(version))
            if version % 10 == 0:
                await asyncio.sleep(0.001)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while await reader.get_async("k") != "100":
        assert loop.time() < deadline, "the last write was not seen within 5 s"
        await asyncio.sleep(0.005)
    # Whatever the near cache kept from the race is the last value, or nothing.
    near = reader.near_cache
    assert near is not None
    kept = [entry.reply for entry in near.entries()]
    assert kept in ([], [b"100"])
