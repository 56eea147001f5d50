"""What each multi-key method does on a cluster when its keys are in different hash slots.

Split and merged (get_many, set_many, delete, exists_many), computed from
the members (sinter/sunion/sdiff), scanned on every primary (scan,
delete_pattern), summed or merged (dbsize, info, flushdb, ping), or refused
before anything is sent with an error that names the slots and explains hash
tags (*store forms, lmove, scripts, transactions, WATCH sessions).
"""

from __future__ import annotations

import asyncio

import pytest

from neuroglia.data.redis import CacheCommandError, RedisConfig, RedisRepository
from neuroglia.data.redis.testing import LocalCluster, key_slot
from tests.support.repositories import RepositoryFactory

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

# Keys spread over every primary (checked below), and keys sharing the tag {t}.
SPREAD = [f"key:{n}" for n in range(40)]


def _nodes_of(cluster: LocalCluster, keys: list[str]) -> set[int]:
    return {cluster.primary_of(key).port for key in keys}


async def test_the_spread_keys_reach_every_primary(redis_cluster: LocalCluster) -> None:
    assert len(_nodes_of(redis_cluster, SPREAD)) == 3
    assert key_slot("{order:42}:items") == key_slot("{order:42}:total") == key_slot("order:42")


async def test_get_many_set_many_delete_exists_split_by_slot_in_the_callers_order(
    cluster_repo: RedisRepository,
) -> None:
    values = {key: f"v{n}" for n, key in enumerate(SPREAD)}
    await cluster_repo.set_many_async(values)
    asked = [*reversed(SPREAD), "missing:1", SPREAD[0]]
    got = await cluster_repo.get_many_async(asked)
    assert list(got) == list(dict.fromkeys(asked))
    assert got == {**{key: values[key] for key in SPREAD}, "missing:1": None}
    assert await cluster_repo.exists_many_async([*SPREAD, "missing:1"]) == 40
    assert await cluster_repo.delete_async([*SPREAD[:10], "missing:2"]) == 10
    assert await cluster_repo.exists_many_async(SPREAD) == 30
    await cluster_repo.set_many_async({key: "x" for key in SPREAD[:10]}, expiration=60)
    ttls = [await cluster_repo.ttl_async(key) for key in SPREAD[:10]]
    assert all(0 < ttl <= 60 for ttl in ttls), ttls
    assert await cluster_repo.dbsize() == 40


async def test_set_algebra_across_slots_is_computed_from_the_members(cluster_repo: RedisRepository) -> None:
    await cluster_repo.sadd_async("vip", "c1", "c2", "c3")
    await cluster_repo.sadd_async("vegetarian", "c2", "c3", "c4")
    await cluster_repo.sadd_async("weekday", "c5")
    assert len({key_slot(k) for k in ("vip", "vegetarian", "weekday")}) == 3
    assert await cluster_repo.sinter_async(["vip", "vegetarian"]) == {"c2", "c3"}
    assert await cluster_repo.sunion_async(["vip", "vegetarian", "weekday"]) == {"c1", "c2", "c3", "c4", "c5"}
    assert await cluster_repo.sdiff_async("vip", "vegetarian") == {"c1"}
    assert await cluster_repo.sinter_async(["vip", "missing"]) == set()


async def test_store_forms_moves_and_scripts_across_slots_are_refused_naming_the_slots(
    cluster_repo: RedisRepository,
) -> None:
    await cluster_repo.sadd_async("vip", "c1")
    await cluster_repo.rpush_async("pending", "o1")
    refused = {
        "SINTERSTORE": cluster_repo.sinterstore_async("both", ["vip", "vegetarian"]),
        "SUNIONSTORE": cluster_repo.sunionstore_async("both", ["vip", "vegetarian"]),
        "SDIFFSTORE": cluster_repo.sdiffstore_async("both", "vip", "vegetarian"),
        "LMOVE": cluster_repo.lmove_async("pending", "processing"),
        "EVAL": cluster_repo.eval_async("return 1", ["vip", "pending"]),
    }
    for name, call in refused.items():
        with pytest.raises(CacheCommandError) as info:
            await call
        text = str(info.value)
        assert text.startswith(name), text
        assert f"in slot {key_slot('vip') if name != 'LMOVE' else key_slot('pending')}" in text
        assert "hash tag" in text
        assert "{order:42}" in text
    assert await cluster_repo.lrange_async("pending") == ["o1"]  # nothing was sent
    # With a common hash tag the same calls run on the server.
    await cluster_repo.sadd_async("{c}vip", "c1", "c2")
    await cluster_repo.sadd_async("{c}vegetarian", "c2")
    assert await cluster_repo.sinterstore_async("{c}both", ["{c}vip", "{c}vegetarian"]) == 1
    await cluster_repo.rpush_async("{q}pending", "o1")
    assert await cluster_repo.lmove_async("{q}pending", "{q}processing") == "o1"
    assert await cluster_repo.eval_async("return redis.call('SCARD', KEYS[1])", ["{c}vip", "{c}both"]) == 2


async def test_transactions_and_watch_sessions_across_slots_are_refused(cluster_repo: RedisRepository) -> None:
    tx = cluster_repo.transaction()
    tx.set_async("a", "1").set_async("b", "2")
    with pytest.raises(CacheCommandError, match=r"MULTI: the keys are in different hash slots.*transaction"):
        await tx.execute()
    assert await cluster_repo.exists_many_async(["a", "b"]) == 0
    async with cluster_repo.transaction() as tx:
        tx.set_async("{o}a", "1").incr_async("{o}n")
    assert tx.results == [True, 1]
    async with cluster_repo.watch("{o}a") as watch:
        tx = watch.transaction()
        tx.set_async("elsewhere", "x")
        with pytest.raises(CacheCommandError, match="WATCH session"):
            await tx.execute()
    async with cluster_repo.watch("{o}a") as watch:
        assert await watch.get_async("{o}a") == "1"
        async with watch.transaction() as tx:
            tx.set_async("{o}a", "2")
    assert await cluster_repo.get_async("{o}a") == "2"


async def test_a_pipeline_over_every_node_answers_in_order(cluster_repo: RedisRepository) -> None:
    pipe = cluster_repo.pipeline()
    for n, key in enumerate(SPREAD):
        pipe.set_async(key, str(n))
        pipe.incr_async(key)
    pipe.get_many_async(SPREAD[:5]).sinterstore_async("x", ["a", "b"])
    results = await pipe.execute(raise_on_error=False)
    assert results[: 2 * len(SPREAD)] == [r for n in range(len(SPREAD)) for r in (True, n + 1)]
    assert results[-2] == {key: str(n + 1) for n, key in enumerate(SPREAD[:5])}
    assert isinstance(results[-1], CacheCommandError)


async def test_scan_and_delete_pattern_cover_every_primary_and_spare_the_replicas(
    cluster_repo: RedisRepository, redis_cluster: LocalCluster
) -> None:
    await cluster_repo.set_many_async({key: "v" for key in SPREAD})
    await cluster_repo.set_async("other", "v")
    seen = [key async for key in cluster_repo.scan_async("key:*", count=3)]
    assert sorted(seen) == sorted(SPREAD)
    assert await cluster_repo.delete_pattern_async("key:*", batch_size=7) == 40
    assert [key async for key in cluster_repo.scan_async("*")] == ["other"]
    assert await cluster_repo.dbsize() == 1
    # The replicas follow their primaries; nothing was sent to them.
    for node in redis_cluster.nodes:
        if node.role == "slave":
            for _ in range(100):
                if int(node.call("DBSIZE")) <= 1:
                    break
                await asyncio.sleep(0.02)
            assert int(node.call("DBSIZE")) <= 1


async def test_server_commands_are_per_node_and_aggregated(
    cluster_repo: RedisRepository, redis_cluster: LocalCluster
) -> None:
    await cluster_repo.set_many_async({key: "v" for key in SPREAD})
    assert await cluster_repo.ping() is True
    assert await cluster_repo.dbsize() == 40 == sum(int(n.call("DBSIZE")) for n in redis_cluster.primaries())
    info = await cluster_repo.info()
    assert info["cluster_primaries"] == 3
    assert info["db0"]["keys"] == 40
    assert info["redis_version"].startswith("7.")
    assert await cluster_repo.memory_usage() > 0
    assert await cluster_repo.flushdb() is True
    assert all(int(n.call("DBSIZE")) == 0 for n in redis_cluster.primaries())


async def test_locks_fence_per_slot_and_stay_monotonic(cluster_repo: RedisRepository) -> None:
    from neuroglia.data.redis import DistributedLock

    tokens: dict[str, list[int]] = {name: [] for name in ("a", "b", "c", "{a}b")}
    for name in ["a", "b", "c", "{a}b"] * 3:
        lock = DistributedLock(cluster_repo, name, timeout=5)
        async with lock:
            assert lock.fencing_token is not None
            tokens[name].append(lock.fencing_token)
    assert all(t == sorted(set(t)) for t in tokens.values())


async def test_replica_reads(redis_cluster: LocalCluster, repo_factory: RepositoryFactory) -> None:
    writer = await repo_factory(redis_cluster.url)
    reader = await repo_factory(RedisConfig(url=redis_cluster.url, read_from="replica"))
    await writer.set_async("replicated", "yes")
    for _ in range(200):  # replication is asynchronous: the replica catches up
        if await reader.get_async("replicated") == "yes":
            break
        await asyncio.sleep(0.01)
    assert await reader.get_async("replicated") == "yes"
    assert await reader.set_async("written", "on the primary") is True  # writes still go to the primary
    assert await writer.get_async("written") == "on the primary"


async def test_the_near_cache_follows_invalidations_from_every_node(
    redis_cluster: LocalCluster, repo_factory: RepositoryFactory
) -> None:
    near = await repo_factory(RedisConfig(url=redis_cluster.url, protocol=3, near_cache=True))
    writer = await repo_factory(redis_cluster.url)
    keys = SPREAD[:9]
    assert len(_nodes_of(redis_cluster, keys)) == 3
    await writer.set_many_async(dict.fromkeys(keys, "1"))
    for _ in range(2):  # the second round may be served from memory
        assert [await near.get_async(key) for key in keys] == ["1"] * 9
    await writer.set_many_async(dict.fromkeys(keys, "2"))
    seen: list[str | None] = []
    for _ in range(200):  # invalidations arrive as push messages, from each node
        seen = [await near.get_async(key) for key in keys]
        if seen == ["2"] * 9:
            break
        await asyncio.sleep(0.01)
    assert seen == ["2"] * 9
