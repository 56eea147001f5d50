"""Repositories on the module's Sentinel group (the testing kit's ``sentinel_group`` fixture).

``sentinel_repo`` builds repositories that reach the group through its
sentinels, and closes them (and their transports) after the test.
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
        self._made: list[tuple[RedisRepository, SentinelTransport]] = []

    def transport(self, repo: RedisRepository) -> SentinelTransport:
        """The sentinel transport under ``repo``."""
        for made, transport in self._made:
            if made is repo:
                return transport
        raise LookupError("not a repository of this factory")

    def __call__(
        self,
        *,
        service_name: str | None = None,
        read_from: str = "primary",
        sentinels: list[tuple[str, int]] | None = None,
        **settings: Any,
    ) -> RedisRepository:
        config = RedisConfig(url="redis://127.0.0.1:1/0", **settings)  # the address comes from the sentinels
        transport = SentinelTransport(
            config,
            sentinels=sentinels if sentinels is not None else self.group.sentinel_addresses,
            service_name=service_name or self.group.service_name,
            read_from=read_from,
        )
        repo = RedisRepository(config, transport=transport)
        self._made.append((repo, transport))
        return repo

    async def close(self) -> None:
        for repo, transport in self._made:
            await repo.disconnect()
            await transport.close()


@pytest.fixture
async def sentinel_repo(sentinel_group: SentinelGroup) -> AsyncIterator[SentinelRepositories]:
    """A factory of repositories on the module's sentinel group."""
    factory = SentinelRepositories(sentinel_group)
    try:
        yield factory
    finally:
        await factory.close()
