"""Shared fixtures: a private redis-server for the session and repositories on both backends.

The real server is started once per session by
:class:`neuroglia.data.redis.testing.RedisServer` on a free loopback port,
without persistence, and stopped at the end. ``REDIS_URL`` points the suite at
an existing server instead (its database is flushed before each test that
uses it, so never point it at data you care about). The shared server on the
default port 6379 is never used.

``backend`` is a connected :class:`RedisRepository`, parametrized over the
embedded ``memory://`` backend (a fresh private server per test) and the real
server (``FLUSHDB`` before each test, marked ``integration``), so a contract
test written once runs with the same assertions on both.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from repokit import clean_repository

from neuroglia.data.redis import RedisConfig, RedisRepository
from neuroglia.data.redis.testing import RedisServer

RepoFactory = Callable[..., Awaitable[RedisRepository]]

BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("redis", id="redis", marks=pytest.mark.integration),
]


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The URL of a real Redis: ``$REDIS_URL`` or a private redis-server for this session."""
    external = os.environ.get("REDIS_URL")
    if external:
        config = RedisConfig(url=external)
        if config.scheme == "memory":
            raise pytest.UsageError("REDIS_URL must point at a real server, not memory://")
        yield external
        return
    server = RedisServer()
    server.start()
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture(scope="session")
def redis_server_config(redis_url: str) -> RedisConfig:
    """The real server's location, resolved (host, port, db, password)."""
    return RedisConfig(url=redis_url)


@pytest.fixture(params=BACKENDS)
def backend_kind(request: pytest.FixtureRequest) -> str:
    """``"memory"`` or ``"redis"``."""
    return str(request.param)


@pytest.fixture
async def repo_factory(backend_kind: str, request: pytest.FixtureRequest) -> AsyncIterator[RepoFactory]:
    """Build connected repositories on the current backend that share one database.

    Every repository made by one factory sees the same data (a named
    ``memory://`` server private to the test, or the real server's database,
    flushed first), so a test can look at the same keys through configs with
    another prefix, serializer or ``decode_responses``.
    """
    url = f"memory://test-{uuid.uuid4().hex}" if backend_kind == "memory" else request.getfixturevalue("redis_url")
    made: list[RedisRepository] = []

    async def make(**settings: Any) -> RedisRepository:
        repo = RedisRepository(RedisConfig(url=url, **settings))
        await repo.connect()
        made.append(repo)
        return repo

    # The first repository (no prefix) anchors the data for the whole test;
    # on a real server it also clears what an earlier test left behind.
    anchor = await make()
    await anchor.flushdb()
    try:
        yield make
    finally:
        for repo in reversed(made):
            await repo.disconnect()


@pytest.fixture
async def backend(repo_factory: RepoFactory) -> RedisRepository:
    """A connected repository (no key prefix) on a clean database."""
    return await repo_factory()


@pytest.fixture
async def prefixed_backend(repo_factory: RepoFactory) -> RedisRepository:
    """A connected repository with ``key_prefix="app:"`` on the same clean database."""
    return await repo_factory(key_prefix="app:")


@pytest.fixture
async def redis_repository_real(redis_url: str) -> AsyncIterator[RedisRepository]:
    """A connected repository on the real server's clean database."""
    async with clean_repository(RedisConfig(url=redis_url)) as repo:
        yield repo
