"""Repositories on the module's Sentinel group (the testing kit's ``sentinel_group`` fixture).

``sentinel_repo`` builds repositories on the group's ``redis+sentinel://``
URL (or another one), and disconnects them after the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from neuroglia.data.redis import RedisConfig, RedisRepository
from neuroglia.data.redis.testing import SentinelGroup
from neuroglia.data.redis.transport.sentinel import SentinelTransport


class SentinelRepositories:
    """Makes repositories on a sentinel group; closes them all at the end."""

    def __init__(self, group: SentinelGroup) -> None:
        self.group = group
        self._made: list[RedisRepository] = []

    @staticmethod
    def transport(repo: RedisRepository) -> SentinelTransport:
        """The sentinel transport under ``repo`` (built on its first command)."""
        transport = repo._current_transport()
        assert isinstance(transport, SentinelTransport)
        return transport

    def __call__(self, url: str | None = None, **settings: Any) -> RedisRepository:
        """A repository on ``url`` (the group's ``redis+sentinel://`` URL by default)."""
        repo = RedisRepository(RedisConfig(url=url or self.group.url, **settings))
        self._made.append(repo)
        return repo

    async def close(self) -> None:
        for repo in self._made:
            await repo.disconnect()


@pytest.fixture
async def sentinel_repo(sentinel_group: SentinelGroup) -> AsyncIterator[SentinelRepositories]:
    """A factory of repositories on the module's sentinel group."""
    factory = SentinelRepositories(sentinel_group)
    try:
        yield factory
    finally:
        await factory.close()
