"""RedisConfig, ConnectionPoolConfig and RetryPolicy: both shapes of the page, URLs, env, validation."""

from __future__ import annotations

from typing import Any

import pytest

from neuroglia.data.redis import (
    CacheUnavailableError,
    ConfigurationError,
    ConnectionPoolConfig,
    JsonSerializer,
    MsgPackSerializer,
    RedisConfig,
    RedisRepository,
    RetryPolicy,
)
from neuroglia.data.redis.testing import free_port

SECRET = "s3cr3t-P@ss/word"


# -- the page's two shapes ------------------------------------------------------------


def test_field_by_field_shape_of_the_page() -> None:
    config = RedisConfig(
        host="localhost",
        port=6379,
        db=0,
        password="your_redis_password",
        connection_pool_size=20,
        health_check_interval=30,
    )
    assert config.scheme == "redis"
    assert (config.host, config.port, config.db) == ("localhost", 6379, 0)
    assert config.password == "your_redis_password"
    assert config.connection_pool_size == 20
    assert config.pool.max_connections == 20
    assert config.health_check_interval == 30
    assert config.pool.health_check_interval == 30
    assert config.ssl is False
    assert config.redacted_url == "redis://:***@localhost:6379/0"


def test_url_in_host_as_the_page_does() -> None:
    config = RedisConfig(host="redis://localhost:6379/15", connection_pool_size=5)
    assert config.scheme == "redis"
    assert (config.host, config.port, config.db) == ("localhost", 6379, 15)
    assert config.pool.max_connections == 5
    assert config.redacted_url == "redis://localhost:6379/15"


def test_url_keyword() -> None:
    config = RedisConfig(url="redis://cache.internal:6380/3")
    assert (config.host, config.port, config.db) == ("cache.internal", 6380, 3)
    assert RedisConfig(url="redis://cache.internal").port == 6379
    assert RedisConfig(url="redis://cache.internal").db == 0


def test_url_with_credentials_and_query() -> None:
    config = RedisConfig(url="redis://app:pa%40ss@h:1234?db=4&client_name=menu")
    assert config.username == "app"
    assert config.password == "pa@ss"
    assert config.db == 4
    assert config.client_name == "menu"


def test_url_and_matching_fields_agree() -> None:
    config = RedisConfig(url="redis://localhost:6379/15", db=15, port=6379)
    assert config.db == 15


def test_rediss_is_tls() -> None:
    config = RedisConfig(url="rediss://secure.example:6380/1", ssl_cert_reqs="required")
    assert config.scheme == "rediss"
    assert config.ssl is True
    assert config.redacted_url == "rediss://secure.example:6380/1"
    assert RedisConfig(host="secure.example", ssl=True).scheme == "rediss"


def test_unix_socket() -> None:
    config = RedisConfig(url="unix:///run/redis/redis.sock?db=2")
    assert config.scheme == "unix"
    assert config.unix_socket_path == "/run/redis/redis.sock"
    assert config.db == 2
    assert config.host is None
    assert config.port is None


def test_memory_urls() -> None:
    assert RedisConfig().scheme == "memory"
    assert RedisConfig(url="memory://").memory_name is None
    named = RedisConfig(url="memory://orders")
    assert named.scheme == "memory"
    assert named.memory_name == "orders"
    assert named.redacted_url == "memory://orders"
    assert RedisConfig(host="memory://menu").memory_name == "menu"


async def test_memory_name_shares_data_between_two_repositories() -> None:
    async with (
        RedisRepository(RedisConfig(url="memory://shared-unit-test")) as first,
        RedisRepository(RedisConfig(url="memory://shared-unit-test")) as second,
        RedisRepository(RedisConfig(url="memory://other-unit-test")) as other,
        RedisRepository(RedisConfig(url="memory://")) as private,
    ):
        await first.set_async("pizza", "margherita")
        assert await second.get_async("pizza") == "margherita"
        assert await other.get_async("pizza") is None
        assert await private.get_async("pizza") is None


async def test_memory_databases_are_separate() -> None:
    async with (
        RedisRepository(RedisConfig(url="memory://dbs-unit-test?db=0")) as db0,
        RedisRepository(RedisConfig(url="memory://dbs-unit-test", db=1)) as db1,
        RedisRepository(RedisConfig(url="memory://dbs-unit-test", db=0)) as db0_again,
    ):
        assert db0.config.memory_name == db1.config.memory_name == "dbs-unit-test"
        await db0.set_async("k", "zero")
        assert await db1.get_async("k") is None
        assert await db0_again.get_async("k") == "zero"


# -- pool, retry, the page's advanced configuration --------------------------------------


def test_the_page_optimized_config() -> None:
    connection_config = ConnectionPoolConfig(
        max_connections=50,
        retry_on_timeout=True,
        health_check_interval=30,
        socket_timeout=2.0,
        socket_connect_timeout=2.0,
        connection_pool_class_kwargs={
            "max_connections_per_pool": 50,
            "retry_on_timeout": True,
            "socket_keepalive": True,
            "socket_keepalive_options": {},
        },
        skip_full_coverage_check=True,
        decode_responses=True,
    )
    redis_config = RedisConfig(
        host="redis://localhost:6379",
        connection_pool=connection_config,
        retry_policy={"retries": 3, "retry_delay": 0.1, "backoff_factor": 2, "max_retry_delay": 1.0},
        enable_metrics=True,
        metrics_prefix="mario_pizzeria_redis",
        ssl_cert_reqs=None,
        ssl_ca_certs=None,
        ssl_keyfile=None,
        ssl_certfile=None,
    )
    assert redis_config.pool is connection_config
    assert redis_config.pool.max_connections == 50
    assert redis_config.pool.socket_timeout == 2.0
    assert redis_config.pool.socket_keepalive is True
    assert redis_config.pool.skip_full_coverage_check is True
    assert redis_config.decode_responses is True
    assert redis_config.connection_pool_size == 50
    assert isinstance(redis_config.retry_policy, RetryPolicy)
    assert redis_config.retry == RetryPolicy(retries=3, retry_delay=0.1, backoff_factor=2, max_retry_delay=1.0)
    assert redis_config.enable_metrics is True
    assert redis_config.metrics_prefix == "mario_pizzeria_redis"
    assert (redis_config.host, redis_config.port, redis_config.db) == ("localhost", 6379, 0)


def test_pool_class_kwargs_fold_into_the_fields() -> None:
    pool = ConnectionPoolConfig(
        connection_pool_class_kwargs={"max_connections_per_pool": 12, "socket_keepalive": False}
    )
    assert pool.max_connections == 12
    assert pool.socket_keepalive is False


def test_pool_as_a_dict() -> None:
    config = RedisConfig(connection_pool={"max_connections": 7, "socket_timeout": 1.5})
    assert config.pool.max_connections == 7
    assert config.pool.socket_timeout == 1.5


def test_retry_policy_forms() -> None:
    assert RedisConfig().retry == RetryPolicy()
    policy = RetryPolicy(retries=0)
    assert RedisConfig(retry_policy=policy).retry is policy
    backoff = RetryPolicy(retries=5, retry_delay=0.1, backoff_factor=2, max_retry_delay=0.5, jitter=False)
    assert [backoff.delay(n) for n in (1, 2, 3, 4)] == pytest.approx([0.1, 0.2, 0.4, 0.5])


def test_key_prefix_and_serializer() -> None:
    config = RedisConfig(key_prefix="mario:", serializer="msgpack")
    assert config.key_prefix == "mario:"
    assert isinstance(config.serialization, MsgPackSerializer)
    assert isinstance(RedisConfig().serialization, JsonSerializer)


# -- environment ----------------------------------------------------------------------------


def test_from_env_with_a_url() -> None:
    config = RedisConfig.from_env(
        environ={
            "REDIS_URL": "redis://cache:6380/2",
            "REDIS_KEY_PREFIX": "svc:",
            "REDIS_POOL_SIZE": "9",
            "REDIS_SOCKET_TIMEOUT": "1.5",
            "REDIS_DECODE_RESPONSES": "false",
            "REDIS_SERIALIZER": "msgpack",
            "REDIS_ENABLE_METRICS": "yes",
            "REDIS_PASSWORD": SECRET,
        }
    )
    assert (config.host, config.port, config.db) == ("cache", 6380, 2)
    assert config.key_prefix == "svc:"
    assert config.pool.max_connections == 9
    assert config.pool.socket_timeout == 1.5
    assert config.decode_responses is False
    assert isinstance(config.serialization, MsgPackSerializer)
    assert config.enable_metrics is True
    assert config.password == SECRET


def test_from_env_with_fields_and_a_prefix() -> None:
    config = RedisConfig.from_env(
        prefix="CACHE_",
        environ={"CACHE_HOST": "redis.local", "CACHE_PORT": "6390", "CACHE_DB": "5", "REDIS_HOST": "ignored"},
    )
    assert (config.host, config.port, config.db) == ("redis.local", 6390, 5)


def test_from_env_reads_os_environ_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://from-env:6379/1")
    monkeypatch.setenv("REDIS_KEY_PREFIX", "")
    config = RedisConfig.from_env(key_prefix="override:")
    assert config.host == "from-env"
    assert config.db == 1
    assert config.key_prefix == "override:"


def test_from_env_empty_is_memory() -> None:
    assert RedisConfig.from_env(environ={}).scheme == "memory"


@pytest.mark.parametrize(
    ("environ", "field"),
    [
        ({"REDIS_PORT": "six"}, "REDIS_PORT"),
        ({"REDIS_DB": "x"}, "REDIS_DB"),
        ({"REDIS_DECODE_RESPONSES": "maybe"}, "REDIS_DECODE_RESPONSES"),
        ({"REDIS_SOCKET_TIMEOUT": "soon"}, "REDIS_SOCKET_TIMEOUT"),
        ({"REDIS_URL": "nonsense"}, "url"),
    ],
)
def test_from_env_bad_values_name_the_variable(environ: dict[str, str], field: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        RedisConfig.from_env(environ={**environ, "REDIS_PASSWORD": SECRET})
    assert str(info.value).startswith(field)
    assert SECRET not in str(info.value)


# -- invalid and contradictory settings --------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field", "problem"),
    [
        ({"host": "redis://localhost:6379/15", "db": 3}, "db", "contradicts the URL"),
        ({"url": "redis://a:6379/0", "host": "b"}, "host", "contradicts the URL"),
        ({"url": "redis://a:6379/0", "port": 6380}, "port", "contradicts the URL"),
        ({"url": "redis://a:6379/0", "host": "redis://b:6379/0"}, "host", "only one"),
        ({"host": "localhost", "port": 0}, "port", "1..65535"),
        ({"host": "localhost", "port": 70000}, "port", "1..65535"),
        ({"host": "localhost", "port": "6379"}, "port", "integer"),
        ({"host": "localhost", "db": -1}, "db", ">= 0"),
        ({"connection_pool": {"max_connections": 0}}, "connection_pool.max_connections", ">= 1"),
        ({"connection_pool": {"colour": "red"}}, "connection_pool", "unknown keys ['colour']"),
        ({"connection_pool": 5}, "connection_pool", "ConnectionPoolConfig or a dict"),
        (
            {"connection_pool": ConnectionPoolConfig(max_connections=10), "connection_pool_size": 20},
            "connection_pool_size",
            "contradicts connection_pool.max_connections=10",
        ),
        ({"retry_policy": {"retries": -1}}, "retry_policy.retries", ">= 0"),
        ({"retry_policy": {"attempts": 3}}, "retry_policy", "unknown keys ['attempts']"),
        ({"retry_policy": {"backoff_factor": 0.5}}, "retry_policy.backoff_factor", ">= 1"),
        ({"retry_policy": "fast"}, "retry_policy", "RetryPolicy or a dict"),
        ({"health_check_interval": -5}, "health_check_interval", ">= 0"),
        ({"connection_pool_size": 0}, "connection_pool_size", ">= 1"),
        ({"connection_pool_size": "20"}, "connection_pool_size", "integer"),
        ({"decode_responses": "no"}, "decode_responses", "True or False"),
        ({"connection_pool": {"socket_keepalive": 1}}, "connection_pool.socket_keepalive", "True or False"),
        ({"serializer": "pickle"}, "serializer", "allowed: ['json', 'msgpack', 'raw']"),
        ({"metrics_prefix": "not valid!"}, "metrics_prefix", "identifier"),
        ({"key_prefix": 5}, "key_prefix", "str"),
        ({"url": "rediss://h", "ssl_cert_reqs": "none"}, "ssl_cert_reqs", "cannot be turned off"),
        ({"url": "rediss://h", "ssl_cert_reqs": "sometimes"}, "ssl_cert_reqs", "allowed values"),
        ({"url": "redis://h", "ssl_ca_certs": "/ca.pem"}, "ssl_ca_certs", "not TLS"),
        ({"url": "rediss://h", "ssl_certfile": "/c.pem"}, "ssl_certfile", "ssl_keyfile"),
    ],
)
def test_invalid_settings_name_the_field(kwargs: dict[str, Any], field: str, problem: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        RedisConfig(**kwargs)
    message = str(info.value)
    assert message.startswith(f"{field}:"), message
    assert problem in message


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_connections": -1}, "connection_pool.max_connections"),
        ({"socket_timeout": 0}, "connection_pool.socket_timeout"),
        ({"socket_connect_timeout": float("nan")}, "connection_pool.socket_connect_timeout"),
        ({"pool_timeout": "5"}, "connection_pool.pool_timeout"),
        ({"connection_pool_class_kwargs": {"nope": 1}}, "connection_pool.connection_pool_class_kwargs"),
        (
            {"max_connections": 10, "connection_pool_class_kwargs": {"max_connections_per_pool": 50}},
            "connection_pool.max_connections",
        ),
    ],
)
def test_invalid_pool_settings(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        ConnectionPoolConfig(**kwargs)
    assert str(info.value).startswith(f"{field}:")


def test_configuration_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="port"):
        RedisConfig(host="localhost", port=-1)


# -- the password is never shown -------------------------------------------------------------------


def test_password_not_in_repr_str_or_redacted_url() -> None:
    for config in (
        RedisConfig(host="localhost", password=SECRET),
        RedisConfig(url=f"redis://user:{SECRET.replace('@', '%40').replace('/', '%2F')}@localhost:6379/0"),
        RedisConfig(url="rediss://localhost", password=SECRET, username="app"),
    ):
        assert config.password == SECRET
        for text in (repr(config), str(config), config.redacted_url, f"{config}", f"{config!r}"):
            assert SECRET not in text
            assert "***" in text
        assert SECRET not in repr(RedisRepository(config))


def test_password_not_in_contradiction_errors() -> None:
    with pytest.raises(ConfigurationError) as info:
        RedisConfig(url="redis://:other-password@localhost:6379/0", password=SECRET)
    message = str(info.value)
    assert message.startswith("password:")
    assert SECRET not in message
    assert "other-password" not in message


def test_password_not_in_url_errors() -> None:
    for url in (
        f"redis://:{SECRET}@localhost:notaport/0",
        f"redis://:{SECRET}@localhost:6379/zero",
        f"http://:{SECRET}@localhost:6379/0",
    ):
        with pytest.raises(ConfigurationError) as info:
            RedisConfig(url=url)
        assert SECRET not in str(info.value), str(info.value)
        assert SECRET not in repr(info.value)


async def test_password_not_in_connection_errors() -> None:
    config = RedisConfig(
        host="127.0.0.1",
        port=free_port(),
        password=SECRET,
        connection_pool={"socket_connect_timeout": 1.0, "socket_timeout": 1.0},
        retry_policy={"retries": 0},
    )
    repo = RedisRepository(config)
    try:
        with pytest.raises(CacheUnavailableError) as info:
            await repo.connect()
    finally:
        await repo.disconnect()
    chain: BaseException | None = info.value
    while chain is not None:
        assert SECRET not in str(chain)
        assert SECRET not in repr(chain)
        chain = chain.__cause__
