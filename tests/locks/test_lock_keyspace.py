"""Where a lock keeps its state: no key left per lock name, no key another name can reach.

A lock per order id (the framework page's pattern) must not leave a key
behind per order, and the lock's companion keys (fencing counter, queue of
waiters, wake-up lists) must not collide with another lock's key or with an
application's keys.
"""

from __future__ import annotations

import asyncio

import pytest

from neuroglia.data.redis import (
    DistributedLock,
    InvalidArgumentError,
    RedisRepository,
    fenced_set_async,
)
from neuroglia.data.redis.locks.keyspace import RESERVED, LockKeys, hash_slot, slot_tag
from tests.support.repositories import RepositoryFactory

pytestmark = pytest.mark.timeout(60)


async def _all_keys(repo: RedisRepository) -> list[object]:
    return [k async for k in repo.scan_async("*")]


async def test_a_lock_per_order_leaves_no_key_per_order(backend: RedisRepository, backend_kind: str) -> None:
    for order in range(60):
        async with DistributedLock(backend, f"mario_pizzeria:order_lock:{order}", timeout=5):
            pass
    left = await _all_keys(backend)
    if backend_kind == "cluster":
        # A script touches one slot: one fencing counter per hash slot used, nothing else.
        assert all(bytes(key).startswith(b"\xfflock{") and bytes(key).endswith(b"}fencing") for key in left)
        assert len(left) <= 60
    else:
        # One fencing counter for every lock of the repository, nothing per order.
        assert len(left) <= 1


async def test_tokens_stay_strictly_increasing_per_name_across_names(backend: RedisRepository) -> None:
    seen: dict[str, list[int]] = {"a": [], "b": [], "c": []}
    for name in "abcabcbbaacc":
        lock = DistributedLock(backend, name, timeout=5)
        async with lock:
            assert lock.fencing_token is not None
            seen[name].append(lock.fencing_token)
    for tokens in seen.values():
        assert tokens == sorted(set(tokens))


async def test_a_counter_left_by_an_earlier_version_is_never_undercut(backend: RedisRepository) -> None:
    # Earlier versions kept one counter per lock at "<key>:fencing" and handed
    # out its values; a protected store may hold a token as high as it.
    await backend.set_async("{t}reports:nightly:fencing", "1000")
    lock = DistributedLock(backend, "{t}reports:nightly", timeout=5)
    async with lock:
        first = lock.fencing_token
        assert first is not None
        assert first > 1000
    async with lock:
        second = lock.fencing_token
        assert second is not None
        assert second > first
    # Not ours to write or delete: it may as well be an application's key.
    assert await backend.get_async("{t}reports:nightly:fencing") == "1000"


async def test_a_guard_left_by_an_earlier_version_still_refuses_older_tokens(backend: RedisRepository) -> None:
    await backend.set_async("{t}stock:fencing", "7")  # the guard earlier versions kept beside "{t}stock"
    assert not await fenced_set_async(backend, "{t}stock", "stale", 6)
    assert await backend.get_async("{t}stock") is None
    assert await fenced_set_async(backend, "{t}stock", "fresh", 8)
    assert not await fenced_set_async(backend, "{t}stock", "stale again", 7)
    assert await backend.get_async("{t}stock") == "fresh"


async def test_fenced_writes_leave_only_the_value_under_its_own_name(backend: RedisRepository) -> None:
    assert await fenced_set_async(backend, "report", "v1", 3)
    assert not await backend.exists_async("report:fencing")
    await backend.set_async("report:fencing", "an application's value")
    assert await fenced_set_async(backend, "report", "v2", 4)
    assert not await fenced_set_async(backend, "report", "v0", 2)
    assert await backend.get_async("report:fencing") == "an application's value"


async def test_a_lock_named_like_a_companion_of_another_is_its_own_lock(backend: RedisRepository) -> None:
    async with DistributedLock(backend, "job", timeout=5):
        pass
    for name in ("job:fencing", "job:waiters", "job:alive", "job:wake:x"):
        lock = DistributedLock(backend, name, timeout=5, wait_timeout=0)
        assert await lock.acquire(blocking=False), name
        await lock.release()


async def test_application_keys_named_like_companions_do_not_break_a_contended_lock(
    repo_factory: RepositoryFactory, backend_url: str
) -> None:
    repo = await repo_factory()
    other = await repo_factory()  # another process
    await repo.rpush_async("q:waiters", "an application's list")
    await repo.hset_async("q:alive", mapping={"app": "hash"})
    await repo.sadd_async("q:fencing", "an application's set")
    holder = DistributedLock(other, "q", timeout=5)
    await holder.acquire()

    async def wait_then_hold() -> int | None:
        lock = DistributedLock(repo, "q", timeout=5, wait_timeout=5)
        async with lock:
            return lock.fencing_token

    waiter = asyncio.create_task(wait_then_hold())
    await asyncio.sleep(0.1)  # queued in Redis behind the holder
    assert not waiter.done()
    first = holder.fencing_token
    await holder.release()
    token = await asyncio.wait_for(waiter, 5)
    assert first is not None
    assert token is not None
    assert token > first
    assert await repo.lrange_async("q:waiters") == ["an application's list"]
    assert await repo.hgetall_async("q:alive") == {"app": "hash"}
    assert await repo.smembers_async("q:fencing") == {"an application's set"}


async def test_prefixed_repositories_keep_their_lock_state_apart(
    repo_factory: RepositoryFactory, backend_url: str
) -> None:
    raw = await repo_factory()
    tenant_a = await repo_factory(key_prefix="a:")
    tenant_b = await repo_factory(key_prefix="b:")
    async with DistributedLock(tenant_a, "job", timeout=5), DistributedLock(tenant_b, "job", timeout=5):
        assert await raw.exists_async("a:job")
        assert await raw.exists_async("b:job")
    keys = await _all_keys(raw)
    # Whatever the locks left lies under each repository's own prefix.
    assert all(isinstance(k, bytes | str) and (k[:2] in (b"a:", b"b:", "a:", "b:")) for k in keys), keys


async def test_lock_names_in_the_reserved_namespace_are_refused(backend: RedisRepository) -> None:
    with pytest.raises(InvalidArgumentError):
        DistributedLock(backend, b"\xfflock:fencing", timeout=5)


# -- the key names themselves -------------------------------------------------------


def test_hash_slots_follow_the_cluster_specification() -> None:
    assert hash_slot("123456789") == 0x31C3  # CRC16/XMODEM's check value (below 16384)
    assert hash_slot("{user1000}.following") == hash_slot("{user1000}.followers") == hash_slot("user1000")
    assert hash_slot("foo{}{bar}") == hash_slot(b"foo{}{bar}")  # an empty tag: the whole key
    assert hash_slot("foo{{bar}}zap") == hash_slot("{bar")
    assert hash_slot("foo{bar}{zap}") == hash_slot("bar")


def test_a_tag_exists_for_every_slot() -> None:
    tags = [slot_tag(slot) for slot in range(16384)]
    assert [hash_slot(b"{" + tag + b"}") for tag in tags] == list(range(16384))
    assert all(len(tag) == 4 and b"{" not in tag and b"}" not in tag for tag in tags)
    with pytest.raises(InvalidArgumentError):
        slot_tag(16384)


@pytest.mark.parametrize(
    ("prefix", "key"),
    [
        ("", "job"),
        ("app:", "orders:lock:42"),
        ("app:", "{order:42}:lock"),
        ("", "a}b{"),
        ("", "x{}y"),
        ("{tenant}:", "job"),
        ("app:", b"\x00binary\xfe"),
        ("caf\u00e9:", "k\u00fcche"),
    ],
)
@pytest.mark.parametrize("slot_counters", [False, True])
def test_companions_share_the_lock_keys_slot_and_sit_in_the_reserved_namespace(
    prefix: str, key: str | bytes, slot_counters: bool
) -> None:
    full = prefix + key if isinstance(key, str) else prefix.encode() + key
    keys = LockKeys(prefix, key, full, slot_counters=slot_counters)
    count, lock, counter, *companions = keys.script
    assert count == len(keys.script) - 1
    assert lock == full
    raw_prefix = prefix.encode() + RESERVED
    for companion in (*companions[:4], prefix.encode() + keys.wake("waiter-1")):
        assert isinstance(companion, bytes)
        assert companion.startswith(raw_prefix)
        assert hash_slot(companion) == hash_slot(full), companion
    assert counter.startswith(raw_prefix)
    if slot_counters:
        assert hash_slot(counter) == hash_slot(full)
    else:
        assert counter == raw_prefix + b":fencing"
    legacy = companions[4:]
    # The old per-lock counter is read unless, on a cluster, it lies in another slot.
    raw_full = full.encode() if isinstance(full, str) else full
    assert legacy == (
        []
        if slot_counters and hash_slot(raw_full + b":fencing") != hash_slot(full)
        else [full + (":fencing" if isinstance(full, str) else b":fencing")]
    )


def test_companions_of_different_names_never_meet() -> None:
    names = ["job", "job:fencing", "job:waiters", "3:job", "job:3", "jo", "b:job", "", "\xff", "j\u00f6b"]
    seen: dict[bytes, str] = {}
    for name in filter(None, names):
        keys = LockKeys("", name, name)
        for companion in (*keys.script[3:7], keys.wake("1")):
            assert isinstance(companion, bytes)
            assert seen.setdefault(companion, name) == name
