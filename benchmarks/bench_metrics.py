"""Benchmark: what ``enable_metrics=True`` costs, on one private redis-server.

Run by hand (not part of the test suite)::

    .venv/bin/python benchmarks/bench_metrics.py             # about half a minute
    .venv/bin/python benchmarks/bench_metrics.py --quick     # a few seconds
    .venv/bin/python benchmarks/bench_metrics.py --json out.json --check

It starts its own ``redis-server`` (``neuroglia.data.redis.testing.RedisServer``:
a free loopback port, no persistence) and builds two repositories on it that
differ only in ``enable_metrics``. Workloads, each measured for both:

- sequential ``get_async`` of existing keys (hits), of missing keys (misses),
  and ``set_async``, one at a time;
- ``get_async`` from ``--concurrency`` concurrent tasks.

The two contenders are interleaved: every round cuts each workload into
slices run alternately (on, off, off, on, ...), with the starting side
swapped every round, so drift in the machine's load hits both alike. The
report gives, per workload, the median over rounds of ops/s and of client
CPU time per operation, the ratio metrics-on / metrics-off of the medians,
and the median of the per-round ratios (each round's two sides ran
interleaved, so this one cancels drift between rounds). The target: every
per-round median ratio >= 0.90 (metrics cost less than 10 %).

Last, the pure cost of recording: the same ``get_async`` on a transport that
answers at once without I/O (``RedisRepository(transport=...)``), so the
difference per command is the metrics' own CPU time, free of network noise.

Exit status is 0, or 1 with ``--check`` when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from _machine import describe_machine

from neuroglia.data.redis import ConnectionPoolConfig, RedisConfig, RedisRepository
from neuroglia.data.redis.testing import RedisServer, redis_server_binary

TARGET = 0.9  # ops/s with metrics divided by ops/s without, at least
ON, OFF = "metrics on", "metrics off"

Op = Callable[[int], Awaitable[Any]]


async def sequential(op: Op, n: int, start: int) -> tuple[int, float, float]:
    """``n`` operations one after the other: (ops, wall seconds, CPU seconds)."""
    gc.collect()
    cpu = time.process_time()
    started = time.perf_counter()
    for i in range(start, start + n):
        await op(i)
    return n, time.perf_counter() - started, time.process_time() - cpu


async def concurrent(op: Op, n: int, tasks: int) -> tuple[int, float, float]:
    """``n`` operations spread over ``tasks`` tasks: (ops, wall seconds, CPU seconds)."""
    per_task = max(1, n // tasks)

    async def worker(offset: int) -> None:
        for i in range(per_task):
            await op(offset + i)

    gc.collect()
    cpu = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker(t * per_task) for t in range(tasks)))
    return per_task * tasks, time.perf_counter() - started, time.process_time() - cpu


def build(url: str, pool_size: int, metrics: bool) -> RedisRepository:
    pool = ConnectionPoolConfig(max_connections=pool_size)
    return RedisRepository(RedisConfig(url=url, connection_pool=pool, enable_metrics=metrics))


async def bench(args: argparse.Namespace, url: str) -> dict[str, Any]:
    # --noise-floor: both sides without metrics (an A/A run) to show what the machine's noise alone gives.
    repos = {ON: build(url, args.pool_size, not args.noise_floor), OFF: build(url, args.pool_size, False)}
    for repo in repos.values():
        await repo.connect()
    value = "v" * args.value_size
    keys = [f"bench:{i:06d}" for i in range(args.keys)]
    missing = [f"bench:missing:{i:06d}" for i in range(args.keys)]
    await repos[OFF].set_many_async(dict.fromkeys(keys, value))
    nkeys = len(keys)

    def workloads(repo: RedisRepository) -> dict[str, tuple[str, Op]]:
        return {
            "GET hit": ("seq", lambda i: repo.get_async(keys[i % nkeys])),
            "GET miss": ("seq", lambda i: repo.get_async(missing[i % nkeys])),
            "SET": ("seq", lambda i: repo.set_async(keys[i % nkeys], value)),
            f"GET x{args.concurrency} tasks": ("conc", lambda i: repo.get_async(keys[i % nkeys])),
        }

    ops = {name: workloads(repo) for name, repo in repos.items()}
    names = list(ops[ON])

    async def run(kind: str, op: Op, n: int, start: int) -> tuple[int, float, float]:
        if kind == "seq":
            return await sequential(op, n, start)
        return await concurrent(op, n, args.concurrency)

    for side in (ON, OFF):  # warm-up: fill the pools, warm the code paths
        for kind, op in ops[side].values():
            await run(kind, op, min(1000, args.ops), 0)

    rounds: list[dict[str, dict[str, dict[str, float]]]] = []
    deadline = time.monotonic() + args.max_seconds
    for rnd in range(args.rounds):
        if rnd and time.monotonic() > deadline:
            print(f"  (stopping after {rnd} rounds: --max-seconds reached)", file=sys.stderr)
            break
        first, second = (ON, OFF) if rnd % 2 == 0 else (OFF, ON)
        row: dict[str, dict[str, dict[str, float]]] = {}
        per_slice = max(args.concurrency, args.ops // args.slices)
        for workload in names:
            totals = {side: [0, 0.0, 0.0] for side in (ON, OFF)}
            for i in range(args.slices):
                for side in (first, second) if i % 2 == 0 else (second, first):
                    kind, op = ops[side][workload]
                    n, wall, cpu = await run(kind, op, per_slice, i * per_slice)
                    totals[side][0] += n
                    totals[side][1] += wall
                    totals[side][2] += cpu
            row[workload] = {
                side: {"ops_per_s": t[0] / t[1], "cpu_us": t[2] / t[0] * 1e6} for side, t in totals.items()
            }
        rounds.append(row)
        if not args.quiet:
            print(f"  round {rnd + 1}/{args.rounds} done", file=sys.stderr)

    metrics = repos[ON].metrics
    recorded = int(metrics.get_counter("commands_total")) if metrics is not None else 0
    for repo in repos.values():
        await repo.flushdb()
        await repo.disconnect()

    med = statistics.median
    summary: dict[str, Any] = {"workloads": {}, "rounds": len(rounds), "commands_recorded": recorded}
    for workload in names:
        entry: dict[str, Any] = {}
        for side in (ON, OFF):
            entry[side] = {f: med(r[workload][side][f] for r in rounds) for f in ("ops_per_s", "cpu_us")}
        entry["ratio"] = entry[ON]["ops_per_s"] / entry[OFF]["ops_per_s"]
        entry["ratio_rounds"] = [r[workload][ON]["ops_per_s"] / r[workload][OFF]["ops_per_s"] for r in rounds]
        entry["ratio_paired_median"] = med(entry["ratio_rounds"])
        entry["cpu_overhead_us"] = entry[ON]["cpu_us"] - entry[OFF]["cpu_us"]
        entry["pass"] = entry["ratio_paired_median"] >= TARGET
        summary["workloads"][workload] = entry
    summary["pass"] = all(e["pass"] for e in summary["workloads"].values())
    summary["no_io"] = await no_io_overhead(args.no_io_ops)
    return summary


class _InstantTransport:
    """A transport that answers every command at once: no socket, no parsing."""

    async def execute(self, args: Any, deadline: float | None = None) -> Any:
        return b"v"

    async def execute_blocking(self, args: Any, timeout: float) -> Any:
        return None

    async def execute_many(self, commands: Any, *, transaction: bool) -> list[Any]:
        return [b"v" for _ in commands]

    async def close(self) -> None:
        return None

    def pool_stats(self) -> Any:
        from neuroglia.data.redis._client import PoolStats

        return PoolStats(1, 0, 1, 50)


async def no_io_overhead(n: int) -> dict[str, float]:
    """Microseconds of CPU per ``get_async`` without I/O, metrics on and off (best of 5 alternating runs)."""
    best = {ON: float("inf"), OFF: float("inf")}
    for _ in range(5):
        for side, enabled in ((ON, True), (OFF, False)):
            config = RedisConfig(url="redis://127.0.0.1:1/0", enable_metrics=enabled)
            repo = RedisRepository(config, transport=_InstantTransport())
            gc.collect()
            started = time.process_time()
            for _ in range(n):
                await repo.get_async("k")
            best[side] = min(best[side], (time.process_time() - started) / n * 1e6)
    return {"on_us": best[ON], "off_us": best[OFF], "overhead_us": best[ON] - best[OFF]}


def machine() -> dict[str, Any]:
    return describe_machine()


def print_table(report: dict[str, Any]) -> None:
    m, p, s = report["machine"], report["params"], report["summary"]
    print()
    print(f"RedisRepository, enable_metrics=True vs False   {m['date']}")
    if p["noise_floor"]:
        print("  NOISE FLOOR (A/A) RUN: metrics are off on both sides; any gap is the machine's noise")
    print(f"  {m['cpus']} x {m['cpu_model']}, Python {m['python']}, {report['redis_server']}")
    print(
        f"  medians of {s['rounds']} rounds; per round, {p['ops']} ops per workload and side in {p['slices']} "
        f"alternating slices; pool={p['pool_size']}, value={p['value_size']} B; ratio = on/off of the medians, "
        f"paired = median of the per-round ratios (the verdict)"
    )
    print()
    header = (
        f"{'workload':<20}{'on ops/s':>12}{'off ops/s':>12}{'ratio':>8}{'paired':>8}"
        f"{'on us CPU':>11}{'off us CPU':>11}  {'target':<8}"
    )
    print(header)
    print("-" * (len(header) + 5))
    for name, e in s["workloads"].items():
        print(
            f"{name:<20}{e[ON]['ops_per_s']:>12,.0f}{e[OFF]['ops_per_s']:>12,.0f}{e['ratio']:>8.3f}"
            f"{e['ratio_paired_median']:>8.3f}{e[ON]['cpu_us']:>11.1f}{e[OFF]['cpu_us']:>11.1f}"
            f"  {'>= 0.90':<8}{'PASS' if e['pass'] else 'FAIL':>5}"
        )
    print()
    n = s["no_io"]
    print(
        f"without I/O: get_async costs {n['on_us']:.2f} us with metrics, {n['off_us']:.2f} us without: "
        f"{n['overhead_us']:.2f} us of CPU per command for recording"
    )
    print(f"commands recorded by the metrics-on repository: {s['commands_recorded']:,}")
    print(f"overall: {'PASS' if s['pass'] else 'FAIL'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--slices", type=int, default=8, help="alternating slices per workload and round")
    parser.add_argument("--ops", type=int, default=8000, help="operations per workload, side and round")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--pool-size", type=int, default=50)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--value-size", type=int, default=100)
    parser.add_argument("--no-io-ops", type=int, default=50000, help="commands per run of the no-I/O measure")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="stop starting new rounds after this")
    parser.add_argument("--quick", action="store_true", help="3 rounds of 2000 ops")
    parser.add_argument("--json", metavar="PATH", help="also write the full report as JSON")
    parser.add_argument("--noise-floor", action="store_true", help="A/A run: metrics off on both sides")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.ops, args.no_io_ops = 3, 2000, 10000
    if redis_server_binary() is None:
        print("redis-server is not installed (set REDIS_SERVER_BIN or install it)", file=sys.stderr)
        return 2
    host = machine()  # before the run: its load average is the one the run started with
    with RedisServer() as server:
        binary = server.binary
        summary = asyncio.run(bench(args, server.url))
    import subprocess

    version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    report = {
        "machine": host,
        "redis_server": version.split(" sha=")[0],
        "params": {k: v for k, v in vars(args).items() if k not in ("json", "check", "quiet", "quick")},
        "summary": summary,
    }
    print_table(report)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2)
    return 1 if args.check and not summary["pass"] else 0


if __name__ == "__main__":
    sys.exit(main())
