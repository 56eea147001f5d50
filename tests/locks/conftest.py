"""Fixtures of the lock suite: private redis-server processes, never the shared one.

``lock_server`` is one private ``redis-server`` for the whole folder (started by
:class:`~neuroglia.data.redis.testing.RedisServer` on a free loopback port,
without persistence, stopped by pid at the end); its database is flushed before
each test that uses it. Tests that stop, pause or kill a server get their own
(``own_server``, ``three_servers``). ``REDIS_URL`` is ignored here: a lock test
may stop its server, so it must own it.

``lock_repo`` is parametrized over the embedded ``memory://`` backend and the
real server, so the basic lock tests run on both.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from neuroglia.data.redis import RedisConfig, RedisRepository
from neuroglia.data.redis.testing import RedisServer

if TYPE_CHECKING:
    from lockkit import RepoFactory


@pytest.fixture(scope="session")
def lock_server() -> Iterator[RedisServer]:
    """A private redis-server shared by the lock tests that do not break it."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    """A private redis-server for one test, which it may stop, pause or restart."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def three_servers() -> Iterator[list[RedisServer]]:
    """Three independent private redis-servers (for Redlock)."""
    servers = [RedisServer() for _ in range(3)]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.close()


@pytest.fixture
async def make_repo() -> AsyncIterator[Callable[..., RedisRepository]]:
    """Build repositories from a URL and settings; all are disconnected at the end."""
    made: list[RedisRepository] = []

    def make(url: str, **settings: Any) -> RedisRepository:
        repo = RedisRepository(RedisConfig(url=url, **settings))
        made.append(repo)
        return repo

    yield make
    for repo in reversed(made):
        await repo.disconnect()


@pytest.fixture
async def redis_repo(lock_server: RedisServer, make_repo: Callable[..., RedisRepository]) -> RedisRepository:
    """A connected repository on the shared private server's flushed database."""
    repo = make_repo(lock_server.url)
    await repo.connect()
    await repo.flushdb()
    return repo


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
async def repo_factory(request: pytest.FixtureRequest, make_repo: Callable[..., RedisRepository]) -> RepoFactory:
    """Build connected repositories that share one database, on memory:// or the real server.

    Two repositories from one factory behave like two processes: separate
    connection pools and separate in-process lock queues over the same data.
    """
    if request.param == "memory":
        url = f"memory://locks-{uuid.uuid4().hex}"
    else:
        url = request.getfixturevalue("lock_server").url
    first = True

    async def make(**settings: Any) -> RedisRepository:
        nonlocal first
        repo = make_repo(url, **settings)
        await repo.connect()
        if first:
            await repo.flushdb()
            first = False
        return repo

    return make


@pytest.fixture
async def lock_repo(repo_factory: RepoFactory) -> RedisRepository:
    """A connected repository on memory:// or the real server (flushed)."""
    return await repo_factory()
