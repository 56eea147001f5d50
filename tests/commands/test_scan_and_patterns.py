"""Contract: scan_async, delete_pattern_async, escape_pattern and the key prefix."""

from __future__ import annotations

import pytest

from neuroglia.data.redis import InvalidArgumentError, RedisRepository, escape_pattern
from tests.support.repositories import RepositoryFactory


async def collect(repo: RedisRepository, pattern: str = "*", **kwargs: object) -> set[str]:
    return {key async for key in repo.scan_async(pattern, **kwargs)}  # type: ignore[arg-type]


async def test_scan_finds_matching_keys_only(backend: RedisRepository) -> None:
    await backend.set_many_async({"menu:1": "a", "menu:2": "b", "order:1": "c"})
    assert await collect(backend, "menu:*") == {"menu:1", "menu:2"}
    assert await collect(backend) == {"menu:1", "menu:2", "order:1"}
    assert await collect(backend, "nothing:*") == set()


async def test_scan_walks_every_page(backend: RedisRepository) -> None:
    await backend.set_many_async({f"item:{i}": str(i) for i in range(120)})
    assert await collect(backend, "item:*", count=7) == {f"item:{i}" for i in range(120)}


async def test_scan_filters_by_type(backend: RedisRepository) -> None:
    await backend.set_async("x:string", "v")
    await backend.hset_async("x:hash", "f", "v")
    assert await collect(backend, "x:*", type="hash") == {"x:hash"}


async def test_delete_pattern_leaves_unrelated_keys_alone(backend: RedisRepository) -> None:
    await backend.set_many_async(
        {
            "mario_pizzeria:menu:item:1": "a",
            "mario_pizzeria:menu:item:2": "b",
            "mario_pizzeria:menu:category:1": "c",
            "mario_pizzeria:orders:1": "d",
            "other:menu:item:1": "e",
        }
    )
    await backend.hset_async("mario_pizzeria:menu:item:hash", "f", "v")
    deleted = await backend.delete_pattern_async("mario_pizzeria:menu:item:*")
    assert deleted == 3
    assert await collect(backend) == {
        "mario_pizzeria:menu:category:1",
        "mario_pizzeria:orders:1",
        "other:menu:item:1",
    }


async def test_delete_pattern_with_no_match_deletes_nothing(backend: RedisRepository) -> None:
    await backend.set_async("keep", "v")
    assert await backend.delete_pattern_async("gone:*") == 0
    assert await backend.get_async("keep") == "v"


async def test_delete_pattern_in_batches_larger_than_batch_size(backend: RedisRepository) -> None:
    await backend.set_many_async({f"bulk:{i}": "x" for i in range(257)})
    await backend.set_many_async({f"keep:{i}": "x" for i in range(13)})
    assert await backend.delete_pattern_async("bulk:*", batch_size=10) == 257
    assert await collect(backend, "bulk:*") == set()
    assert await collect(backend) == {f"keep:{i}" for i in range(13)}


async def test_escape_pattern_escapes_every_glob_character() -> None:
    assert escape_pattern("a*b?c[d]e\\f") == "a\\*b\\?c\\[d\\]e\\\\f"
    assert escape_pattern("plain:id-42") == "plain:id-42"
    assert RedisRepository.escape_pattern("*") == "\\*"


async def test_escaped_glob_characters_match_only_literally(backend: RedisRepository) -> None:
    keys = {
        "user:*:cart": "literal star",
        "user:alice:cart": "a",
        "user:bob:cart": "b",
        "user:?:cart": "literal question",
        "user:x:cart": "x",
        "user:[ab]:cart": "literal brackets",
        "user:a:cart": "a1",
        "user:back\\slash:cart": "backslash",
    }
    await backend.set_many_async(keys)
    assert await collect(backend, f"user:{escape_pattern('*')}:*") == {"user:*:cart"}
    assert await backend.delete_pattern_async(f"user:{escape_pattern('*')}:*") == 1
    assert await backend.delete_pattern_async(f"user:{escape_pattern('?')}:cart") == 1
    assert await backend.delete_pattern_async(f"user:{escape_pattern('[ab]')}:cart") == 1
    backslash = escape_pattern("back\\slash")
    assert await backend.delete_pattern_async(f"user:{backslash}:*") == 1
    assert await collect(backend) == {"user:alice:cart", "user:bob:cart", "user:x:cart", "user:a:cart"}


async def test_key_prefix_is_applied_and_stripped(backend: RedisRepository, prefixed_backend: RedisRepository) -> None:
    await prefixed_backend.set_async("k", "v")
    assert await prefixed_backend.get_async("k") == "v"
    assert await backend.get_async("app:k") == "v"
    assert await backend.get_async("k") is None
    assert await collect(prefixed_backend) == {"k"}
    assert await collect(backend) == {"app:k"}


async def test_key_prefix_applies_to_every_key_argument(
    backend: RedisRepository, prefixed_backend: RedisRepository
) -> None:
    await prefixed_backend.set_many_async({"a": "1", "b": "2"})
    assert await prefixed_backend.get_many_async(["a", "b"]) == {"a": "1", "b": "2"}
    await prefixed_backend.sadd_async("{t}s1", "x", "y")
    await prefixed_backend.sadd_async("{t}s2", "y")
    assert await prefixed_backend.sinterstore_async("{t}s3", ["{t}s1", "{t}s2"]) == 1
    await prefixed_backend.rpush_async("q", "job")
    assert await prefixed_backend.blpop_async("q", 1) == ("q", "job")
    assert await collect(backend) == {"app:a", "app:b", "app:{t}s1", "app:{t}s2", "app:{t}s3"}


async def test_delete_pattern_with_a_key_prefix(backend: RedisRepository, prefixed_backend: RedisRepository) -> None:
    await backend.set_many_async({"menu:1": "unprefixed", "other:menu:1": "x"})
    await prefixed_backend.set_many_async({"menu:1": "a", "menu:2": "b", "orders:1": "c"})
    assert await prefixed_backend.delete_pattern_async("menu:*") == 2
    assert await collect(prefixed_backend) == {"orders:1"}
    assert await collect(backend) == {"menu:1", "other:menu:1", "app:orders:1"}
    assert await backend.get_async("menu:1") == "unprefixed"


async def test_prefix_with_glob_characters_is_matched_literally(
    repo_factory: RepositoryFactory, backend_url: str
) -> None:
    plain = await repo_factory()
    starred = await repo_factory(key_prefix="t*:")
    await plain.set_async("tx:a", "must stay")
    await starred.set_async("a", "mine")
    assert await collect(starred) == {"a"}
    assert await starred.delete_pattern_async("*") == 1
    assert await plain.get_async("tx:a") == "must stay"


async def test_pattern_must_be_a_non_empty_str(backend: RedisRepository) -> None:
    with pytest.raises(InvalidArgumentError, match="pattern"):
        await backend.delete_pattern_async("")
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        await backend.delete_pattern_async("x:*", batch_size=0)
