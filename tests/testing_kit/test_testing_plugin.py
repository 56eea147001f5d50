"""The testing kit as users meet it: a pytest plugin enabled by the package's entry point.

Each test writes a small test project into a temporary folder and runs pytest
on it with ``pytester``; the project uses the fixtures without importing or
declaring the plugin, as a user's project would.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from unittest.mock import AsyncMock, Mock, create_autospec

import pytest

import neuroglia.data.redis.testing.plugin as plugin
from neuroglia.data.redis import RedisConfig, RedisRepository
from neuroglia.data.redis.testing import FakeClock, RedisEndpoint

# Hypothesis' plugin (installed for other suites) adds a second to every inner session.
INNER = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")

AUTO_MODE = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
"""

STRICT_MODE = """
[pytest]
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
"""

USER_TESTS = """
import pytest

from neuroglia.data.redis import CircuitBreakerPolicy, CircuitOpenError, CircuitState, RedisRepository
from neuroglia.data.redis.testing import FakeClock, RedisEndpoint


def test_the_server_fixture(redis_server):
    assert isinstance(redis_server, RedisEndpoint)
    assert redis_server.url.startswith("redis://127.0.0.1:")
    assert redis_server.server is not None
    assert redis_server.server.pid


async def test_first_a_test_leaves_data_behind(redis_repository):
    assert isinstance(redis_repository, RedisRepository)
    await redis_repository.set_async("left:behind", "1")
    assert await redis_repository.get_async("left:behind") == "1"


async def test_then_the_next_test_starts_on_a_flushed_database(redis_repository):
    assert await redis_repository.dbsize() == 0


async def test_the_memory_repository(memory_redis_repository):
    assert memory_redis_repository.config.scheme == "memory"
    await memory_redis_repository.set_async("k", "v")
    assert await memory_redis_repository.get_async("k") == "v"


async def test_each_test_gets_a_private_memory_server(memory_redis_repository):
    assert await memory_redis_repository.get_async("k") is None


async def test_the_fake_clock_drives_a_breaker_without_sleeping(fake_clock, memory_redis_repository):
    assert isinstance(fake_clock, FakeClock)
    breaker = CircuitBreakerPolicy(failure_threshold=1, recovery_timeout=30, success_threshold=1, clock=fake_clock)
    guarded = breaker.apply(memory_redis_repository.ping)
    breaker.on_failure(breaker.before_call())
    with pytest.raises(CircuitOpenError):
        await guarded()
    fake_clock.advance(29.9)
    assert breaker.state is CircuitState.OPEN
    fake_clock.advance(0.1)
    assert breaker.state is CircuitState.HALF_OPEN
    assert await guarded() is True
    assert breaker.state is CircuitState.CLOSED


def test_the_plugin_is_the_testing_module(pytestconfig):
    import neuroglia.data.redis.testing.plugin as plugin

    assert pytestconfig.pluginmanager.get_plugin("neuroglia_redis") is plugin
"""


@pytest.fixture
def no_external_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEUROGLIA_REDIS_TEST_URL", raising=False)


def test_the_entry_point_names_the_testing_module() -> None:
    found = [ep for ep in importlib.metadata.entry_points(group="pytest11") if ep.name == "neuroglia_redis"]
    assert len(found) == 1
    assert found[0].value == "neuroglia.data.redis.testing.plugin"
    assert found[0].load() is plugin


def test_a_user_project_uses_the_fixtures(pytester: pytest.Pytester, no_external_redis: None) -> None:
    pytester.makeini(AUTO_MODE)
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest(*INNER)
    result.assert_outcomes(passed=7)


def test_the_fixtures_work_in_strict_asyncio_mode(pytester: pytest.Pytester, no_external_redis: None) -> None:
    pytester.makeini(STRICT_MODE)
    pytester.makepyfile(
        test_strict="""
        import pytest

        @pytest.mark.asyncio
        async def test_real(redis_repository):
            await redis_repository.set_async("k", "v")
            assert await redis_repository.get_async("k") == "v"

        @pytest.mark.asyncio
        async def test_memory(memory_redis_repository):
            assert await memory_redis_repository.ping()
        """
    )
    result = pytester.runpytest(*INNER)
    result.assert_outcomes(passed=2)


def test_a_project_can_turn_the_plugin_off(pytester: pytest.Pytester) -> None:
    pytester.makeini(AUTO_MODE)
    pytester.makepyfile(test_off="def test_uses(fake_clock):\n    pass\n")
    result = pytester.runpytest(*INNER, "-p", "no:neuroglia_redis")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'fake_clock' not found*"])


def test_without_a_binary_or_redis_url_the_server_tests_skip_with_the_reason(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_external_redis: None
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("REDIS_SERVER_BIN", raising=False)
    pytester.makeini(AUTO_MODE)
    pytester.makepyfile(
        test_skip="""
        async def test_needs_a_server(redis_repository):
            raise AssertionError("not reached")

        async def test_memory_still_runs(memory_redis_repository):
            assert await memory_redis_repository.ping()
        """
    )
    result = pytester.runpytest(*INNER, "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*no redis-server binary found*NEUROGLIA_REDIS_TEST_URL is not set*"])


def test_the_test_url_points_the_fixtures_at_an_existing_server(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, redis_server: RedisEndpoint
) -> None:
    url = redis_server.url.rsplit("/", 1)[0] + "/9"  # a database of its own on this suite's server
    monkeypatch.setenv("NEUROGLIA_REDIS_TEST_URL", url)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # the application's: never used by the fixtures
    pytester.makeini(AUTO_MODE)
    pytester.makepyfile(
        test_external=f"""
        async def test_external(redis_server, redis_repository):
            assert redis_server.server is None
            assert redis_server.url == {url!r}
            assert redis_repository.config.db == 9
            await redis_repository.set_async("k", "v")
        """
    )
    result = pytester.runpytest(*INNER)
    result.assert_outcomes(passed=1)


def test_the_test_url_must_name_a_real_server(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEUROGLIA_REDIS_TEST_URL", "memory://")
    pytester.makeini(AUTO_MODE)
    pytester.makepyfile(test_bad="def test_it(redis_server):\n    pass\n")
    result = pytester.runpytest(*INNER)
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*NEUROGLIA_REDIS_TEST_URL must name a real server*"])


async def test_a_database_holding_keys_is_not_flushed_unless_allowed(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, redis_server: RedisEndpoint
) -> None:
    url = redis_server.url.rsplit("/", 1)[0] + "/8"
    application = RedisRepository(RedisConfig(url=url))
    await application.set_async("orders:1", "an application's data")
    monkeypatch.setenv("NEUROGLIA_REDIS_TEST_URL", url)
    pytester.makeini(AUTO_MODE)
    pytester.makepyfile(test_flush="async def test_it(redis_repository):\n    pass\n")
    try:
        refused = await asyncio.to_thread(pytester.runpytest_subprocess, *INNER)
        assert refused.ret != 0
        refused.stdout.fnmatch_lines(
            ["*holds 1 keys that this test session did not write*NEUROGLIA_REDIS_TEST_FLUSH=1*"]
        )
        assert await application.get_async("orders:1") == "an application's data"
        monkeypatch.setenv("NEUROGLIA_REDIS_TEST_FLUSH", "1")
        allowed = await asyncio.to_thread(pytester.runpytest_subprocess, *INNER)
        allowed.assert_outcomes(passed=1)
        assert await application.exists_async("orders:1") is False
    finally:
        await application.flushdb()
        await application.disconnect()


# -- the pieces, directly ------------------------------------------------------------


def test_fake_clock() -> None:
    clock = FakeClock()
    assert clock() == 1000.0
    assert clock.advance(2.5) == 1002.5
    assert clock() == 1002.5
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance(-1)
    assert FakeClock(start=0)() == 0.0


def test_the_endpoint_builds_configs_and_repositories(redis_server: RedisEndpoint) -> None:
    config = redis_server.config(key_prefix="x:")
    assert config.key_prefix == "x:"
    repo = redis_server.repository(db=3)
    assert repo.config.db == 3
    assert not repo.is_connected


def test_the_endpoint_repr_masks_a_password() -> None:
    endpoint = RedisEndpoint("redis://:hunter2@127.0.0.1:6390/4")
    assert "hunter2" not in repr(endpoint)
    assert "127.0.0.1:6390/4" in repr(endpoint)
    assert endpoint.config(db=5).db == 5
    assert endpoint.config(db=5).password == "hunter2"
    assert RedisEndpoint("unix:///run/redis.sock?db=1").config(db=2).db == 2


def test_importing_the_testing_module_does_not_need_pytest() -> None:
    script = textwrap.dedent(
        """
        import importlib.abc, sys

        class NoPytest(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("pytest", "_pytest", "pytest_asyncio"):
                    raise ImportError(f"{name} is not installed")
                return None

        sys.meta_path.insert(0, NoPytest())
        import neuroglia.data.redis.testing as testing

        assert "pytest" not in sys.modules
        assert not hasattr(testing, "redis_repository")
        clock = testing.FakeClock()
        clock.advance(1)
        assert clock() == 1001.0
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env={**os.environ}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# -- mocks, as the page's unit tests use them ----------------------------------------------


def test_mocks_of_the_repository_are_async_where_it_is() -> None:
    spec_mock = Mock(spec=RedisRepository)
    autospec = create_autospec(RedisRepository, instance=True)
    coroutines = [
        name
        for name, member in inspect.getmembers(RedisRepository)
        if inspect.iscoroutinefunction(member) and not name.startswith("__")
    ]
    assert len(coroutines) > 50
    for name in ("get_async", "set_async", "delete_async", "hget_async", "hset_async", "ping", "memory_usage"):
        assert name in coroutines
    for name in coroutines:
        assert isinstance(getattr(spec_mock, name), AsyncMock), name
        assert isinstance(getattr(autospec, name), AsyncMock), name
    with pytest.raises(AttributeError):
        _ = spec_mock.no_such_method_async  # spec= catches typos, as the page relies on


async def test_an_autospec_mock_checks_arguments_and_awaits() -> None:
    redis = create_autospec(RedisRepository, instance=True)
    redis.get_async.return_value = '{"name": "Margherita"}'
    assert await redis.get_async("mario_pizzeria:menu:item:margherita") == '{"name": "Margherita"}'
    await redis.set_async(key="k", value="v", expiration=60)
    redis.set_async.assert_awaited_once_with(key="k", value="v", expiration=60)
    with pytest.raises(TypeError):
        await redis.set_async("k", "v", no_such_argument=1)
