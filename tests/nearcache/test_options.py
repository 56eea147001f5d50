"""``RedisConfig(near_cache=...)``: the forms it takes, the environment, and what it refuses, by name."""

from __future__ import annotations

import dataclasses
import pickle
from datetime import timedelta

import pytest

from neuroglia.data.redis import ConfigurationError, NearCacheOptions, RedisConfig
from neuroglia.data.redis.config.near_cache import NEAR_CACHE_COMMANDS


def test_off_by_default() -> None:
    assert RedisConfig().near_cache is None
    assert RedisConfig(near_cache=False).near_cache_options is None


def test_true_dict_and_options_are_accepted() -> None:
    assert RedisConfig(near_cache=True).near_cache == NearCacheOptions()
    config = RedisConfig(near_cache={"max_entries": 5, "max_age": timedelta(minutes=1), "mode": "BROADCAST"})
    assert config.near_cache == NearCacheOptions(max_entries=5, max_age=60, mode="broadcast")
    options = NearCacheOptions(prefixes=["menu:", "orders:"], commands="get,hgetall")
    assert options.prefixes == ("menu:", "orders:")
    assert options.commands == ("GET", "HGETALL")
    assert RedisConfig(near_cache=options).near_cache is options


def test_defaults() -> None:
    options = NearCacheOptions()
    assert (options.max_entries, options.max_bytes, options.max_age_seconds) == (10_000, 64 * 1024 * 1024, 300.0)
    assert (options.mode, options.prefixes, options.commands) == ("default", (), NEAR_CACHE_COMMANDS)
    assert options.heartbeat_seconds == 1.0


def test_zero_turns_max_age_and_the_heartbeat_off() -> None:
    options = NearCacheOptions(max_age=0, heartbeat_interval=None)
    assert options.max_age_seconds is None
    assert options.heartbeat_seconds is None


def test_a_network_url_on_the_multiplexed_transport_speaks_resp3() -> None:
    config = RedisConfig(url="redis://cache:6379/0", near_cache=True)
    assert config.protocol == 3
    assert RedisConfig(url="redis://cache:6379/0").protocol == 2


def test_copies_keep_the_options() -> None:
    config = RedisConfig(url="redis://cache:6379/0", near_cache={"max_entries": 7})
    assert dataclasses.replace(config).near_cache == config.near_cache
    assert pickle.loads(pickle.dumps(config)).near_cache == config.near_cache
    assert RedisConfig(**dataclasses.asdict(config)).near_cache_options == config.near_cache


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"near_cache": {"max_entries": 0}}, "near_cache.max_entries"),
        ({"near_cache": {"max_bytes": True}}, "near_cache.max_bytes"),
        ({"near_cache": {"max_age": -1}}, "near_cache.max_age"),
        ({"near_cache": {"max_age": "soon"}}, "near_cache.max_age"),
        ({"near_cache": {"heartbeat_interval": float("nan")}}, "near_cache.heartbeat_interval"),
        ({"near_cache": {"mode": "optin"}}, "near_cache.mode"),
        ({"near_cache": {"commands": ["SCAN"]}}, "near_cache.commands"),
        ({"near_cache": {"commands": []}}, "near_cache.commands"),
        ({"near_cache": {"prefixes": ["menu:", "menu:pizza:"]}}, "near_cache.prefixes"),
        ({"near_cache": {"prefixes": [""]}}, "near_cache.prefixes"),
        ({"near_cache": {"size": 3}}, "near_cache"),
        ({"near_cache": "yes"}, "near_cache"),
        ({"url": "redis://cache", "transport": "redis-py", "near_cache": True}, "near_cache"),
        (
            {"url": "redis://cache", "near_cache": True, "connection_pool": {"multiplexed_connections": 2}},
            "near_cache",
        ),
    ],
)
def test_refusals_name_the_field(settings: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        RedisConfig(**settings)  # type: ignore[arg-type]
    assert str(caught.value).startswith(named + ":"), caught.value


def test_the_redis_py_transport_is_refused_with_the_reason() -> None:
    with pytest.raises(ConfigurationError, match=r"multiplexed transport.*RESP3 push messages"):
        RedisConfig(url="redis://cache", transport="redis-py", near_cache=True)


def test_broadcast_mode_may_use_several_shared_connections() -> None:
    config = RedisConfig(
        url="redis://cache",
        near_cache={"mode": "broadcast", "prefixes": ["menu:"]},
        connection_pool={"multiplexed_connections": 2},
    )
    assert config.near_cache_options is not None
    assert config.near_cache_options.mode == "broadcast"


def test_memory_urls_take_any_transport_setting() -> None:
    # memory:// has no transport choice to make: the in-process server reports writes itself.
    assert RedisConfig(url="memory://near", near_cache=True).near_cache == NearCacheOptions()


def test_environment_variables() -> None:
    environ = {
        "REDIS_URL": "redis://cache:6379/0",
        "REDIS_NEAR_CACHE": "1",
        "REDIS_NEAR_CACHE_MAX_ENTRIES": "500",
        "REDIS_NEAR_CACHE_MAX_BYTES": "1048576",
        "REDIS_NEAR_CACHE_MAX_AGE": "off",
        "REDIS_NEAR_CACHE_MODE": "broadcast",
        "REDIS_NEAR_CACHE_PREFIXES": "menu:, orders:",
        "REDIS_NEAR_CACHE_COMMANDS": "GET,MGET",
        "REDIS_NEAR_CACHE_HEARTBEAT": "0.5",
    }
    options = RedisConfig.from_env(environ=environ).near_cache_options
    assert options == NearCacheOptions(
        max_entries=500,
        max_bytes=1048576,
        max_age=None,
        mode="broadcast",
        prefixes=("menu:", "orders:"),
        commands=("GET", "MGET"),
        heartbeat_interval=0.5,
    )
    assert RedisConfig.from_env(environ={"REDIS_NEAR_CACHE": "true"}).near_cache == NearCacheOptions()
    assert RedisConfig.from_env(environ={"REDIS_NEAR_CACHE": "0"}).near_cache is None


def test_environment_refusals_name_the_variable() -> None:
    with pytest.raises(ConfigurationError, match=r"^REDIS_NEAR_CACHE_MAX_ENTRIES:"):
        RedisConfig.from_env(environ={"REDIS_NEAR_CACHE_MAX_ENTRIES": "many"})
    with pytest.raises(ConfigurationError, match=r"^REDIS_NEAR_CACHE: is off while"):
        RedisConfig.from_env(environ={"REDIS_NEAR_CACHE": "0", "REDIS_NEAR_CACHE_MAX_AGE": "5"})


def test_with_replaces_fields_and_checks_them() -> None:
    options = NearCacheOptions().with_(max_entries=3)
    assert options.max_entries == 3
    with pytest.raises(ConfigurationError, match="near_cache: unknown keys"):
        NearCacheOptions().with_(entries=3)
