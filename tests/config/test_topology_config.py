"""Cluster and sentinel configurations: URLs, fields, copies and the combinations refused."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from neuroglia.data.redis import ConfigurationError, RedisConfig

CLUSTER = "redis+cluster://app:s3cr%40t@10.0.0.1:7000,10.0.0.2:7001,[::1]:7002"
SENTINEL = "rediss+sentinel://s1:26379,s2:26380/orders/3"


def test_a_cluster_url_names_its_seed_nodes() -> None:
    config = RedisConfig(url=CLUSTER)
    assert config.topology == "cluster"
    assert config.scheme == "redis"
    assert config.nodes == (("10.0.0.1", 7000), ("10.0.0.2", 7001), ("::1", 7002))
    assert config.cluster_nodes == config.nodes
    assert config.sentinels is None
    assert (config.host, config.port, config.db) == ("10.0.0.1", 7000, 0)
    assert (config.username, config.password) == ("app", "s3cr@t")
    assert "s3cr" not in str(config)
    assert "s3cr" not in repr(config)


def test_a_sentinel_url_names_sentinels_service_and_database() -> None:
    config = RedisConfig(url=SENTINEL, sentinel_password="watch", read_from="replica")
    assert config.topology == "sentinel"
    assert config.scheme == "rediss"
    assert config.ssl
    assert config.nodes == (("s1", 26379), ("s2", 26380))
    assert (config.service_name, config.db, config.host, config.port) == ("orders", 3, None, None)
    assert config.sentinel_password == "watch"
    assert "watch" not in repr(config)
    assert config.read_from == "replica"


def test_sentinel_credentials_and_read_from_in_the_query() -> None:
    config = RedisConfig(url="redis+sentinel://s1/orders?sentinel_username=w&sentinel_password=p&read_from=nearest")
    assert (config.sentinel_username, config.sentinel_password, config.read_from) == ("w", "p", "nearest")
    assert config.nodes == (("s1", 26379),)


@pytest.mark.parametrize(
    "fields",
    [
        {"cluster_nodes": ["10.0.0.1:7000", ("10.0.0.2", 7001)]},
        {"cluster_nodes": "10.0.0.1:7000,10.0.0.2:7001"},
        {"sentinels": ["s1:26379", "s2"], "service_name": "orders", "sentinel_password": "watch"},
    ],
)
def test_fields_instead_of_a_url(fields: dict[str, object]) -> None:
    config = RedisConfig(**fields)  # type: ignore[arg-type]
    assert config.topology in ("cluster", "sentinel")
    assert not config.memory_by_default
    assert RedisConfig(url=config.url, sentinel_password=config.sentinel_password).nodes == config.nodes


@pytest.mark.parametrize("url", [CLUSTER, SENTINEL, "redis+sentinel://s1/orders"])
def test_every_copy_keeps_the_topology(url: str) -> None:
    config = RedisConfig(url=url, key_prefix="p:", read_from="nearest", sentinel_password=None)
    copies = [
        dataclasses.replace(config, key_prefix="q:"),
        copy.copy(config),
        copy.deepcopy(config),
        pickle.loads(pickle.dumps(config)),
        RedisConfig(**dataclasses.asdict(config)),
        RedisConfig(url=config.url, read_from="nearest"),
    ]
    for other in copies:
        assert (other.topology, other.nodes, other.service_name, other.db, other.password, other.read_from) == (
            config.topology,
            config.nodes,
            config.service_name,
            config.db,
            config.password,
            config.read_from,
        )


def test_the_environment_takes_topologies() -> None:
    config = RedisConfig.from_env(
        environ={
            "REDIS_SENTINELS": "s1:26379,s2:26379",
            "REDIS_SERVICE_NAME": "orders",
            "REDIS_SENTINEL_PASSWORD": "watch",
            "REDIS_READ_FROM": "replica",
        }
    )
    assert (config.topology, config.service_name, config.sentinel_password, config.read_from) == (
        "sentinel",
        "orders",
        "watch",
        "replica",
    )
    cluster = RedisConfig.from_env(environ={"REDIS_URL": "redis+cluster://n1:7000,n2:7001"})
    assert cluster.nodes == (("n1", 7000), ("n2", 7001))


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"url": "redis+cluster://n1:7000/3"}, "db"),
        ({"url": "redis+cluster://n1:7000", "db": 2}, "db"),
        ({"url": "redis+sentinel://s1:26379"}, "service_name"),
        ({"sentinels": ["s1"]}, "service_name"),
        ({"url": "redis+cluster://"}, "url"),
        ({"url": "redis+cluster://n1:port"}, "url"),
        ({"url": "redis+sentinel://s1/orders/zero"}, "db"),
        ({"url": "redis+cluster://n1:7000", "transport": "redis-py"}, "transport"),
        ({"url": "redis://h:6379", "read_from": "replica"}, "read_from"),
        ({"url": "redis+cluster://n1:7000", "read_from": "any"}, "read_from"),
        ({"url": "redis://h:6379", "cluster_nodes": ["n1:7000"]}, "cluster_nodes"),
        ({"url": "redis+cluster://n1:7000", "cluster_nodes": ["n2:7000"]}, "cluster_nodes"),
        ({"url": "redis+cluster://n1:7000", "sentinels": ["s1"]}, "sentinels"),
        ({"url": "redis+cluster://n1:7000", "host": "elsewhere"}, "host"),
        ({"url": "redis+sentinel://s1/orders", "host": "h"}, "host"),
        ({"url": "redis+sentinel://s1/orders", "service_name": "other"}, "service_name"),
        ({"url": "redis+cluster://n1:7000", "service_name": "orders"}, "service_name"),
        ({"url": "redis://h:6379", "sentinel_password": "x"}, "sentinel_password"),
        ({"cluster_nodes": []}, "cluster_nodes"),
        ({"cluster_nodes": ["n1:0"]}, "cluster_nodes"),
        ({"url": "memory://", "sentinels": ["s1"]}, "sentinels"),
    ],
)
def test_invalid_combinations_name_the_field(fields: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        RedisConfig(**fields)  # type: ignore[arg-type]
    assert str(raised.value).startswith(f"{named}:"), raised.value


def test_a_password_in_a_topology_url_never_shows_in_errors() -> None:
    with pytest.raises(ConfigurationError) as raised:
        RedisConfig(url="redis+cluster://u:hunter2@n1:7000/9")
    assert "hunter2" not in str(raised.value)
