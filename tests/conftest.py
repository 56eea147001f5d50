"""Shared fixtures: the backends every contract test runs on, and the one repository factory.

The real server is the testing plugin's ``redis_server`` (a private
``redis-server`` started once per session by
:class:`neuroglia.data.redis.testing.RedisServer` on a free loopback port,
without persistence); the shared server on the default port 6379 is never
used.

``backend_url`` is parametrized over the embedded ``memory://`` backend (a
fresh private server per test), the real server (its database flushed
first, marked ``integration``) and a local Redis Cluster of three primaries
and three replicas (the plugin's session-scoped ``redis_cluster``, flushed
on every primary first, marked ``integration`` and ``cluster``), so a test
written once runs with the same assertions on all three. ``repo_factory`` is the one way tests build
repositories (:class:`tests.support.repositories.RepositoryFactory`): on the
test's backend by default, or on any URL or config; it disconnects them all
at the end.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from neuroglia.data.redis import RedisConfig, RedisRepository
from neuroglia.data.redis.testing import LocalCluster, RedisEndpoint
from tests.support.repositories import RepositoryFactory, clean_repository

pytest_plugins = ["pytester"]

BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("redis", id="redis", marks=pytest.mark.integration),
    pytest.param("cluster", id="cluster", marks=[pytest.mark.integration, pytest.mark.cluster]),
]


def backend_url_for(request: pytest.FixtureRequest, kind: str) -> str:
    """The URL of backend ``kind``'s database (``repo_factory`` empties it first)."""
    if kind == "memory":
        return f"memory://test-{uuid.uuid4().hex}"
    if kind == "cluster":
        cluster: LocalCluster = request.getfixturevalue("redis_cluster")
        return cluster.url
    endpoint: RedisEndpoint = request.getfixturevalue("redis_server")
    return endpoint.url


@pytest.fixture(params=BACKENDS)
def backend_url(request: pytest.FixtureRequest) -> str:
    """The URL of the current backend's database (``repo_factory`` empties it first)."""
    return backend_url_for(request, request.param)


@pytest.fixture
def backend_kind(backend_url: str) -> str:
    """``"memory"``, ``"redis"`` or ``"cluster"``."""
    if backend_url.startswith("memory://"):
        return "memory"
    return "cluster" if "+cluster://" in backend_url else "redis"


@pytest.fixture
async def repo_factory(request: pytest.FixtureRequest) -> AsyncIterator[RepositoryFactory]:
    """The test's repositories: on its backend when it runs on one (``backend_url``), else on the URL given."""
    url = request.getfixturevalue("backend_url") if "backend_url" in request.fixturenames else None
    if url is not None and not url.startswith("memory://"):
        async with clean_repository(RedisConfig(url=url)):
            pass  # what an earlier test left behind is gone
    factory = RepositoryFactory(url)
    try:
        yield factory
    finally:
        await factory.close()


@pytest.fixture
async def backend(backend_url: str, repo_factory: RepositoryFactory) -> RedisRepository:
    """A connected repository (no key prefix) on a clean database of the current backend."""
    return await repo_factory()


@pytest.fixture
async def prefixed_backend(backend_url: str, repo_factory: RepositoryFactory) -> RedisRepository:
    """A connected repository with ``key_prefix="app:"`` on the same clean database."""
    return await repo_factory(key_prefix="app:")
