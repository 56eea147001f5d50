"""A helper the suites share: a connected repository on an emptied database."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from neuroglia.data.redis import RedisConfig, RedisRepository


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
