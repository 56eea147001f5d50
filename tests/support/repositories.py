"""The one way the suites build repositories: :class:`RepositoryFactory` (the ``repo_factory`` fixture)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from neuroglia.data.redis import RedisConfig, RedisRepository

__all__ = ["RepositoryFactory", "clean_repository"]


class RepositoryFactory:
    """Builds a test's repositories and disconnects them all when the test ends.

    ``url`` is the default target: the test's backend (``memory://`` or the
    session's private server, parametrized by ``backend_url``) when the test
    runs on one. Repositories made by one factory on one URL share the data,
    like several processes would, each with its own connections.
    """

    def __init__(self, url: str | None = None) -> None:
        self.url = url
        self._made: list[RedisRepository] = []

    def make(self, config: RedisConfig | str | None = None, **settings: Any) -> RedisRepository:
        """A repository, not connected yet, on ``config`` (a config or URL; the default URL when ``None``)."""
        if not isinstance(config, RedisConfig):
            url = config if config is not None else self.url
            if url is None:
                raise ValueError("this test runs on no backend: pass a URL or a config")
            config = RedisConfig(url=url, **settings)
        elif settings:
            raise ValueError("settings go in the config when a config is given")
        repo = RedisRepository(config)
        self._made.append(repo)
        return repo

    async def __call__(self, config: RedisConfig | str | None = None, **settings: Any) -> RedisRepository:
        """Like :meth:`make`, connected."""
        repo = self.make(config, **settings)
        await repo.connect()
        return repo

    async def close(self) -> None:
        for repo in reversed(self._made):
            await repo.disconnect()
        self._made.clear()


@contextlib.asynccontextmanager
async def clean_repository(config: RedisConfig) -> AsyncIterator[RedisRepository]:
    """Connect a repository, ``FLUSHDB`` its database, and disconnect it at the end."""
    repo = RedisRepository(config)
    await repo.connect()
    try:
        await repo.flushdb()
        yield repo
    finally:
        await repo.disconnect()
