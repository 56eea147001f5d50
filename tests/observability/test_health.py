"""Health: the check a host exposes and the ``check`` command an operator runs.

Against private ``redis-server`` processes (healthy, paused, password
protected) and a port where nothing listens; the breaker is driven by a
fake clock, never by sleeping.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator

import pytest

from neuroglia.data.redis import (
    CircuitBreakerPolicy,
    HealthReport,
    RedisConfig,
    RedisRepository,
    check_health,
)
from neuroglia.data.redis.__main__ import EXIT_FAILED, EXIT_UNREACHABLE, EXIT_USAGE, exit_code
from neuroglia.data.redis.__main__ import main as cli
from neuroglia.data.redis.observability import format_report
from neuroglia.data.redis.testing import FakeClock, RedisEndpoint, RedisServer, free_port

PASSWORD = "s3cret-pizza"


def server_version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    return out.split(" v=")[1].split()[0]


@pytest.fixture(scope="module")
def private_server() -> Iterator[RedisServer]:
    """A server of this module's own: one test pauses it."""
    with RedisServer(args=["--requirepass", PASSWORD]) as server:
        yield server


def unreachable_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


# -- check_health ---------------------------------------------------------------------


async def test_a_healthy_server(redis_server: RedisEndpoint) -> None:
    repo = redis_server.repository()
    try:
        report = await check_health(repo)
    finally:
        await repo.disconnect()
    assert report.status == "healthy"
    assert report.healthy
    assert report.reachable
    assert report.message is None
    assert report.latency_ms is not None
    assert 0 < report.latency_ms < 250
    assert redis_server.server is not None
    assert report.server_version == server_version(redis_server.server.binary)
    assert report.breaker_state == "closed"
    assert report.pool_in_use == 0
    assert report.pool_created == 1
    assert report.pool_max == repo.config.pool.max_connections
    assert report.target == repo.config.redacted_url
    assert json.loads(json.dumps(report.as_dict()))["status"] == "healthy"


async def test_an_unreachable_port() -> None:
    repo = RedisRepository(RedisConfig(url=unreachable_url(), retry_policy={"retries": 0}))
    started = asyncio.get_running_loop().time()
    report = await check_health(repo)
    assert asyncio.get_running_loop().time() - started < 2.0
    assert report.status == "unhealthy"
    assert not report.healthy
    assert not report.reachable
    assert report.latency_ms is None
    assert report.server_version is None
    assert report.message is not None
    assert "CacheUnavailableError" in report.message
    await repo.disconnect()


async def test_a_paused_server_times_out(private_server: RedisServer) -> None:
    repo = RedisRepository(RedisConfig(url=private_server.url, password=PASSWORD, retry_policy={"retries": 0}))
    await repo.ping()
    private_server.pause()
    try:
        report = await check_health(repo, timeout=0.3)
    finally:
        private_server.resume()
    assert report.status == "unhealthy"
    assert not report.reachable
    assert report.message == "no reply within 0.3s"
    await repo.disconnect()


async def test_a_wrong_password_is_unhealthy_but_reachable(private_server: RedisServer) -> None:
    repo = RedisRepository(RedisConfig(url=private_server.url, password="wrong", retry_policy={"retries": 0}))
    report = await check_health(repo)
    assert report.status == "unhealthy"
    assert report.reachable
    assert report.message is not None
    assert "CacheAuthenticationError" in report.message
    assert "wrong" not in report.message  # never the password
    assert "wrong" not in report.target
    await repo.disconnect()


async def test_the_breaker_open_then_half_open(redis_server: RedisEndpoint, fake_clock: FakeClock) -> None:
    breaker = CircuitBreakerPolicy(failure_threshold=1, recovery_timeout=10, success_threshold=3, clock=fake_clock)
    repo = redis_server.repository(circuit_breaker=breaker)
    breaker.on_failure(breaker.before_call())  # as if a command had just failed
    report = await check_health(repo)
    assert report.status == "unhealthy"
    assert report.breaker_state == "open"
    assert report.message is not None
    assert report.message.startswith("circuit breaker open")
    fake_clock.advance(10)
    report = await check_health(repo)  # PING and INFO are two trial calls; a third is needed
    assert report.status == "degraded"
    assert report.healthy
    assert report.breaker_state == "half_open"
    assert report.message == "circuit breaker half-open (recovering)"
    report = await check_health(repo)
    assert report.status == "healthy"
    assert report.breaker_state == "closed"
    await repo.disconnect()


async def test_slow_and_busy_are_degraded(redis_server: RedisEndpoint) -> None:
    repo = redis_server.repository(connection_pool_size=3)
    report = await check_health(repo, slow_ms=0)
    assert report.status == "degraded"
    assert report.message is not None
    assert report.message.startswith("slow ping")
    # Two of three connections busy with blocking pops.
    blocked = [asyncio.create_task(repo.blpop_async(f"health:empty:{i}", 2)) for i in range(2)]
    await asyncio.sleep(0.1)
    try:
        report = await check_health(repo, pool_busy_ratio=0.6)
    finally:
        await repo.lpush_async("health:empty:0", "x")
        await repo.lpush_async("health:empty:1", "x")
        await asyncio.gather(*blocked)
    assert report.status == "degraded"
    assert report.pool_in_use == 2
    assert report.message == "connection pool nearly exhausted: 2/3 in use"
    await repo.disconnect()


async def test_the_embedded_backend_reports_too() -> None:
    async with RedisRepository(RedisConfig(url="memory://")) as repo:
        report = await check_health(repo)
    assert report.status == "healthy"
    assert report.server_version is not None


def test_the_report_prints_for_an_operator() -> None:
    report = HealthReport(
        status="degraded",
        target="redis://cache:6379/0",
        latency_ms=301.5,
        server_version="7.2.4",
        breaker_state="closed",
        pool_in_use=1,
        pool_created=2,
        pool_max=50,
        message="slow ping: 301.5 ms > 250 ms",
    )
    assert format_report(report).splitlines() == [
        "Redis: DEGRADED",
        "  target          redis://cache:6379/0",
        "  ping            301.50 ms",
        "  server version  7.2.4",
        "  circuit breaker closed",
        "  pool            1 in use / 2 open / 50 max",
        "  problem         slow ping: 301.5 ms > 250 ms",
    ]
    assert exit_code(report) == 0


# -- the check command ------------------------------------------------------------------


def test_check_command_on_a_healthy_server(private_server: RedisServer, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:{private_server.port}/0"
    assert cli(["check", "--url", url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Redis: HEALTHY\n")
    assert f"server version  {server_version(private_server.binary)}" in out
    assert "circuit breaker off" in out  # the command runs without a breaker: one honest attempt
    assert PASSWORD not in out
    assert "***" in out


def test_check_command_as_json(private_server: RedisServer, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:{private_server.port}/0"
    assert cli(["check", "--url", url, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "healthy"
    assert report["server_version"] == server_version(private_server.binary)
    assert report["pool_max"] == 2
    assert PASSWORD not in json.dumps(report)


def test_check_command_on_an_unreachable_port(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["check", "--url", unreachable_url(), "--timeout", "1"]) == EXIT_UNREACHABLE
    out = capsys.readouterr().out
    assert out.startswith("Redis: UNHEALTHY\n")
    assert "problem" in out


def test_check_command_with_a_wrong_password(private_server: RedisServer, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"redis://:nope@127.0.0.1:{private_server.port}/0"
    assert cli(["check", "--url", url]) == EXIT_FAILED
    assert "CacheAuthenticationError" in capsys.readouterr().out


def test_check_command_with_a_bad_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["check", "--url", "http://nowhere"]) == EXIT_USAGE
    assert "invalid configuration" in capsys.readouterr().err


def test_check_command_defaults_to_redis_url(
    private_server: RedisServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://:{PASSWORD}@127.0.0.1:{private_server.port}/0")
    assert cli(["check"]) == 0
    assert f"127.0.0.1:{private_server.port}" in capsys.readouterr().out
