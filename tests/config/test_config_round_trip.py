"""A config keeps its target through every copy, and says when it is the embedded default."""

from __future__ import annotations

import copy
import dataclasses
import logging
import pickle

import pytest

from neuroglia.data.redis import ConfigurationError, RedisConfig, RedisRepository, check_health

TARGETS = [
    "memory://orders",
    "memory://orders/3",
    "redis://127.0.0.1:6391/2",
    "redis://app:s3cr%40t@cache.internal:6380/4",
    "rediss://cache.internal:6380/0",
    "unix:///run/redis.sock?db=5",
]


def target(config: RedisConfig) -> tuple[object, ...]:
    return (
        config.scheme,
        config.host,
        config.port,
        config.db,
        config.username,
        config.password,
        config.memory_name,
        config.unix_socket_path,
    )


@pytest.mark.parametrize("url", TARGETS)
def test_every_copy_keeps_the_target(url: str) -> None:
    config = RedisConfig(url=url, key_prefix="pizzeria:")
    copies = [
        dataclasses.replace(config, key_prefix="p:"),
        copy.copy(config),
        copy.deepcopy(config),
        pickle.loads(pickle.dumps(config)),
        RedisConfig(**dataclasses.asdict(config)),
        RedisConfig(url=config.url),
    ]
    for made in copies:
        assert target(made) == target(config), made


@pytest.mark.parametrize("url", TARGETS)
def test_url_is_the_url_it_was_built_from_and_is_masked_when_shown(url: str) -> None:
    config = RedisConfig(url=url)
    assert config.url is not None
    assert target(RedisConfig(url=config.url)) == target(config)
    if config.password:
        assert config.password not in repr(config)
        assert config.password not in str(config)
        assert "***" in config.redacted_url


def test_the_field_by_field_form_has_a_url_too() -> None:
    config = RedisConfig(host="cache", port=6390, db=1, password="pw")
    assert config.url == "redis://:pw@cache:6390/1"
    assert target(dataclasses.replace(config, enable_metrics=True)) == target(config)


def test_a_copy_of_the_default_stays_the_embedded_default() -> None:
    config = RedisConfig()
    assert config.scheme == "memory"
    assert config.memory_by_default is True
    assert config.url is None
    for made in (dataclasses.replace(config, key_prefix="p:"), RedisConfig(**dataclasses.asdict(config))):
        assert made.scheme == "memory"
        assert made.memory_by_default is True
    chosen = RedisConfig(url="memory://")
    assert chosen.memory_by_default is False
    assert dataclasses.replace(chosen, key_prefix="p:").memory_by_default is False


def test_require_server_refuses_a_missing_server_configuration() -> None:
    with pytest.raises(ConfigurationError, match="no Redis server is configured"):
        RedisConfig(require_server=True)
    with pytest.raises(ConfigurationError, match="no Redis server is configured"):
        RedisConfig.from_env(environ={"REDIS_REQUIRE_SERVER": "1"})
    # A server, or memory:// chosen explicitly, is a configuration.
    assert (
        RedisConfig.from_env(environ={"REDIS_REQUIRE_SERVER": "1", "REDIS_URL": "redis://cache:6379/0"}).host == "cache"
    )
    assert RedisConfig(url="memory://tests", require_server=True).scheme == "memory"


async def test_the_embedded_default_is_announced_once_when_used(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="neuroglia.data.redis")
    repo = RedisRepository(RedisConfig())
    await repo.set_async("k", "v")
    await repo.get_async("k")
    await repo.disconnect()
    await repo.get_async("k")  # reconnecting reuses the store: no second warning
    warnings = [r for r in caplog.records if "no Redis server is configured" in r.getMessage()]
    assert len(warnings) == 1
    assert "REDIS_REQUIRE_SERVER" in warnings[0].getMessage()
    await repo.disconnect()
    caplog.clear()
    chosen = RedisRepository(RedisConfig(url="memory://chosen"))
    await chosen.ping()
    assert not [r for r in caplog.records if "no Redis server is configured" in r.getMessage()]
    await chosen.disconnect()


async def test_the_health_report_says_the_embedded_target_is_process_local() -> None:
    repo = RedisRepository(RedisConfig(url="memory://health-local"))
    report = await check_health(repo)
    await repo.disconnect()
    assert report.status == "healthy"
    assert report.process_local is True
    assert report.message is not None
    assert "process-local" in report.message


def test_every_resilience_setting_comes_from_the_environment() -> None:
    config = RedisConfig.from_env(
        environ={
            "REDIS_URL": "redis://cache:6379/0",
            "REDIS_OPERATION_TIMEOUT": "1.5",
            "REDIS_POOL_SIZE": "12",
            "REDIS_POOL_TIMEOUT": "0.5",
            "REDIS_SOCKET_TIMEOUT": "0.75",
            "REDIS_SOCKET_CONNECT_TIMEOUT": "0.25",
            "REDIS_RETRIES": "1",
            "REDIS_RETRY_DELAY": "0.02",
            "REDIS_RETRY_BACKOFF_FACTOR": "3",
            "REDIS_RETRY_MAX_DELAY": "0.4",
            "REDIS_RETRY_JITTER": "off",
            "REDIS_BREAKER_FAILURE_THRESHOLD": "7",
            "REDIS_BREAKER_RECOVERY_TIMEOUT": "12",
            "REDIS_BREAKER_SUCCESS_THRESHOLD": "1",
            "REDIS_FALLBACK_MAX_ENTRIES": "10",
            "REDIS_FALLBACK_MAX_STALENESS": "60",
        }
    )
    assert config.operation_timeout == 1.5
    assert (config.pool.max_connections, config.pool.pool_timeout) == (12, 0.5)
    assert (config.pool.socket_timeout, config.pool.socket_connect_timeout) == (0.75, 0.25)
    assert dataclasses.astuple(config.retry) == (1, 0.02, 3.0, 0.4, False)
    repo = RedisRepository(config)
    breaker = repo.circuit_breaker
    assert breaker is not None
    assert (breaker.failure_threshold, breaker.recovery_timeout, breaker.success_threshold) == (7, 12.0, 1)
    assert config.fallback is not None
    assert (config.fallback.max_entries, config.fallback.max_staleness) == (10, 60.0)  # type: ignore[union-attr]
    off = RedisConfig.from_env(environ={"REDIS_CIRCUIT_BREAKER": "off", "REDIS_OPERATION_TIMEOUT": "none"})
    assert RedisRepository(off).circuit_breaker is None
    assert off.operation_timeout is None


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"REDIS_RETRIES": "many"}, "REDIS_RETRIES"),
        ({"REDIS_OPERATION_TIMEOUT": "soon"}, "REDIS_OPERATION_TIMEOUT"),
        ({"REDIS_CIRCUIT_BREAKER": "off", "REDIS_BREAKER_FAILURE_THRESHOLD": "3"}, "REDIS_CIRCUIT_BREAKER"),
        ({"REDIS_BREAKER_FAILURE_THRESHOLD": "0"}, "failure_threshold"),
    ],
)
def test_a_bad_variable_is_named(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        RedisConfig.from_env(environ=environ)


def test_the_defaults_bound_a_web_request() -> None:
    config = RedisConfig(url="redis://cache:6379/0")
    assert config.operation_timeout == 2.0
    assert config.pool.socket_connect_timeout == 2.0
    assert config.pool.pool_timeout == 2.0
