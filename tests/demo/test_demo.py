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

from neuroglia.data.redis import (
    CacheUnavailableError,
    CircuitState,
    RedisConfig,
    RedisRepository,
)
from neuroglia.data.redis.__main__ import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, main
from neuroglia.data.redis.demo import SECTIONS, DemoContext, Section, run_demo
from neuroglia.data.redis.testing import LocalCluster, RedisServer, SentinelGroup, free_port

SECTION_TITLES = [
    "Menu cache - MenuCacheService",
    "Customer sessions - CustomerSessionService",
    "Kitchen queue - KitchenQueueService",
    "Distributed locking - OrderProcessingService",
    "Kitchen stations - KitchenQueueService",
    "Fencing tokens - DistributedLock",
    "Real-time analytics - PizzaAnalyticsService",
    "Customer segmentation - CustomerSegmentationService",
    "Custom serialization - CustomSerializationService",
    "Resilience - ResilientMenuService",
    "Cache layer - RedisCache",
    "Metrics - CachePerformanceMonitor",
]
SECTIONS_BY_TITLE = {s.title: s for s in SECTIONS}


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
    assert_locks_report(report)
    assert_resilience_report(report)
    assert_metrics_report(report)
    assert "FAILED" not in report
    assert "\r" not in report  # plain lines, readable through a pipe or in a log
    assert "\x1b" not in report
    assert "Traceback" not in report
    assert "; 0 remain" in report
    last = report.rstrip().splitlines()[-1]
    assert re.fullmatch(rf"All \d+ checks passed in {len(SECTION_TITLES)} sections\.", last), last


def assert_locks_report(report: str) -> None:
    """Orders, inventory, kitchen stations and fencing, as the report shows them."""
    for row in (
        # One call of the six per order does the work; the page's outcomes, each from one instance.
        r"o-201 +24\.50 mozzarella +6 calls +processed \(instance-[123]\) +5x already processed +processing +1",
        r"o-202 +18\.00 basil +6 calls +processed \(instance-[123]\) +5x already processed +processing +1",
        r"o-203 +0\.00 mozzarella +6 calls +payment failed \(instance-[123]\) +5x already processed +payment_failed +0",
        r"o-204 +31\.00 truffle +6 calls +inventory shortage \(instance-[123]\) +5x already processed "
        r"+awaiting_stock +0",
        r"coordinate_inventory_update\(\) \(DistributedLock\) +68 +68 +no",
        r"coordinate_inventory_update\('flour', -1000\) -> InsufficientInventoryError: Cannot reduce flour by 1000\. "
        r"Current stock: 68",
        r"12 orders served in",
        # The stale holder's late write is refused; its exit leaves the newer holder's lock alone.
        r"instance-1 +acquires \(lease 0\.2 s, no renewal\) +\d+ +held",
        r"instance-2 +acquires once the lease ran out +\d+ +held",
        r"instance-1 +resumes; is_owned\(\) +\d+ +False",
        r"instance-1 +late fenced write of menu:special +\d+ +refused",
        r"instance-1 +leaves the block +\d+ +LockLostError",
        r"instance-2 +after instance-1 left: is_owned\(\) +\d+ +True",
        r"menu:special = 'Diavola Speciale'",
        r"logged: WARNING neuroglia\.data\.redis\.lock: lock 'mario_pizzeria:specials_lock' \(fencing token \d+\) "
        r"was lost",
    ):
        assert re.search(row, report), row
    # Each of the 12 queued orders went to exactly one of the six stations.
    stations = re.findall(r"^  oven-\d +instance-\d +\d+ +(.+?)  +\[", report, re.MULTILINE)
    assert len(stations) == 6, stations
    taken = [order for line in stations for order in line.split(", ")]
    assert sorted(taken) == sorted(["o-101", "o-103", *(f"o-3{n:02d}" for n in range(10))])


def assert_resilience_report(report: str) -> None:
    """The outage: breaker opening, failing fast, both fallbacks, recovery and its events."""
    for row in (
        r"get_menu_with_fallback\('pepperoni'\) #1 +the service's fallback_cache +CacheUnavailableError +3 .+"
        r" closed \(1/3 failures\)",
        r"get_menu_with_fallback\('pepperoni'\) #2 +the service's fallback_cache +CacheUnavailableError +3 .+"
        r" closed \(2/3 failures\)",
        r"get_menu_with_fallback\('pepperoni'\) #3 +the service's fallback_cache +CacheUnavailableError +3 .+ open",
        r"get_menu_with_fallback\('pepperoni'\) #4 +the service's fallback_cache +CircuitOpenError +0 .+ open",
        r"get_menu_with_fallback\('diavola'\) +database \(last resort\) +CircuitOpenError +0 ",
        r"board\.get_async\(menu:margherita\) +the repository's stale fallback +- +3 .+ served_stale\(\) True",
        r"board\.set_async\(menu:margherita\) +raises CacheUnavailableError",
        r"get_menu_with_fallback\('margherita'\) \(trial 1\) +Redis +- +0 .+ half_open",
        r"get_menu_with_fallback\('pepperoni'\) \(trial 2\) +Redis +- +0 .+ closed",
        r"board\.get_async\(menu:margherita\) +Redis +- +0 +served_stale\(\) False",
        r"\d+ ms +closed -> open +3 consecutive failed operations",
        r"\d+ ms +open -> half_open +recovery_timeout \(0\.2 s\) elapsed",
        r"\d+ ms +half_open -> closed +2 successful trial calls",
        r"The service caught: CacheUnavailableError: GET: Redis unavailable: \[Errno \d+\] Connection refused "
        r"\(simulated outage\)",
        r"then: CircuitOpenError: circuit 'redis' is open: failing fast",
        r"The outage refused 15 commands in this process; none reached the server\.",
        r"logged: WARNING neuroglia\.data\.redis\.breaker: circuit redis: closed -> open",
    ):
        assert re.search(row, report), row


def assert_metrics_report(report: str) -> None:
    """The page's monitor and the summary tables of repo.metrics."""
    metrics = report[report.index("Metrics - CachePerformanceMonitor") :]
    for row in (
        r"total_operations +0\n",
        r"cache_hits +3\n",
        r"cache_misses +3\n",
        r"hit_ratio +0\.5\n",
        r"active_connections +[1-9]\d*\n",
        r"memory_usage +[1-9]\d*\n",
        r"figure +demo repository +all 7 repositories of the run",
        r"commands +[1-9]\d* +[1-9]\d*\n",
        r"reads: hits / misses +\d+ / \d+ +\d+ / \d+",
        r"hit ratio +\d+\.\d% +\d+\.\d%",
        r"latency p50 / p99 +\d+\.\d+ ms / \d+\.\d+ ms",
        r"locks acquired / timed out +\d+ / 0 +[1-9]\d* / 0",
        r"lock wait p50 / p99 .+ ms",
        r"lock hold p50 / p99 .+ ms",
        r"circuit breaker +closed \(opened 1x, 3 transitions\)",
        r"connections created +[1-9]\d* of [1-9]\d*",  # 50 per server (per node on a cluster)
        r"command \(demo repository\) +calls +p50 +p99",
        r"GET +[1-9]\d* +\d+\.\d+ ms +\d+\.\d+ ms",
        r"CacheUnavailableError +GET +3\n",
        r"CircuitOpenError +GET +\d+\n",
        r"latency \(all commands\) +calls",
    ):
        assert re.search(row, metrics), row


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


class FlushRecorder(io.StringIO):
    """A report stream that remembers what had been flushed when."""

    def __init__(self) -> None:
        super().__init__()
        self.flushed = ""

    def flush(self) -> None:
        self.flushed = self.getvalue()
        super().flush()


async def test_each_section_title_is_flushed_as_the_section_starts() -> None:
    out = FlushRecorder()
    seen: list[str] = []

    async def probe(ctx: DemoContext) -> None:
        # The title line, then its underline, are out before the section does anything.
        seen.append(out.flushed.rstrip("\n").splitlines()[-2])
        ctx.check(True, "fine")

    sections = [Section("Oven", "OvenService", probe), Section("Till", "TillService", probe)]
    result = await run_demo(f"memory://test-demo-{uuid.uuid4().hex}", out=out, sections=sections)
    assert result.ok, out.getvalue()
    assert seen == ["[1/2] Oven - OvenService", "[2/2] Till - TillService"]


@pytest.mark.parametrize(
    "title", ["Distributed locking", "Kitchen stations", "Fencing tokens", "Resilience", "Cache layer", "Metrics"]
)
async def test_a_new_section_runs_on_its_own(title: str) -> None:
    # Each section stands alone (the metrics section reports on whatever ran before it).
    sections = [SECTIONS_BY_TITLE[title]]
    if title != "Metrics":
        sections.append(SECTIONS_BY_TITLE["Metrics"])
    out = io.StringIO()
    result = await run_demo(f"memory://test-demo-{uuid.uuid4().hex}", out=out, sections=sections)
    assert result.ok, out.getvalue()
    assert result.remaining_keys == 0


async def test_a_failure_during_the_simulated_outage_still_cleans_up() -> None:
    async def stuck_in_an_outage(ctx: DemoContext) -> None:
        await ctx.repo.set_async("menu:special", "Diavola")
        ctx.run.faults.outage = True
        for _ in range(5):  # enough to open the demo repository's breaker
            with pytest.raises(CacheUnavailableError):
                await ctx.repo.get_async("menu:special")
        breaker = ctx.repo.circuit_breaker
        assert breaker is not None
        assert breaker.state is CircuitState.OPEN
        ctx.check(False, "the oven is cold")

    url = f"memory://test-demo-{uuid.uuid4().hex}"
    async with RedisRepository(RedisConfig(url=url)) as observer:
        out = io.StringIO()
        result = await run_demo(url, out=out, sections=[Section("Outage", "S", stuck_in_an_outage)])
        assert result.failure == "Outage: check failed: the oven is cold"
        assert result.removed_keys == 1
        assert result.remaining_keys == 0
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
@pytest.mark.cluster
async def test_demo_subprocess_on_a_cluster(redis_cluster: LocalCluster) -> None:
    # The page's segmentation combines keys in one SUNIONSTORE: the run's prefix carries a hash tag.
    done = run_cli("demo", "--url", redis_cluster.url)

    assert done.returncode == EXIT_OK, done.stdout + done.stderr
    assert_full_report(done.stdout)
    prefix = re.search(r"removed \d+ demo keys under (demo:\{[0-9a-f]{8}\}:)\*; 0 remain", done.stdout)
    assert prefix is not None, done.stdout
    async with RedisRepository(RedisConfig(url=redis_cluster.url)) as observer:
        assert [k async for k in observer.scan_async(prefix.group(1) + "*")] == []


@pytest.mark.integration
async def test_demo_subprocess_through_sentinels(sentinel_group: SentinelGroup) -> None:
    done = run_cli("demo", "--url", sentinel_group.url)

    assert done.returncode == EXIT_OK, done.stdout + done.stderr
    assert_full_report(done.stdout)
    assert "redis+sentinel://" in done.stdout


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
