"""Benchmark: how fast the repository recovers from a Sentinel failover.

Run by hand (not part of the test suite)::

    .venv/bin/python benchmarks/bench_sentinel.py              # 5 failovers, about a minute
    .venv/bin/python benchmarks/bench_sentinel.py --cycles 2   # quicker
    .venv/bin/python benchmarks/bench_sentinel.py --json out.json --check

It starts its own Sentinel group (``neuroglia.data.redis.testing.SentinelGroup``:
one primary, one replica, three sentinels on free loopback ports, no
persistence, ``down-after-milliseconds`` 1000, ``failover-timeout`` 3000)
and, in each cycle, kills the primary while two repositories write through
the sentinel URL, 10 tasks each, one ``SET`` per task every millisecond or
so:

* **breaker off**: ``circuit_breaker=False`` (pure re-resolution);
* **defaults**: the default breaker, retry policy and timeouts.

Both run through the same failover, so their figures are paired. Measured
per cycle and repository:

* *promotion -> first success*: from the moment the replica became the
  primary (its log's ``MASTER MODE enabled`` line, to the millisecond) to the
  answer of the first write sent after it that succeeded (target: within 2 s);
* *kill -> first success*: from the ``SIGKILL`` to the answer of the first
  write sent after it that succeeded (includes the sentinels' ``down-after-milliseconds`` and
  election);
* *+switch-master -> first success*: from the sentinels' announcement (the
  earliest ``+switch-master`` line in their logs) to that first success: the
  library's own share of the recovery;
* failed writes during the cycle (each a ``CacheException``).

Then the killed server is restarted as a replica and the group settles
before the next cycle. The report gives the median and max over cycles.

Before the failovers, the steady-state cost of following the primary: 50
tasks doing ``SET`` + ``GET`` of 64-byte values through the sentinel URL
against the same through ``redis://`` straight to the primary, in
alternating one-second slices; the median of the per-slice-pair ratios
(target: within 5 %, the sentinel transport adds a check per command).

Exit status is 0, or 1 with ``--check`` when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from _machine import describe_machine

from neuroglia.data.redis import CacheException, RedisConfig, RedisRepository
from neuroglia.data.redis.testing import SentinelGroup

TASKS = 10
STEADY_TASKS = 50
STEADY_SLICE = 1.0  # seconds per slice of the steady-state comparison
TARGET_SECONDS = 2.0
CYCLE_BOUND = 30.0  # seconds a cycle may take at most, whatever happens


@dataclass
class Run:
    """One repository's writes through one failover."""

    name: str
    repo: RedisRepository
    sent_ok: list[tuple[float, float]] = field(default_factory=list)  # (sent, answered) of each successful write
    failures: int = 0
    killed_at: float = float("inf")
    recovered: asyncio.Event = field(default_factory=asyncio.Event)  # a write sent after the kill succeeded


async def write(run: Run, key: str, stop: asyncio.Event) -> None:
    value = 0
    while not stop.is_set():
        value += 1
        sent = time.monotonic()
        try:
            await run.repo.set_async(key, str(value))
        except CacheException:
            run.failures += 1
            await asyncio.sleep(0.001)
            continue
        run.sent_ok.append((sent, time.monotonic()))
        if sent > run.killed_at:
            run.recovered.set()
        await asyncio.sleep(0.001)


def logged_at(log: Path, marker: str, after_wall: float) -> float | None:
    """The wall-clock moment of the first line of ``log`` holding ``marker`` logged after ``after_wall``.

    The servers' own log lines, to the millisecond: polling from a thread
    would be late by however long the busy event loop holds the GIL.
    """
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        if marker not in line:
            continue
        # "1234:M 04 Dec 2026 09:23:22.123 * MASTER MODE enabled (user request from ...)"
        stamp = " ".join(line.split(" ")[1:5])
        try:
            moment = datetime.strptime(stamp, "%d %b %Y %H:%M:%S.%f").timestamp()  # the server logs local time
        except ValueError:
            continue
        if moment > after_wall:
            return moment
    return None


def first_after(writes: list[tuple[float, float]], moment: float) -> float | None:
    """Seconds from ``moment`` to the first success of a write sent after it."""
    later = [answered for sent, answered in writes if sent > moment]
    return min(later) - moment if later else None


async def cycle(group: SentinelGroup, runs: list[Run]) -> dict[str, Any]:
    await asyncio.to_thread(group.wait_ready)
    for run in runs:
        run.sent_ok.clear()
        run.failures = 0
        run.killed_at = float("inf")
        run.recovered.clear()
        await run.repo.ping()
    replica = next(server for server in group.servers if server is not group.primary())
    stop = asyncio.Event()
    tasks = [asyncio.create_task(write(run, f"bench:{run.name}:{i}", stop)) for run in runs for i in range(TASKS)]
    try:
        await asyncio.sleep(0.3)
        group.kill_primary()
        killed, killed_wall = time.monotonic(), time.time()
        for run in runs:
            run.killed_at = killed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(run.recovered.wait() for run in runs)), CYCLE_BOUND)
        await asyncio.sleep(0.5)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    await asyncio.to_thread(group.wait_for_failover)
    promoted_wall = logged_at(replica.log_path, "MASTER MODE enabled", killed_wall)
    promoted = killed + (promoted_wall - killed_wall) if promoted_wall is not None else None
    announced_walls = [
        logged_at(sentinel.log_path, f"+switch-master {group.service_name} ", killed_wall)
        for sentinel in group.sentinels
    ]
    known = [moment for moment in announced_walls if moment is not None]
    announced = killed + (min(known) - killed_wall) if known else None
    result: dict[str, Any] = {
        "kill_to_promotion": promoted - killed if promoted else None,
        "promotion_to_announcement": announced - promoted if announced and promoted else None,
    }
    for run in runs:
        result[run.name] = {
            "promotion_to_first_success": first_after(run.sent_ok, promoted) if promoted else None,
            "kill_to_first_success": first_after(run.sent_ok, killed),
            "announcement_to_first_success": first_after(run.sent_ok, announced) if announced else None,
            "failed_writes": run.failures,
        }
    await asyncio.to_thread(group.restart_killed)
    return result


def summary(values: list[float | None]) -> dict[str, float | None]:
    known = [v for v in values if v is not None]
    if not known or len(known) != len(values):
        return {"median": None, "max": None}
    return {"median": statistics.median(known), "max": max(known)}


async def steady_ops(repo: RedisRepository, seconds: float) -> float:
    """GET+SET pairs per second from 50 tasks for ``seconds``."""
    done = 0
    loop = asyncio.get_running_loop()
    stop_at = loop.time() + seconds

    async def worker(index: int) -> None:
        nonlocal done
        key = f"steady:{index}"
        while loop.time() < stop_at:
            await repo.set_async(key, "v" * 64)
            await repo.get_async(key)
            done += 2

    await asyncio.gather(*(worker(i) for i in range(STEADY_TASKS)))
    return done / seconds


async def overhead(group: SentinelGroup, rounds: int) -> dict[str, Any]:
    """The sentinel URL against ``redis://`` straight to the same primary, in alternating slices."""
    primary = group.primary()
    through = RedisRepository(RedisConfig(url=group.url))
    direct = RedisRepository(RedisConfig(url=primary.url))
    ratios, rates_through, rates_direct = [], [], []
    try:
        for repo in (through, direct):
            await steady_ops(repo, 0.2)  # connections open, code warm
        for index in range(rounds):
            order = (through, direct) if index % 2 == 0 else (direct, through)
            rates = {id(repo): await steady_ops(repo, STEADY_SLICE) for repo in order}
            rates_through.append(rates[id(through)])
            rates_direct.append(rates[id(direct)])
            ratios.append(rates[id(through)] / rates[id(direct)])
    finally:
        await through.disconnect()
        await direct.disconnect()
    return {
        "ops_per_s_sentinel": statistics.median(rates_through),
        "ops_per_s_direct": statistics.median(rates_direct),
        "median_ratio": statistics.median(ratios),
        "ratios": ratios,
    }


async def main_async(cycles: int, rounds: int) -> dict[str, Any]:
    with SentinelGroup() as group:
        steady = await overhead(group, rounds)
        print(
            f"steady state, 50 tasks SET+GET: sentinel URL {steady['ops_per_s_sentinel']:,.0f} ops/s, "
            f"redis:// to the primary {steady['ops_per_s_direct']:,.0f} ops/s, "
            f"median ratio {steady['median_ratio']:.3f}",
            flush=True,
        )
        runs = [
            Run("breaker off", RedisRepository(RedisConfig(url=group.url, circuit_breaker=False))),
            Run("defaults", RedisRepository(RedisConfig(url=group.url))),
        ]
        results = []
        try:
            for index in range(cycles):
                outcome = await cycle(group, runs)
                results.append(outcome)
                shown = ", ".join(
                    f"{run.name}: promotion->ok {fmt(outcome[run.name]['promotion_to_first_success'])}, "
                    f"kill->ok {fmt(outcome[run.name]['kill_to_first_success'])}, "
                    f"{outcome[run.name]['failed_writes']} failed"
                    for run in runs
                )
                print(
                    f"cycle {index + 1}: kill->promotion {fmt(outcome['kill_to_promotion'])}, "
                    f"promotion->+switch-master "
                    f"{fmt(outcome['promotion_to_announcement'])}; {shown}",
                    flush=True,
                )
        finally:
            for run in runs:
                await run.repo.disconnect()
    report: dict[str, Any] = {
        "machine": describe_machine(),
        "steady": steady,
        "cycles": results,
        "kill_to_promotion": summary([r["kill_to_promotion"] for r in results]),
        "promotion_to_announcement": summary([r["promotion_to_announcement"] for r in results]),
    }
    for run in runs:
        report[run.name] = {
            "promotion_to_first_success": summary([r[run.name]["promotion_to_first_success"] for r in results]),
            "kill_to_first_success": summary([r[run.name]["kill_to_first_success"] for r in results]),
            "announcement_to_first_success": summary([r[run.name]["announcement_to_first_success"] for r in results]),
            "failed_writes": summary([float(r[run.name]["failed_writes"]) for r in results]),
        }
    return report


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 1000:.0f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=5, help="failovers to measure (default 5; 0: steady state only)")
    parser.add_argument("--rounds", type=int, default=10, help="slices of the steady-state comparison (default 10)")
    parser.add_argument("--json", help="write the report to this file")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    report = asyncio.run(main_async(max(0, args.cycles), max(2, args.rounds)))
    print(f"\n{report['machine']}")
    promotion = report["kill_to_promotion"]
    print(f"kill -> promotion: median {fmt(promotion['median'])}, max {fmt(promotion['max'])}")
    announcement = report["promotion_to_announcement"]
    print(
        f"promotion -> +switch-master (the sentinels announce it): median {fmt(announcement['median'])}, "
        f"max {fmt(announcement['max'])}"
    )
    steady = report["steady"]
    steady_ok = steady["median_ratio"] >= 0.95
    print(
        f"steady state, 50 tasks SET+GET: sentinel / direct median ratio {steady['median_ratio']:.3f} "
        f"({steady['ops_per_s_sentinel']:,.0f} / {steady['ops_per_s_direct']:,.0f} ops/s; "
        f"target >= 0.95: {'PASS' if steady_ok else 'MISSED'})"
    )
    missed = not steady_ok
    for name in ("breaker off", "defaults") if report["cycles"] else ():
        figures = report[name]
        recovery = figures["promotion_to_first_success"]
        ok = recovery["max"] is not None and recovery["max"] <= TARGET_SECONDS
        missed |= not ok
        print(
            f"{name:12s} promotion -> first success: median {fmt(recovery['median'])}, max {fmt(recovery['max'])} "
            f"(target <= {TARGET_SECONDS:g} s: {'PASS' if ok else 'MISSED'}); kill -> first success: median "
            f"{fmt(figures['kill_to_first_success']['median'])}, max {fmt(figures['kill_to_first_success']['max'])}; "
            f"+switch-master -> first success: median {fmt(figures['announcement_to_first_success']['median'])}, "
            f"max {fmt(figures['announcement_to_first_success']['max'])}; "
            f"failed writes per failover: median {figures['failed_writes']['median']:.0f}"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2, default=str)
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
