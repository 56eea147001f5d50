"""Fixtures of the cluster suite: repositories on the session's local cluster, flushed first."""

from __future__ import annotations

import pytest

from neuroglia.data.redis import RedisRepository
from neuroglia.data.redis.testing import LocalCluster
from tests.support.repositories import RepositoryFactory

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


@pytest.fixture
async def cluster_repo(redis_cluster: LocalCluster, repo_factory: RepositoryFactory) -> RedisRepository:
    """A connected repository on the session's cluster, every primary flushed."""
    repo = await repo_factory(redis_cluster.url)
    await repo.flushdb()
    return repo
