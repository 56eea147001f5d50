"""Sizes and encodings: what fits round-trips exactly; what does not is refused before sending."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

from neuroglia.data.redis import (
    InvalidArgumentError,
    RedisConfig,
    RedisHashRepository,
    RedisRepository,
)
from neuroglia.data.redis.core import arguments as repository_module
from neuroglia.data.redis.testing import RedisEndpoint
from tests.support.repositories import clean_repository

if TYPE_CHECKING:
    from tests.support.repositories import RepositoryFactory

LIMIT = 512 * 1024 * 1024


@pytest.fixture
async def real(redis_server: RedisEndpoint) -> AsyncIterator[RedisRepository]:
    async with clean_repository(RedisConfig(url=redis_server.url, connection_pool={"socket_timeout": 30})) as repo:
        yield repo


async def sent_commands(repo: RedisRepository) -> int:
    info = await repo.info("stats")
    return int(info["total_commands_processed"])


async def test_oversized_values_are_refused_before_reaching_the_server(real: RedisRepository) -> None:
    too_big = b"\x00" * (LIMIT + 1)
    before = await sent_commands(real)
    attempts: list[Any] = [
        lambda: real.set_async("big", too_big),
        lambda: real.set_async("big", memoryview(too_big)),
        lambda: real.hset_async("h", "f", too_big),
        lambda: real.rpush_async("l", "small", too_big),
        lambda: real.set_many_async({"a": "1", "b": too_big}),
        lambda: real.set_object_async("o", "x" * (LIMIT - 1)),  # JSON's quotes take it past the limit
    ]
    for attempt in attempts:
        # The typed value meets the envelope's max_value_bytes (64 MiB by default) first.
        with pytest.raises(InvalidArgumentError, match=r"512 MiB|max_value_bytes"):
            await attempt()
    with pytest.raises(InvalidArgumentError, match="512 MiB"):
        await real.set_async("big", "a" * (LIMIT + 1))
    # Only the INFO of sent_commands itself reached the server.
    assert await sent_commands(real) == before + 1
    assert await real.dbsize() == 0


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_the_limit_is_exact(backend: str, redis_server: RedisEndpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the limit scaled down, a value of exactly the limit passes and one byte more does not."""
    url = "memory://" if backend == "memory" else redis_server.url
    monkeypatch.setattr(repository_module, "MAX_VALUE_BYTES", 1024)
    async with RedisRepository(RedisConfig(url=url)) as repo:
        await repo.set_async("limits:exact", b"x" * 1024)
        assert await repo.get_async("limits:exact") == "x" * 1024
        await repo.set_async("limits:text", "é" * 512)  # 1024 bytes of UTF-8
        assert await repo.get_async("limits:text") == "é" * 512
        with pytest.raises(InvalidArgumentError, match="512 MiB"):
            await repo.set_async("limits:over", b"x" * 1025)
        with pytest.raises(InvalidArgumentError, match="512 MiB"):
            await repo.set_async("limits:over", "é" * 512 + "x")
        assert await repo.exists_async("limits:over") is False
        await repo.delete_async("limits:exact", "limits:text")


async def test_a_value_of_exactly_512_mib_round_trips_on_memory() -> None:
    value = os.urandom(4096) * (LIMIT // 4096)
    assert len(value) == LIMIT
    async with RedisRepository(RedisConfig(url="memory://")) as repo:
        assert await repo.set_async("max", value) is True
        assert await repo.get_async("max") == value


async def test_large_binary_values_round_trip_on_a_real_server(real: RedisRepository) -> None:
    value = os.urandom(1024 * 1024) * 48  # 48 MiB, not UTF-8
    await real.set_async("large", value)
    assert await real.get_async("large") == value
    raw = RedisRepository(RedisConfig(url=real.config.redacted_url, serializer="raw"))
    async with raw:
        await raw.set_object_async("large-object", value)  # compressed in the envelope
        assert await raw.get_object_async("large-object") == value


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_lone_surrogates_are_refused_and_the_connection_stays_usable(
    backend: str, redis_server: RedisEndpoint
) -> None:
    url = "memory://" if backend == "memory" else redis_server.url
    async with RedisRepository(RedisConfig(url=url)) as repo:
        for attempt in (
            lambda: repo.set_async("surrogate:\ud800", "v"),
            lambda: repo.set_async("surrogate:k", "\udfff"),
            lambda: repo.hset_async("surrogate:h", "\ud83d", "v"),
            lambda: repo.delete_pattern_async("surrogate:\ud800*"),
        ):
            with pytest.raises(InvalidArgumentError, match="not valid Unicode text"):
                await attempt()
        assert await repo.set_async("surrogate:ok", "\U0001f355") is True
        assert await repo.get_async("surrogate:ok") == "\U0001f355"
        await repo.delete_async("surrogate:ok")


async def test_hash_entities_with_any_text(repo_factory: RepositoryFactory, backend_url: str) -> None:
    repo = await repo_factory()
    things = RedisHashRepository[dict](repo, dict, key_prefix="thing")  # type: ignore[type-arg]
    entity = {"id": "ü:*\n", "text": "\x00\U0001f355\r\n*", "list": ["\u2028", "\ufeff", "a\x00b"]}
    await things.add_async(entity)
    assert await things.get_async("ü:*\n") == entity
