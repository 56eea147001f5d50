"""Routing details: redirections met on purpose, commands outside the key table, and the pure parts."""

from __future__ import annotations

import pytest

from neuroglia.data.redis import CacheCommandError, RedisConfig, RedisRepository
from neuroglia.data.redis.exceptions import Delivery
from neuroglia.data.redis.testing import LocalCluster, key_slot
from neuroglia.data.redis.transport import build_transport
from neuroglia.data.redis.transport.cluster import ClusterTransport, cross_slot_error
from neuroglia.data.redis.transport.cluster.commands import keys_of
from neuroglia.data.redis.transport.cluster.info import merge_info
from neuroglia.data.redis.transport.cluster.topology import parse_cluster_slots, redirection
from tests.support.repositories import RepositoryFactory

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


async def test_ask_and_moved_are_followed_during_and_after_a_migration(
    redis_cluster: LocalCluster, repo_factory: RepositoryFactory
) -> None:
    repo = await repo_factory(redis_cluster.url)
    await repo.set_many_async({"{mig}a": "1", "{mig}b": "2"})
    slot = key_slot("{mig}")
    source = redis_cluster.owner_of_slot(slot)
    target = next(p for p in redis_cluster.primaries() if p is not source)
    target.call("CLUSTER", "SETSLOT", slot, "IMPORTING", source.node_id)
    source.call("CLUSTER", "SETSLOT", slot, "MIGRATING", target.node_id)
    try:
        source.call("MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", "{mig}a")
        # "{mig}a" has moved: the source answers ASK, the library asks the target.
        assert await repo.get_async("{mig}a") == "1"
        assert await repo.get_async("{mig}b") == "2"  # still on the source
        assert await repo.set_async("{mig}c", "3") is True  # a new key goes to the target (ASK)
    finally:
        source.call("MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", "{mig}b")
        for node in (target, source, *[p for p in redis_cluster.primaries() if p not in (source, target)]):
            node.call("CLUSTER", "SETSLOT", slot, "NODE", target.node_id)
    # The map still names the source: MOVED, then the slot's new owner.
    assert await repo.get_many_async(["{mig}a", "{mig}b", "{mig}c"]) == {"{mig}a": "1", "{mig}b": "2", "{mig}c": "3"}
    transport = repo._transport
    assert isinstance(transport, ClusterTransport)
    assert transport.slot_map is not None
    shard = transport.slot_map.shard(slot)
    assert shard is not None
    assert shard.primary == (target.host, target.port)
    redis_cluster.migrate_slot(slot, source)  # as it was


async def test_a_command_outside_the_table_is_routed_by_the_servers_key_positions(
    redis_cluster: LocalCluster, repo_factory: RepositoryFactory
) -> None:
    repo = await repo_factory(redis_cluster.url)
    await repo.rpush_async("sortme", "3", "1", "2")
    transport = build_transport(RedisConfig(url=redis_cluster.url))
    try:
        assert keys_of(("SORT", "sortme")) is None
        assert await transport.execute(("SORT", "sortme")) == [b"1", b"2", b"3"]
        assert await transport.execute(("LASTSAVE",)) > 0  # keyless: any primary
    finally:
        await transport.close()


async def test_a_scan_cursor_names_the_node(redis_cluster: LocalCluster, repo_factory: RepositoryFactory) -> None:
    repo = await repo_factory(redis_cluster.url)
    await repo.flushdb()
    await repo.set_many_async({f"c:{n}": "v" for n in range(30)})
    transport = repo._transport
    assert isinstance(transport, ClusterTransport)
    cursor, seen, nodes = b"0", [], set()
    for _ in range(1000):
        cursor, keys = await transport.execute(("SCAN", cursor, "COUNT", 5))
        nodes.add(int(cursor) & 1023)
        seen += keys
        if cursor == b"0":
            break
    assert sorted(seen) == sorted(f"c:{n}".encode() for n in range(30))
    assert {0, 1, 2} <= nodes


def test_key_positions_of_the_library_s_commands() -> None:
    assert keys_of(("GET", "a")) == ["a"]
    assert keys_of(("MSET", "a", 1, "b", 2)) == ["a", "b"]
    assert keys_of(("BLPOP", "a", "b", 5)) == ["a", "b"]
    assert keys_of(("EVALSHA", "sha", 2, "k1", "k2", "arg")) == ["k1", "k2"]
    assert keys_of(("ZUNIONSTORE", "dst", 2, "a", "b", "WEIGHTS", 1, 2)) == ["dst", "a", "b"]
    assert keys_of(("MEMORY", "USAGE", "k")) == ["k"]
    assert keys_of(("LMOVE", "a", "b", "LEFT", "RIGHT")) == ["a", "b"]
    assert keys_of(("PING",)) == []


def test_redirections_and_slot_maps_are_read_from_the_replies() -> None:
    moved = redirection(CacheCommandError("GET: MOVED 3999 127.0.0.1:6381"))
    assert moved is not None
    assert (moved.kind, moved.slot, moved.address) == ("MOVED", 3999, ("127.0.0.1", 6381))
    ask = redirection(CacheCommandError("GET: ASK 12 10.0.0.2:7000"))
    assert ask is not None
    assert ask.kind == "ASK"
    assert redirection(CacheCommandError("WRONGTYPE Operation against a key")) is None
    found = parse_cluster_slots(
        [[0, 5460, [b"", 7000, b"id1"], [b"127.0.0.1", 7003, b"id4"]], [5461, 16383, [b"127.0.0.1", 7001, b"id2"]]],
        ("10.0.0.9", 7000),
    )
    shard = found.shard(0)
    assert shard is not None
    assert shard.primary == ("10.0.0.9", 7000)  # an unannounced host is the one asked
    assert shard.replicas == [("127.0.0.1", 7003)]
    assert found.covered == 16384


def test_cross_slot_errors_name_the_slots_and_the_fix() -> None:
    error = cross_slot_error("MULTI", ["a", "b"], "a transaction (MULTI/EXEC)")
    assert f"'a' in slot {key_slot('a')}" in str(error)
    assert "{order:42}" in str(error)
    assert error.delivery is Delivery.NOT_SENT


def test_info_is_merged_over_the_primaries() -> None:
    one = b"# Server\r\nredis_version:7.0.15\r\n# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\n"
    one += b"# Stats\r\nkeyspace_hits:3\r\n# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=5\r\n"
    one += b"# Cluster\r\ncluster_enabled:1\r\n"
    two = one.replace(b"keyspace_hits:3", b"keyspace_hits:4").replace(b"keys=2", b"keys=5")
    merged = merge_info([one, two]).decode()
    assert "redis_version:7.0.15" in merged
    assert "used_memory:2097152" in merged
    assert "used_memory_human:2.00M" in merged
    assert "keyspace_hits:7" in merged
    assert "db0:keys=7,expires=2,avg_ttl=5" in merged
    assert "cluster_primaries:2" in merged


async def test_every_repository_reads_its_own_configured_cluster(redis_cluster: LocalCluster) -> None:
    async with RedisRepository(RedisConfig(url=redis_cluster.url)) as repo:
        assert isinstance(repo._transport, ClusterTransport)
        assert await repo.ping() is True


def test_tls_settings_are_made_for_each_node_with_its_own_host_name() -> None:
    config = RedisConfig(
        url="rediss+cluster://127.0.0.1:7000,127.0.0.1:7001", ssl_cert_reqs="none", ssl_insecure_skip_verify=True
    )
    transport = build_transport(config)
    assert isinstance(transport, ClusterTransport)
    settings = transport._node_settings("10.0.0.5", 7005)
    assert settings.tls is not None
    assert (settings.host, settings.port, settings.server_hostname, settings.db) == ("10.0.0.5", 7005, "10.0.0.5", 0)
