"""Key injection: untrusted key parts can neither widen a pattern nor reach another key.

Runs on memory:// and on a private redis-server (``repo_factory``).
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from neuroglia.data.redis import (
    InvalidArgumentError,
    RedisHashRepository,
    RedisRepository,
    build_key,
    build_pattern,
    escape_pattern,
)

if TYPE_CHECKING:
    from tests.support.repositories import RepositoryFactory

HOSTILE_IDS = ["*", "?", "[a-z]*", "\\", "42:*", "42:admin", "%3A", "a%", "", " ", "\n", "\x00", "ü*", "[", "]"]


def test_build_key_joins_and_escapes() -> None:
    assert build_key("mario_pizzeria", "sessions", "42") == "mario_pizzeria:sessions:42"
    assert build_key("orders", 42, uuid.UUID(int=1)) == "orders:42:00000000-0000-0000-0000-000000000001"
    assert build_key("sessions", "42:admin") == "sessions:42%3Aadmin"
    assert build_key("a%3Ab") == "a%253Ab"
    assert build_key("glob*?[]") == "glob*?[]"  # a key may hold glob characters; patterns escape them
    assert RedisRepository.build_key("x", "y") == "x:y"
    assert RedisRepository.build_pattern("x", "*") == "x:\\*:*"


def test_build_key_never_collides() -> None:
    lists = [("a", "b:c"), ("a:b", "c"), ("a", "b", "c"), ("a%3Ab", "c"), ("a:b:c",), ("a", "b%3Ac")]
    keys = [build_key(*parts) for parts in lists]
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize(
    ("parts", "problem"),
    [
        ((), "at least one part"),
        (("orders", ""), "key part 1 is empty"),
        (("orders", None), "must be str, int or UUID"),
        (("orders", b"bytes"), "must be str, int or UUID"),
        (("orders", True), "must be str, int or UUID"),
        (("orders", 1.5), "must be str, int or UUID"),
        (("orders", "\ud800"), "lone surrogate"),
    ],
)
def test_build_key_refuses_bad_parts(parts: tuple[Any, ...], problem: str) -> None:
    with pytest.raises(InvalidArgumentError, match=problem):
        build_key(*parts)


@pytest.mark.parametrize("hostile", [h for h in HOSTILE_IDS if h])
async def test_a_hostile_id_cannot_widen_a_pattern_delete(
    repo_factory: RepositoryFactory, hostile: str, backend_url: str
) -> None:
    repo = await repo_factory(key_prefix="app:")
    victims = [build_key("orders", "42", "a"), build_key("orders", "43", "b"), "orders:42", "ordersX"]
    for key in victims:
        await repo.set_async(key, "keep")
    mine = build_key("orders", hostile, "cart")
    await repo.set_async(mine, "mine")
    assert await repo.delete_pattern_async(build_pattern("orders", hostile)) == 1
    assert [await repo.get_async(k) for k in victims] == ["keep"] * len(victims)
    assert await repo.get_async(mine) is None
    # escape_pattern alone protects a scan the same way.
    await repo.set_async(f"user:{hostile}:x", "1")
    assert [k async for k in repo.scan_async(f"user:{escape_pattern(hostile)}:*")] == [f"user:{hostile}:x"]


async def test_unescaped_patterns_are_the_danger(repo_factory: RepositoryFactory, backend_url: str) -> None:
    repo = await repo_factory()
    for customer in ("1", "2", "3"):
        await repo.set_async(f"orders:{customer}:cart", "x")
    hostile = "*"
    assert await repo.delete_pattern_async(f"orders:{escape_pattern(hostile)}:*") == 0
    assert await repo.delete_pattern_async(f"orders:{hostile}:*") == 3  # what escaping prevents


@dataclasses.dataclass
class Profile:
    id: str
    role: str


async def test_hash_repository_ids_cannot_reach_other_keys(repo_factory: RepositoryFactory, backend_url: str) -> None:
    repo = await repo_factory()
    profiles = RedisHashRepository[Profile](repo, Profile, key_prefix="profile")
    admins = RedisHashRepository[Profile](repo, Profile, key_prefix="profile:admin")
    await admins.add_async(Profile("1", "admin"))
    # Without escaping, id "admin:1" would be the key "profile:admin:1": the admin's record.
    await profiles.add_async(Profile("admin:1", "user"))
    assert profiles.key("admin:1") == "profile:admin%3A1"
    assert await admins.get_async("1") == Profile("1", "admin")
    assert await profiles.get_async("admin:1") == Profile("admin:1", "user")
    assert await profiles.get_async("admin%3A1") is None
    assert profiles.key("100%") == "profile:100%25"


async def test_keys_with_separators_glob_and_control_characters_round_trip(
    repo_factory: RepositoryFactory, backend_url: str
) -> None:
    repo = await repo_factory(key_prefix="app:")
    for hostile in [h for h in HOSTILE_IDS if h]:
        key = build_key("k", hostile)
        await repo.set_async(key, hostile)
        assert await repo.get_async(key) == hostile
        assert await repo.exists_async(key) is True
    found = {k async for k in repo.scan_async(build_pattern("k"))}
    assert found == {build_key("k", h) for h in HOSTILE_IDS if h}
