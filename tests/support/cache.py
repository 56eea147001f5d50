"""Helpers of the cache suite: a counting factory, an in-process outage, bounded waiting."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from neuroglia.data.redis import RedisConfig, RedisRepository
from neuroglia.data.redis.testing import FaultInjectingTransport, Faults
from neuroglia.data.redis.transport import build_transport

__all__ = ["Faults", "Item", "Loader", "eventually", "repository_with_outage"]


@dataclass
class Item:
    """A cached value with a type of its own."""

    name: str
    price: float


class Loader:
    """A factory that counts its runs, optionally slow, failing or gated by an event."""

    def __init__(self, value: Any = "v", *, delay: float = 0.0) -> None:
        self.value = value
        self.delay = delay
        self.calls = 0
        self.fail: BaseException | None = None
        self.gate: asyncio.Event | None = None
        self.started = asyncio.Event()

    async def __call__(self) -> Any:
        self.calls += 1
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        return self.value() if callable(self.value) else self.value


def repository_with_outage(url: str, faults: Faults, **settings: Any) -> RedisRepository:
    """A repository whose transport refuses every command while ``faults.outage`` (nothing reaches Redis)."""
    config = RedisConfig(url=url, **settings)
    return RedisRepository(config, transport=FaultInjectingTransport(build_transport(config), faults))


async def eventually(condition: Callable[[], bool], within: float = 5.0, what: str = "condition") -> None:
    """Wait (bounded by ``within`` seconds, in 10 ms steps) until ``condition()`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"{what} did not hold within {within}s")
        await asyncio.sleep(0.01)
