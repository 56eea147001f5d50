"""Benchmark: what the resilience layer costs and how fast it fails and recovers.

Run by hand (not part of the test suite)::

    .venv/bin/python benchmarks/bench_resilience.py            # about half a minute
    .venv/bin/python benchmarks/bench_resilience.py --quick    # a few seconds
    .venv/bin/python benchmarks/bench_resilience.py --json out.json

It starts its own ``redis-server`` (``neuroglia.data.redis.testing.RedisServer``,
a free loopback port, no persistence), which it kills and restarts, and
measures, in one run:

(a) the circuit breaker's cost on the happy path: a repository with
    ``circuit_breaker=False`` against one with the default breaker, otherwise
    identical, sequential and 50-task concurrent GETs. The two are interleaved
    in slices (A B B A ...) within each round, so outside load hits both alike;
    the report gives the median over rounds of the paired ratio
    breaker/no-breaker. Target: >= 0.95 (within 5 %).
(b) fail-fast latency while the breaker is open (the server is down): each
    refused ``get_async`` is timed; p50, p99, p99.9 and max. Target: p99 < 100 µs.
    Also timed: a read answered by the stale fallback while open. The run
    asserts that no connection was attempted meanwhile.
(c) recovery: the server is killed, the breaker opens, the server is restarted
    on the same port while a caller keeps reading (one attempt per
    millisecond); the time from the restart command to the first successful
    read, with the breaker off (pure reconnection) and on.
(d) recovery with the default settings (``recovery_timeout`` 30 s, recovery
    driven by the probe): a one-second outage, 20 cycles; the time from the
    server accepting connections again to the first successful read (target:
    p99 <= 1 s), the fail-fast latency of the caller's refused reads during
    the outage (target: p99 < 100 µs), and the probes sent per second of
    outage (target: a few at most).

Exit status is 0, or 1 with ``--check`` when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from _machine import describe_machine

from neuroglia.data.redis import (
    CacheException,
    CircuitOpenError,
    CircuitState,
    ConnectionPoolConfig,
    RedisConfig,
    RedisRepository,
)
from neuroglia.data.redis.testing import RedisServer

OVERHEAD_TARGET = 0.95  # ops/s with the breaker divided by ops/s without, at least
FAIL_FAST_P99_TARGET_US = 100.0

Op = Callable[[str], Awaitable[Any]]


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))
    return sorted_values[index]


def repository(url: str, **settings: Any) -> RedisRepository:
    pool = settings.pop("connection_pool", ConnectionPoolConfig(max_connections=50))
    return RedisRepository(RedisConfig(url=url, connection_pool=pool, **settings))


# -- (a) the breaker's cost on the happy path -------------------------------------


async def sequential(op: Op, keys: list[str], n: int, latencies: list[int]) -> tuple[float, float]:
    """``(seconds, cpu seconds)`` of ``n`` operations one after the other; each one's ns into ``latencies``."""
    clock = time.perf_counter_ns
    cpu = time.process_time()
    started = clock()
    for i in range(n):
        t0 = clock()
        await op(keys[i % len(keys)])
        latencies.append(clock() - t0)
    return (clock() - started) / 1e9, time.process_time() - cpu


async def concurrent(op: Op, keys: list[str], n: int, tasks: int) -> tuple[float, float]:
    per_task = max(1, n // tasks)

    async def worker(offset: int) -> None:
        for i in range(per_task):
            await op(keys[(offset + i) % len(keys)])

    cpu = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker(t * per_task) for t in range(tasks)))
    return time.perf_counter() - started, time.process_time() - cpu


def bookkeeping_ns(n: int = 1_000_000) -> float:
    """Nanoseconds the breaker adds to one successful call: admission plus the success record."""
    from neuroglia.data.redis import CircuitBreakerPolicy

    breaker = CircuitBreakerPolicy()
    clock = time.perf_counter_ns
    started = clock()
    for _ in range(n):
        pass
    empty = clock() - started
    started = clock()
    for _ in range(n):
        breaker.on_success(breaker.before_call())
    return (clock() - started - empty) / n


async def breaker_overhead(url: str, args: argparse.Namespace) -> dict[str, Any]:
    plain = repository(url, circuit_breaker=False)
    guarded = repository(url)  # the default: breaker on
    assert plain.circuit_breaker is None
    assert guarded.circuit_breaker is not None
    keys = [f"bench:{i:05d}" for i in range(1000)]
    await guarded.set_many_async(dict.fromkeys(keys, "v" * 64))
    contenders: dict[str, RedisRepository] = {"no_breaker": plain, "breaker": guarded}
    for repo in contenders.values():  # warm pools and code paths
        await sequential(repo.get_async, keys, 500, [])
        await concurrent(repo.get_async, keys, 2000, args.concurrency)

    results: dict[str, Any] = {"bookkeeping_ns": bookkeeping_ns()}
    for kind in ("sequential", "concurrent"):
        n = args.seq_ops if kind == "sequential" else args.conc_ops
        per_slice = n // args.slices
        ratios: list[float] = []
        p50_ratios: list[float] = []
        cpu_delta: list[float] = []
        rates: dict[str, list[float]] = {name: [] for name in contenders}
        p50s: dict[str, list[float]] = {name: [] for name in contenders}
        for rnd in range(args.rounds):
            order = list(contenders) if rnd % 2 == 0 else list(contenders)[::-1]
            elapsed = dict.fromkeys(contenders, 0.0)
            cpu = dict.fromkeys(contenders, 0.0)
            done = dict.fromkeys(contenders, 0)
            latencies: dict[str, list[int]] = {name: [] for name in contenders}
            gc.collect()
            # Many short alternating slices (A B B A ...): a burst of outside load
            # lands on both contenders alike.
            for s in range(args.slices):
                for name in order if s % 2 == 0 else order[::-1]:
                    op = contenders[name].get_async
                    if kind == "sequential":
                        wall, used = await sequential(op, keys, per_slice, latencies[name])
                        done[name] += per_slice
                    else:
                        wall, used = await concurrent(op, keys, per_slice, args.concurrency)
                        done[name] += max(1, per_slice // args.concurrency) * args.concurrency
                    elapsed[name] += wall
                    cpu[name] += used
            for name in contenders:
                rates[name].append(done[name] / elapsed[name])
                if latencies[name]:
                    p50s[name].append(statistics.median(latencies[name]) / 1000)
            ratios.append(rates["breaker"][-1] / rates["no_breaker"][-1])
            if kind == "sequential":
                p50_ratios.append(p50s["no_breaker"][-1] / p50s["breaker"][-1])
            cpu_delta.append((cpu["breaker"] / done["breaker"] - cpu["no_breaker"] / done["no_breaker"]) * 1e6)
        median_ratio = statistics.median(ratios)
        entry: dict[str, Any] = {
            "ops_per_s": {name: statistics.median(r) for name, r in rates.items()},
            "ratio": median_ratio,
            "ratio_rounds": ratios,
            "cpu_us_per_op_added": statistics.median(cpu_delta),
            "pass": median_ratio >= OVERHEAD_TARGET,
        }
        if kind == "sequential":
            entry["p50_us"] = {name: statistics.median(v) for name, v in p50s.items()}
            entry["p50_ratio"] = statistics.median(p50_ratios)  # no_breaker p50 / breaker p50
        results[kind] = entry
    for repo in contenders.values():
        await repo.disconnect()
    return results


# -- (b) fail fast while open ---------------------------------------------------------


async def fail_fast(server: RedisServer, args: argparse.Namespace) -> dict[str, Any]:
    repo = repository(
        server.url,
        circuit_breaker={"failure_threshold": 3, "recovery_timeout": 3600, "success_threshold": 1},
        fallback=True,
        retry_policy={"retries": 0},
    )
    await repo.set_async("menu", "margherita")
    assert await repo.get_async("menu") == "margherita"  # remembered by the stale fallback
    server.kill()
    breaker = repo.circuit_breaker
    assert breaker is not None
    while breaker.state is CircuitState.CLOSED:
        with contextlib.suppress(CacheException):
            await repo.get_async("other")
    assert breaker.state is CircuitState.OPEN

    loop = asyncio.get_running_loop()
    connects = 0
    original = loop.create_connection

    async def counting(*a: Any, **kw: Any) -> Any:
        nonlocal connects
        connects += 1
        return await original(*a, **kw)

    loop.create_connection = counting  # type: ignore[method-assign]
    clock = time.perf_counter_ns
    refused: list[float] = []
    stale: list[float] = []
    try:
        for _ in range(1000):  # warm-up
            with contextlib.suppress(CircuitOpenError):
                await repo.get_async("other")
        gc.collect()
        for _ in range(args.fail_ops):
            t0 = clock()
            with contextlib.suppress(CircuitOpenError):
                await repo.get_async("other")
            refused.append((clock() - t0) / 1000)
        for _ in range(args.fail_ops):
            t0 = clock()
            value = await repo.get_async("menu")
            stale.append((clock() - t0) / 1000)
            assert value == "margherita"
        assert repo.served_stale()
    finally:
        del loop.create_connection
    await repo.disconnect()
    server.start()

    def figures(samples: list[float]) -> dict[str, float]:
        samples.sort()
        return {
            "p50_us": percentile(samples, 0.50),
            "p99_us": percentile(samples, 0.99),
            "p999_us": percentile(samples, 0.999),
            "max_us": samples[-1],
        }

    refused_figures = figures(refused)
    return {
        "calls": args.fail_ops,
        "refused": refused_figures,
        "stale_read": figures(stale),
        "connection_attempts": connects,
        "pass": refused_figures["p99_us"] < FAIL_FAST_P99_TARGET_US and connects == 0,
    }


# -- (c) recovery --------------------------------------------------------------------


async def recovery(server: RedisServer, args: argparse.Namespace, breaker: bool) -> dict[str, Any]:
    settings: dict[str, Any] = {"retry_policy": {"retries": 0}}
    if breaker:
        settings["circuit_breaker"] = {
            "failure_threshold": 3,
            "recovery_timeout": args.recovery_timeout,
            "success_threshold": 1,
        }
    else:
        settings["circuit_breaker"] = False
    repo = repository(
        server.url,
        connection_pool=ConnectionPoolConfig(socket_timeout=1.0, socket_connect_timeout=1.0),
        **settings,
    )
    samples: list[dict[str, float]] = []
    for _ in range(args.cycles):
        await repo.set_async("menu", "margherita")
        server.kill()
        # The outage is felt (and the breaker, when on, opens) before the restart.
        for _ in range(5):
            with contextlib.suppress(CacheException):
                await repo.get_async("menu")
        if breaker:
            assert repo.circuit_breaker is not None
            assert repo.circuit_breaker.state is CircuitState.OPEN
        stop = asyncio.Event()
        first_success: list[float] = []

        async def caller(stop: asyncio.Event = stop, first_success: list[float] = first_success) -> None:
            while not stop.is_set():
                try:
                    await repo.get_async("menu")
                except CacheException:
                    await asyncio.sleep(0.001)
                    continue
                first_success.append(time.perf_counter())
                return

        task = asyncio.create_task(caller())
        restart = time.perf_counter()
        await asyncio.to_thread(server.start)
        ready = time.perf_counter()
        try:
            await asyncio.wait_for(task, 30)
        finally:
            stop.set()
        samples.append(
            {
                "restart_to_first_success_ms": (first_success[0] - restart) * 1000,
                "server_boot_ms": (ready - restart) * 1000,
            }
        )
    await repo.disconnect()
    recover = sorted(s["restart_to_first_success_ms"] for s in samples)
    boot = sorted(s["server_boot_ms"] for s in samples)
    return {
        "breaker": breaker,
        "recovery_timeout_s": args.recovery_timeout if breaker else None,
        "cycles": args.cycles,
        "restart_to_first_success_ms": {"median": statistics.median(recover), "max": recover[-1]},
        "server_boot_ms": {"median": statistics.median(boot), "max": boot[-1]},
    }


async def default_recovery(server: RedisServer, args: argparse.Namespace) -> dict[str, Any]:
    repo = RedisRepository(RedisConfig(url=server.url))  # every setting at its default
    recover: list[float] = []
    refused: list[float] = []
    probe_rates: list[float] = []
    for _ in range(args.default_cycles):
        await repo.set_async("menu", "margherita")
        server.kill()
        breaker = repo.circuit_breaker
        assert breaker is not None
        while breaker.state is not CircuitState.OPEN:
            with contextlib.suppress(CacheException):
                await repo.get_async("menu")
        probe = repo._probe
        assert probe is not None
        probes_before, down_at = probe.probes, time.perf_counter()
        until = down_at + args.outage
        while time.perf_counter() < until:  # the caller keeps trying, once per millisecond
            started = time.perf_counter()
            try:
                await repo.get_async("menu")
            except CircuitOpenError:
                refused.append((time.perf_counter() - started) * 1e6)
            except CacheException:
                pass
            await asyncio.sleep(0.001)
        await asyncio.to_thread(server.start)
        ready = time.perf_counter()
        probe_rates.append((probe.probes - probes_before) / (ready - down_at))
        while True:
            try:
                await repo.get_async("menu")
                break
            except CacheException:
                await asyncio.sleep(0.001)
        recover.append((time.perf_counter() - ready) * 1000)
    await repo.disconnect()
    recover.sort()
    refused.sort()
    p99 = recover[min(len(recover) - 1, int(len(recover) * 0.99))]
    refused_p99 = refused[int(len(refused) * 0.99)] if refused else 0.0
    return {
        "cycles": args.default_cycles,
        "outage_s": args.outage,
        "ready_to_first_success_ms": {"median": statistics.median(recover), "p99": p99, "max": recover[-1]},
        "refused_p99_us": refused_p99,
        "probes_per_s": {"median": statistics.median(probe_rates), "max": max(probe_rates)},
        "pass": p99 <= 1000 and refused_p99 < FAIL_FAST_P99_TARGET_US and max(probe_rates) <= 10,
    }


# -- report --------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return describe_machine()


def report(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"neuroglia-redis resilience benchmark, {m['date']}",
        f"machine: {m['cpus']} CPUs, {m['cpu_model']}; {m['platform']}; Python {m['python']}",
        f"server: {m['redis_server']}; redis-py {m['redis_py']}; load average at start {m['loadavg_at_start']}",
        "",
        "(a) circuit breaker on the happy path (GET; median of paired per-round ratios, target >= "
        f"{OVERHEAD_TARGET:.2f})",
    ]
    overhead = result["overhead"]
    for kind in ("sequential", "concurrent"):
        entry = overhead[kind]
        ops = entry["ops_per_s"]
        lines.append(
            f"  {kind:<10}  no breaker {ops['no_breaker']:>9,.0f} ops/s   breaker {ops['breaker']:>9,.0f} ops/s   "
            f"ratio {entry['ratio']:.3f}   CPU added {entry['cpu_us_per_op_added']:+.2f} µs/op   "
            f"{'PASS' if entry['pass'] else 'FAIL'}"
        )
    seq = overhead["sequential"]
    lines.append(
        f"  sequential p50 latency: no breaker {seq['p50_us']['no_breaker']:.1f} µs, "
        f"breaker {seq['p50_us']['breaker']:.1f} µs (ratio {seq['p50_ratio']:.3f})"
    )
    lines.append(
        f"  the breaker's own bookkeeping per call (admit + record success): {overhead['bookkeeping_ns']:.0f} ns"
    )
    ff = result["fail_fast"]
    r, s = ff["refused"], ff["stale_read"]
    lines += [
        "",
        f"(b) while open, server down ({ff['calls']:,} calls each; target p99 < {FAIL_FAST_P99_TARGET_US:.0f} µs)",
        f"  CircuitOpenError   p50 {r['p50_us']:.1f} µs   p99 {r['p99_us']:.1f} µs   p99.9 {r['p999_us']:.1f} µs   "
        f"max {r['max_us']:.0f} µs   {'PASS' if ff['pass'] else 'FAIL'}",
        f"  stale fallback     p50 {s['p50_us']:.1f} µs   p99 {s['p99_us']:.1f} µs   p99.9 {s['p999_us']:.1f} µs   "
        f"max {s['max_us']:.0f} µs",
        f"  connection attempts while open: {ff['connection_attempts']}",
        "",
        "(c) recovery: restart command to first successful read (caller retries every 1 ms)",
    ]
    for entry in result["recovery"]:
        what = f"breaker on, recovery_timeout {entry['recovery_timeout_s']} s" if entry["breaker"] else "breaker off"
        rec, boot = entry["restart_to_first_success_ms"], entry["server_boot_ms"]
        lines.append(
            f"  {what:<38} median {rec['median']:>6.1f} ms   max {rec['max']:>6.1f} ms   "
            f"(server boot median {boot['median']:.1f} ms; {entry['cycles']} cycles)"
        )
    d = result["default_recovery"]
    rec = d["ready_to_first_success_ms"]
    lines += [
        "",
        f"(d) default settings (recovery_timeout 30 s, the probe), {d['outage_s']:g} s outages, {d['cycles']} cycles",
        f"  server accepting -> first successful read: median {rec['median']:.1f} ms   p99 {rec['p99']:.1f} ms   "
        f"max {rec['max']:.1f} ms   (target p99 <= 1000 ms)",
        f"  refused reads while down: p99 {d['refused_p99_us']:.1f} µs (target < 100 µs)",
        f"  probes per second of outage: median {d['probes_per_s']['median']:.1f}   "
        f"max {d['probes_per_s']['max']:.1f}   {'PASS' if d['pass'] else 'FAIL'}",
    ]
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"machine": machine()}
    with RedisServer() as server:
        result["overhead"] = await breaker_overhead(server.url, args)
        result["fail_fast"] = await fail_fast(server, args)
        result["recovery"] = [
            await recovery(server, args, breaker=False),
            await recovery(server, args, breaker=True),
        ]
        result["default_recovery"] = await default_recovery(server, args)
    overhead_pass = all(result["overhead"][k]["pass"] for k in ("sequential", "concurrent"))
    result["pass"] = overhead_pass and result["fail_fast"]["pass"] and result["default_recovery"]["pass"]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds, for a smoke run")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--slices", type=int, default=40)
    parser.add_argument("--seq-ops", type=int, default=4000, help="sequential GETs per contender per round")
    parser.add_argument("--conc-ops", type=int, default=20000, help="concurrent GETs per contender per round")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--fail-ops", type=int, default=20000)
    parser.add_argument("--cycles", type=int, default=5, help="kill/restart cycles per recovery scenario")
    parser.add_argument("--recovery-timeout", type=float, default=0.5)
    parser.add_argument("--default-cycles", type=int, default=20, help="kill/restart cycles with default settings")
    parser.add_argument("--outage", type=float, default=1.0, help="seconds the server stays down in (d)")
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    # The breaker logs each state change at WARNING: expected here, and noise in the report.
    logging.getLogger("neuroglia.data.redis").setLevel(logging.ERROR)
    if args.quick:
        args.rounds, args.seq_ops, args.conc_ops, args.fail_ops, args.cycles = 3, 1000, 5000, 5000, 2
        args.default_cycles = 3
    result = asyncio.run(run(args))
    print(report(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
    return 1 if args.check and not result["pass"] else 0


if __name__ == "__main__":
    sys.exit(main())
