"""Choosing the transport and reading its settings from a config (no server needed)."""

from __future__ import annotations

import ssl
from typing import Any

import pytest

from neuroglia.data.redis import ConfigurationError, InvalidArgumentError, RedisConfig
from neuroglia.data.redis.transport import Transport, build_transport
from neuroglia.data.redis.transport.multiplexed import ConnectionSettings, MultiplexedTransport
from neuroglia.data.redis.transport.multiplexed.encoding import pack
from neuroglia.data.redis.transport.multiplexed.resp3 import normalize, shape_for


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"url": "redis://h:6379/0"}, "MultiplexedTransport"),
        ({"url": "unix:///run/redis.sock"}, "MultiplexedTransport"),
        ({"url": "redis://h:6379/0", "transport": "redis-py"}, "RedisPyTransport"),
        ({"url": "redis://h:6379/0?transport=redis-py"}, "RedisPyTransport"),
        ({"url": "memory://"}, "MemoryTransport"),
        ({"url": "memory://", "transport": "redis-py"}, "MemoryTransport"),
    ],
)
def test_build_transport_picks_by_scheme_and_setting(config: dict[str, Any], expected: str) -> None:
    transport = build_transport(RedisConfig(**config))
    assert type(transport).__name__ == expected
    assert isinstance(transport, Transport)


def test_transport_and_protocol_from_url_and_environment() -> None:
    config = RedisConfig(url="redis://h/0?transport=redis-py&protocol=2")
    assert (config.transport, config.protocol) == ("redis-py", 2)
    environ = {"REDIS_URL": "redis://h/0", "REDIS_TRANSPORT": "multiplexed", "REDIS_PROTOCOL": "3"}
    config = RedisConfig.from_env(environ=environ)
    assert (config.transport, config.protocol) == ("multiplexed", 3)


@pytest.mark.parametrize(
    ("settings", "field", "problem"),
    [
        ({"transport": "fast"}, "transport", "allowed values"),
        ({"protocol": 4}, "protocol", "2 (RESP2) or 3 (RESP3)"),
        ({"protocol": True}, "protocol", "2 (RESP2) or 3 (RESP3)"),
        ({"protocol": 3, "transport": "redis-py"}, "protocol", "needs transport='multiplexed'"),
        ({"connection_pool": {"max_in_flight": 0}}, "connection_pool.max_in_flight", ">= 1"),
        ({"connection_pool": {"multiplexed_connections": "2"}}, "connection_pool.multiplexed_connections", ">= 1"),
    ],
)
def test_bad_transport_settings_name_their_field(settings: dict[str, Any], field: str, problem: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        RedisConfig(url="redis://h:6379/0", **settings)
    assert str(info.value).startswith(field + ":")
    assert problem in str(info.value)


def test_settings_follow_the_config() -> None:
    config = RedisConfig(
        url="redis://app:secret@cache.example:6380/4?client_name=svc&protocol=3",
        connection_pool={
            "max_connections": 8,
            "multiplexed_connections": 2,
            "max_in_flight": 64,
            "socket_timeout": 1.5,
            "health_check_interval": 0,
        },
    )
    settings = ConnectionSettings.from_config(config)
    assert (settings.host, settings.port, settings.db, settings.protocol) == ("cache.example", 6380, 4, 3)
    assert settings.credentials.username == "app"
    assert "secret" not in repr(settings.credentials)
    assert settings.client_name == "svc"
    assert (settings.shared_connections, settings.dedicated_connections) == (2, 6)
    assert (settings.max_in_flight, settings.socket_timeout, settings.health_check_interval) == (64, 1.5, 0.0)
    assert settings.tls is None
    assert settings.address == "cache.example:6380"
    assert "secret" not in repr(MultiplexedTransport(settings))
    one = ConnectionSettings.from_config(RedisConfig(url="redis://h/0", connection_pool_size=1))
    assert (one.shared_connections, one.dedicated_connections) == (1, 0)


def test_tls_settings_verify_by_default() -> None:
    settings = ConnectionSettings.from_config(RedisConfig(url="rediss://cache.example:6380/0"))
    assert settings.tls is not None
    assert settings.tls.verify_mode == ssl.CERT_REQUIRED
    assert settings.tls.check_hostname is True
    assert settings.tls.minimum_version == ssl.TLSVersion.TLSv1_2
    assert settings.server_hostname == "cache.example"


def test_arguments_are_packed_or_refused_before_sending() -> None:
    assert pack(("SET", "k", b"v", 1, 1.5)) == b"*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$1\r\n1\r\n$3\r\n1.5\r\n"
    assert pack(("SET", "k", bytearray(b"v"))) == pack(("SET", "k", b"v"))
    with pytest.raises(InvalidArgumentError, match="not valid Unicode"):
        pack(("SET", "k", "\udcff"))
    with pytest.raises(InvalidArgumentError, match="bool"):
        pack(("SET", "k", True))
    with pytest.raises(InvalidArgumentError, match="type object"):
        pack(("SET", "k", object()))


def test_resp3_values_become_resp2_shapes() -> None:
    assert normalize({b"a": 1, b"b": [2.5, True]}) == [b"a", 1, b"b", [b"2.5", 1]]
    assert normalize([1.0, float("inf"), -float("inf"), 0.1]) == [b"1", b"inf", b"-inf", b"0.1"]
    assert normalize(None) is None
    flatten = shape_for(("ZRANGE", "z", 0, -1, "withscores"))
    assert flatten is not None
    assert flatten([[b"a", b"1"], [b"b", b"2"]]) == [b"a", b"1", b"b", b"2"]
    assert shape_for(("ZRANGE", "z", 0, -1)) is None
    assert shape_for(("ZPOPMIN", "z")) is None
    assert shape_for(("ZPOPMIN", "z", 2)) is not None
    assert shape_for(("GET", "k")) is None
