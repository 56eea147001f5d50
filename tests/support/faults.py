"""Helpers shared by the resilience tests: a fake clock, fast configs, outcome capture."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import redis

from neuroglia.data.redis import CacheException, CircuitState, RedisConfig, RedisRepository
from neuroglia.data.redis.testing import FakeClock, RedisServer

__all__ = ["OPERATION_TIMEOUT", "FakeClock", "admin", "fast_config", "outcome", "wait_until_closed"]

# Tight settings so that every fault resolves in well under a second.
FAST = {
    "socket_timeout": 0.5,
    "socket_connect_timeout": 0.5,
    "pool_timeout": 0.5,
}
FAST_RETRY = {"retries": 2, "retry_delay": 0.01, "backoff_factor": 2, "max_retry_delay": 0.05}
OPERATION_TIMEOUT = 1.0


def fast_config(url: str, **overrides: Any) -> RedisConfig:
    """A config whose timeouts resolve faults quickly (overridable field by field)."""
    pool = dict(FAST)
    for name in list(overrides):
        if name in (
            "socket_timeout",
            "socket_connect_timeout",
            "pool_timeout",
            "max_connections",
            "health_check_interval",
        ):
            pool[name] = overrides.pop(name)
    settings: dict[str, Any] = {
        "url": url,
        "connection_pool": pool,
        "retry_policy": FAST_RETRY,
        "operation_timeout": OPERATION_TIMEOUT,
        "circuit_breaker": {"failure_threshold": 3, "recovery_timeout": 0.3, "success_threshold": 1},
    }
    settings.update(overrides)
    return RedisConfig(**settings)


async def outcome(awaitable: Awaitable[Any]) -> Any:
    """The result, or the :class:`CacheException` raised; anything else fails the test."""
    try:
        return await awaitable
    except CacheException as exc:
        return exc


def admin(server: RedisServer) -> redis.Redis:
    """A synchronous redis-py client for the test itself (CLIENT PAUSE, DEBUG SLEEP...)."""
    return redis.Redis(host=server.host, port=server.port, socket_timeout=10, decode_responses=True)


async def wait_until_closed(repo: RedisRepository, key: str, *, within: float = 10.0) -> Any:
    """Read ``key`` until a read succeeds and the breaker is closed; bounded by ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    last: Any = None
    while loop.time() < deadline:
        last = await outcome(repo.get_async(key))
        breaker = repo.circuit_breaker
        if not isinstance(last, CacheException) and (breaker is None or breaker.state is CircuitState.CLOSED):
            return last
        await asyncio.sleep(0.02)
    raise AssertionError(f"no recovery within {within}s; last outcome: {last!r}")
