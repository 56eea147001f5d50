"""The ``demo`` command: in-process on memory://, as a subprocess on a private real server.

The real server is a private ``redis-server`` started by
:class:`~neuroglia.data.redis.testing.RedisServer` on a free loopback port
(never the shared server on 6379). Each test seeds an unrelated key first and
checks afterwards that it survived and that no demo key remains.
"""

from __future__ import annotations

import asyncio
import io
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from neuroglia.data.redis import RedisConfig, RedisRepository
from neuroglia.data.redis.__main__ import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, main
from neuroglia.data.redis._demo import SECTIONS, DemoContext, Section, run_demo
from neuroglia.data.redis.testing import RedisServer, free_port

SECTION_TITLES = [
    "Menu cache - MenuCacheService",
    "Customer sessions - CustomerSessionService",
    "Kitchen queue - KitchenQueueService",
    "Distributed locking - OrderProcessingService",
    "Real-time analytics - PizzaAnalyticsService",
    "Customer segmentation - CustomerSegmentationService",
    "Custom serialization - CustomSerializationService",
]


def run_cli(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """``python -m neuroglia.data.redis ARGS`` with the interpreter running the tests."""
    return subprocess.run(
        [sys.executable, "-m", "neuroglia.data.redis", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def assert_full_report(report: str) -> None:
    """Every section ran, passed its checks, and the clean-up left nothing."""
    assert report.startswith("neuroglia-redis demo: Mario's Pizzeria")
    for number, title in enumerate(SECTION_TITLES, 1):
        assert f"[{number}/{len(SECTION_TITLES)}] {title}" in report
    assert report.count("  ok: ") == len(SECTION_TITLES)
    # The page's behaviours, as the report shows them.
    for row in (
        r"get_cached_menu_item\('margherita'\) +cache \(hit\)",
        r"get_cached_menu_item\('diavola'\) +database \(miss\)",
        r"get_cached_menu_item\('diavola'\) again +cache \(hit\)",
        r"invalidate_menu_cache\(\) +delete_pattern_async +removed 4 keys",
        r"c-1001 +5 +2x margherita, 1x diavola",
        r"1 +o-104 +8",
        r"oven-1 +o-104 +8",
        r"find_overlapping_customers\(vegetarian, weekend\) +c-1002, c-1005",
        r"create_targeted_campaign\(\[vegetarian, loyalty\]\) +4 customers",
        r"RedisConfig\(\) \(default\) +'Margherita' +str",
        r"RedisConfig\(decode_responses=False\) +b'Margherita' +bytes",
        r"loyalty_points +135",
    ):
        assert re.search(row, report), row
    assert "RedisHashRepository[Customer]" in report
    assert "FAILED" not in report
    assert "Traceback" not in report
    assert "; 0 remain" in report
    last = report.rstrip().splitlines()[-1]
    assert re.fullmatch(rf"All \d+ checks passed in {len(SECTION_TITLES)} sections\.", last), last


def test_sections_are_the_documented_ones() -> None:
    assert [f"{s.title} - {s.service}" for s in SECTIONS] == SECTION_TITLES


def test_demo_in_process_on_memory(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo"])
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.out + captured.err
    assert captured.err == ""
    assert_full_report(captured.out)
    assert "(embedded backend, no server needed)" in captured.out


async def test_demo_leaves_only_other_keys_on_a_shared_memory_server() -> None:
    url = f"memory://test-demo-{uuid.uuid4().hex}"
    # Holding a connected repository keeps the named embedded server alive.
    async with RedisRepository(RedisConfig(url=url)) as observer:
        await observer.set_async("mario_pizzeria:menu:item:margherita", "not the demo's")
        out = io.StringIO()
        result = await run_demo(url, out=out)
        assert result.ok, out.getvalue()
        assert result.removed_keys > 0
        assert result.remaining_keys == 0
        assert result.checks == sum(s.checks for s in result.sections) > 30
        assert result.prefix.startswith("demo:")
        assert_full_report(out.getvalue())
        assert [k async for k in observer.scan_async("demo:*")] == []
        assert await observer.dbsize() == 1
        assert await observer.get_async("mario_pizzeria:menu:item:margherita") == "not the demo's"


async def test_a_failed_check_is_reported_and_still_cleaned_up() -> None:
    async def failing(ctx: DemoContext) -> None:
        await ctx.repo.set_async("left:behind", "1")
        ctx.check(True, "fine")
        ctx.check(False, "the oven is cold")

    url = f"memory://test-demo-{uuid.uuid4().hex}"
    async with RedisRepository(RedisConfig(url=url)) as observer:
        out = io.StringIO()
        result = await run_demo(url, out=out, sections=[SECTIONS[0], Section("Oven", "OvenService", failing)])
        report = out.getvalue()
        assert not result.ok
        assert result.failure == "Oven: check failed: the oven is cold"
        assert "FAILED: Oven: check failed: the oven is cold" in report
        assert result.remaining_keys == 0
        assert await observer.dbsize() == 0


async def test_an_interrupted_demo_still_cleans_up() -> None:
    started = asyncio.Event()

    async def stuck(ctx: DemoContext) -> None:
        await ctx.repo.set_async("half:done", "1")
        started.set()
        await asyncio.Event().wait()

    url = f"memory://test-demo-{uuid.uuid4().hex}"
    async with RedisRepository(RedisConfig(url=url)) as observer:
        run = asyncio.create_task(run_demo(url, out=io.StringIO(), sections=[Section("Stuck", "S", stuck)]))
        await asyncio.wait_for(started.wait(), 10)
        assert await observer.dbsize() == 1
        run.cancel()  # what Ctrl-C does to asyncio.run's main task
        with pytest.raises(asyncio.CancelledError):
            await run
        assert await observer.dbsize() == 0


@pytest.fixture(scope="module")
def private_server() -> Iterator[RedisServer]:
    """A redis-server of this module only, on a free loopback port."""
    with RedisServer() as server:
        yield server


@pytest.mark.integration
async def test_demo_subprocess_on_a_real_server(private_server: RedisServer) -> None:
    async with RedisRepository(RedisConfig(url=private_server.url)) as observer:
        await observer.flushdb()  # the module's own server
        await observer.set_async("mario_pizzeria:menu:item:margherita", "not the demo's")
        await observer.zadd_async("mario_pizzeria:kitchen_queue", {"someone else's order": 9})

        done = run_cli("demo", "--url", private_server.url)

        assert done.returncode == EXIT_OK, done.stdout + done.stderr
        assert done.stderr == ""
        assert_full_report(done.stdout)
        assert f"server      {private_server.url} (Redis " in done.stdout
        assert [k async for k in observer.scan_async("demo:*")] == []
        assert await observer.dbsize() == 2
        assert await observer.get_async("mario_pizzeria:menu:item:margherita") == "not the demo's"
        assert await observer.zrange_async("mario_pizzeria:kitchen_queue", 0, -1) == ["someone else's order"]


@pytest.mark.integration
def test_demo_twice_in_parallel_on_one_server(private_server: RedisServer) -> None:
    # Each run has its own prefix, so two demos on one server do not collide.
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "neuroglia.data.redis", "demo", "--url", private_server.url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(2)
    ]
    for run in runs:
        out, err = run.communicate(timeout=90)
        assert run.returncode == EXIT_OK, out + err
        assert_full_report(out)


def test_unreachable_server_exits_non_zero_with_a_readable_message() -> None:
    port = free_port()  # nothing listens there
    done = run_cli("demo", "--url", f"redis://:s3cret-pass@127.0.0.1:{port}/0", "--timeout", "2")
    assert done.returncode == EXIT_UNREACHABLE
    assert done.stdout == ""
    assert f"error: cannot reach Redis at redis://:***@127.0.0.1:{port}/0" in done.stderr
    assert "memory://" in done.stderr  # the hint
    assert "Traceback" not in done.stderr
    assert "s3cret-pass" not in done.stderr


@pytest.mark.integration
def test_wrong_password_exits_non_zero_with_a_readable_message() -> None:
    with RedisServer(args=["--requirepass", "right-pass"]) as server:
        done = run_cli("demo", "--url", f"redis://:wrong-pass@127.0.0.1:{server.port}/0")
    assert done.returncode == EXIT_FAILED
    assert f"Redis at redis://:***@127.0.0.1:{server.port}/0 refused the credentials" in done.stderr
    assert "Traceback" not in done.stderr
    assert "wrong-pass" not in done.stderr + done.stdout


def test_invalid_url_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--url", "bogus://somewhere"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "invalid configuration: url: unsupported scheme 'bogus'" in err


def test_usage_errors_come_from_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as no_command:
        main([])
    assert no_command.value.code == EXIT_USAGE
    with pytest.raises(SystemExit) as bad_timeout:
        main(["demo", "--timeout", "0"])
    assert bad_timeout.value.code == EXIT_USAGE
    assert "--timeout: must be > 0" in capsys.readouterr().err
    with pytest.raises(SystemExit) as helped:
        main(["--help"])
    assert helped.value.code == EXIT_OK
    assert "demo" in capsys.readouterr().out
