"""The pytest plugin: fixtures for a real Redis, repositories on it or on ``memory://``, a fake clock.

This module is a pytest plugin, enabled by the package's ``pytest11``
entry point (``-p no:neuroglia_redis`` turns it off). Its fixtures:

``redis_server`` (session)
    A :class:`RedisEndpoint`: a private ``redis-server`` started on a free
    port for the session, or the server ``NEUROGLIA_REDIS_TEST_URL`` names
    (its database is flushed before each test that uses
    ``redis_repository``). The application's own ``REDIS_URL`` is never
    used: a test suite must not flush an application's data because it
    shares its environment. A database that already holds keys is refused
    at the start of the session, unless ``NEUROGLIA_REDIS_TEST_FLUSH=1``
    says it may be emptied. Tests that use it are skipped, with the reason,
    only when no ``redis-server`` binary is found and no test URL is set.
``redis_cluster`` (session)
    A :class:`LocalCluster`: three primaries and three replicas started for
    the session on free loopback ports (``.url`` is a ``redis+cluster://``
    URL), stopped at its end. Skipped, with the reason, when
    ``redis-server``/``redis-cli`` are not installed.
``redis_repository``
    A :class:`~neuroglia.data.redis.RedisRepository` on that server, on a
    database flushed before the test, disconnected after it.
``memory_redis_repository``
    A repository on a private ``memory://`` server (the embedded backend).
``sentinel_group`` (module)
    A started :class:`SentinelGroup` (one primary, one replica, three
    sentinels on free ports); its ``url`` is a ``redis+sentinel://`` URL.
    Module-scoped, since a failover test changes which server is primary;
    a test that kills the primary should restart it
    (``restart_killed()``) before it ends.
``fake_clock``
    A :class:`FakeClock`, for ``CircuitBreakerPolicy(clock=...)`` and any
    other injected monotonic clock.

The repository fixtures are async: they need ``pytest-asyncio`` (any mode).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar, cast

import pytest

from ..config import RedisConfig
from ..repository import RedisRepository
from .clock import FakeClock
from .cluster import LocalCluster
from .endpoint import RedisEndpoint
from .sentinel import SentinelGroup
from .server import RedisServer, redis_server_binary

__all__ = [
    "RedisEndpoint",
    "fake_clock",
    "memory_redis_repository",
    "redis_cluster",
    "redis_repository",
    "redis_server",
    "sentinel_group",
]


TEST_URL_VARIABLE = "NEUROGLIA_REDIS_TEST_URL"
"""Points the fixtures at an existing server (whose database they flush) instead of a private one."""
TEST_FLUSH_VARIABLE = "NEUROGLIA_REDIS_TEST_FLUSH"
"""``1`` allows the fixtures to empty a database that already holds keys."""

_NO_SERVER_REASON = (
    f"no redis-server binary found (PATH or $REDIS_SERVER_BIN) and {TEST_URL_VARIABLE} is not set: "
    f"install redis-server, or set {TEST_URL_VARIABLE} to a server whose database the tests may flush"
)


def _refuse_foreign_keys(url: str) -> None:
    """Fail the session when the test database holds keys, unless flushing was allowed explicitly."""
    if os.environ.get(TEST_FLUSH_VARIABLE, "") in ("1", "true", "yes"):
        return

    async def count() -> int:
        repository = RedisRepository(RedisConfig(url=url, circuit_breaker=False))
        try:
            return await repository.dbsize()
        finally:
            await repository.disconnect()

    keys = asyncio.run(count())
    if keys:
        shown = RedisConfig(url=url).redacted_url
        raise pytest.UsageError(
            f"{TEST_URL_VARIABLE} names {shown}, whose database holds {keys} keys that this test session did not "
            f"write, and the tests flush it. Point it at an empty database, or set {TEST_FLUSH_VARIABLE}=1 to "
            "allow emptying this one."
        )


def _endpoint() -> Iterator[RedisEndpoint]:
    external = os.environ.get(TEST_URL_VARIABLE)
    if external:
        if RedisConfig(url=external).scheme == "memory":
            raise pytest.UsageError(f"{TEST_URL_VARIABLE} must name a real server (redis://...), not memory://")
        _refuse_foreign_keys(external)
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


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalCluster]:
    """A local Redis Cluster for the session (three primaries, three replicas)."""
    if redis_server_binary() is None or shutil.which("redis-cli") is None:
        pytest.skip("a local cluster needs redis-server and redis-cli (PATH or $REDIS_SERVER_BIN)")
    with LocalCluster() as cluster:
        yield cluster


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


@pytest.fixture(scope="module")
def sentinel_group() -> Iterator[SentinelGroup]:
    """A local Sentinel group for the module: one primary, one replica, three sentinels."""
    if redis_server_binary() is None:
        pytest.skip(_NO_SERVER_REASON)
    with SentinelGroup() as group:
        yield group


@pytest.fixture
def fake_clock() -> FakeClock:
    """A :class:`FakeClock` starting at 1000.0."""
    return FakeClock()
