"""Invalidation across OS processes on a real redis-server: a write in this process evicts another's copy.

The other process (``near_worker.py``) has a near cache and answers reads
on request; this process writes with a plain repository and a plain
:class:`RedisCache`. How fast the eviction comes is measured by
``benchmarks/bench_near_cache.py``; here it must come, within seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from neuroglia.data.redis import RedisCache, RedisConfig
from neuroglia.data.redis.testing import RedisEndpoint
from tests.support.repositories import clean_repository

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

WORKER = str(Path(__file__).with_name("near_worker.py"))


class Worker:
    """The other process: one JSON request, one JSON answer, each bounded in time."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def line(self, within: float = 30) -> str:
        assert self.process.stdout is not None
        text = await asyncio.wait_for(self.process.stdout.readline(), within)
        assert text, "the worker exited early"
        return text.decode().strip()

    async def ask(self, op: str, **fields: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps({"op": op, **fields}) + "\n").encode())
        await self.process.stdin.drain()
        answer: dict[str, Any] = json.loads(await self.line())
        return answer

    async def value(self, op: str, **fields: Any) -> Any:
        return (await self.ask(op, **fields))["value"]


@asynccontextmanager
async def worker(url: str) -> AsyncIterator[Worker]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        WORKER,
        url,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    other = Worker(process)
    try:
        assert await other.line() == "READY"
        yield other
        await other.ask("stats")
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def test_a_write_here_evicts_the_other_processes_copy(redis_server: RedisEndpoint) -> None:
    async with (
        clean_repository(RedisConfig(url=redis_server.url, key_prefix="proc:")) as repo,
        worker(redis_server.url) as other,
    ):
        await repo.set_async("menu", "margherita")
        await repo.hset_async("order", {"status": "baking"})
        await repo.set_async("a", "1")
        assert await other.value("get", key="menu") == "margherita"
        assert await other.value("get", key="menu") == "margherita"
        assert await other.value("hgetall", key="order") == {"status": "baking"}
        assert await other.value("get_many", keys=["a", "menu"]) == {"a": "1", "menu": "margherita"}
        before = (await other.ask("stats"))["near"]
        assert before["hits"] >= 2  # the second read of menu, and menu in get_many

        await repo.set_async("menu", "marinara")
        await repo.hset_async("order", "status", "ready")
        await repo.delete_async("a")
        for op, fields, expected in (
            ("get", {"key": "menu"}, "marinara"),
            ("hgetall", {"key": "order"}, {"status": "ready"}),
            ("get_many", {"keys": ["a", "menu"]}, {"a": None, "menu": "marinara"}),
        ):
            waited = await other.ask("wait", read=op, value=expected, within=5.0, **fields)
            assert waited["seen"], (op, waited)
        after = (await other.ask("stats"))["near"]
        assert after["invalidations"] >= 3
        assert after["flushes"] == 0  # evicted key by key, not by a flush


async def test_the_cache_layer_first_level_follows_another_processes_set_remove_and_tag_removal(
    redis_server: RedisEndpoint,
) -> None:
    async with (
        clean_repository(RedisConfig(url=redis_server.url, key_prefix="proc:")) as repo,
        RedisCache(repo, "menu", default_expiration=600) as cache,
        worker(redis_server.url) as other,
    ):
        await cache.set_async("margherita", {"price": 8.5}, tags=["pizza"])
        await cache.set_async("marinara", {"price": 7.0}, tags=["pizza"])
        assert await other.value("cache_get", key="margherita") == {"price": 8.5}
        assert await other.value("cache_get", key="margherita") == {"price": 8.5}
        assert await other.value("cache_get", key="marinara") == {"price": 7.0}
        stats = await other.ask("stats")
        assert stats["cache"]["near_cache_hits"] == 1  # the second read: answered in that process
        assert stats["cache"]["hits"] == 3

        await cache.set_async("margherita", {"price": 9.0}, tags=["pizza"])
        waited = await other.ask("wait", read="cache_get", key="margherita", value={"price": 9.0}, within=5.0)
        assert waited["seen"], waited

        await cache.remove_async("margherita")
        waited = await other.ask("wait", read="cache_get", key="margherita", value=None, within=5.0)
        assert waited["seen"], waited

        assert await other.value("cache_get", key="marinara") == {"price": 7.0}  # held there
        assert await cache.remove_by_tag_async("pizza") == 1
        waited = await other.ask("wait", read="cache_get", key="marinara", value=None, within=5.0)
        assert waited["seen"], waited
        stats = await other.ask("stats")
        assert stats["cache"]["near_cache_invalidations"] >= 3
