"""The pytest plugin: fixtures for a real Redis, repositories on it or on ``memory://``, a fake clock.

This module is a pytest plugin, enabled by the package's ``pytest11``
entry point (``-p no:neuroglia_redis`` turns it off). Its fixtures:

``redis_server`` (session)
    A :class:`RedisEndpoint`: a private ``redis-server`` started on a free
    port for the session, or the server ``REDIS_URL`` names (its database is
    flushed before each test that uses ``redis_repository``). Tests that use
    it are skipped, with the reason, only when no ``redis-server`` binary is
    found and ``REDIS_URL`` is unset.
``redis_repository``
    A :class:`~neuroglia.data.redis.RedisRepository` on that server, on a
    database flushed before the test, disconnected after it.
``memory_redis_repository``
    A repository on a private ``memory://`` server (the embedded backend).
``fake_clock``
    A :class:`FakeClock`, for ``CircuitBreakerPolicy(clock=...)`` and any
    other injected monotonic clock.

The repository fixtures are async: they need ``pytest-asyncio`` (any mode).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar, cast

import pytest

from ..config import RedisConfig
from ..repository import RedisRepository
from .clock import FakeClock
from .endpoint import RedisEndpoint
from .server import RedisServer, redis_server_binary

__all__ = ["RedisEndpoint", "fake_clock", "memory_redis_repository", "redis_repository", "redis_server"]


_NO_SERVER_REASON = (
    "no redis-server binary found (PATH or $REDIS_SERVER_BIN) and REDIS_URL is not set: "
    "install redis-server, or set REDIS_URL to a server whose database the tests may flush"
)


def _endpoint() -> Iterator[RedisEndpoint]:
    external = os.environ.get("REDIS_URL")
    if external:
        if RedisConfig(url=external).scheme == "memory":
            raise pytest.UsageError("REDIS_URL must name a real server (redis://...), not memory://")
        yield RedisEndpoint(external)
        return
    if redis_server_binary() is None:
        pytest.skip(_NO_SERVER_REASON)
    with RedisServer() as server:
        yield RedisEndpoint(server.url, server)


F = TypeVar("F", bound=Callable[..., Any])


def _async_fixture(function: F) -> F:
    """``pytest_asyncio.fixture`` (works in its strict and auto modes), else plain ``pytest.fixture``."""
    try:
        import pytest_asyncio
    except ImportError:  # pragma: no cover - exercised only without pytest-asyncio
        return cast(F, pytest.fixture(function))
    return cast(F, pytest_asyncio.fixture(function))


# -- the fixtures ------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisEndpoint]:
    """A real Redis for the session: a private redis-server on a free port, or ``$REDIS_URL``."""
    yield from _endpoint()


@_async_fixture
async def redis_repository(redis_server: RedisEndpoint) -> AsyncIterator[RedisRepository]:
    """A repository on ``redis_server``, its database flushed before the test."""
    repo = redis_server.repository()
    try:
        await repo.flushdb()
        yield repo
    finally:
        await repo.disconnect()


@_async_fixture
async def memory_redis_repository() -> AsyncIterator[RedisRepository]:
    """A repository on a private ``memory://`` server (needs the ``memory`` extra)."""
    repo = RedisRepository(RedisConfig(url=f"memory://pytest-{uuid.uuid4().hex}"))
    try:
        yield repo
    finally:
        await repo.disconnect()


@pytest.fixture
def fake_clock() -> FakeClock:
    """A :class:`FakeClock` starting at 1000.0."""
    return FakeClock()
