"""Benchmark: the repository on a local Redis Cluster against redis-py's ``RedisCluster``.

Run by hand (not part of the test suite)::

    .venv/bin/python benchmarks/bench_cluster.py            # about a minute
    .venv/bin/python benchmarks/bench_cluster.py --quick    # a quick look
    .venv/bin/python benchmarks/bench_cluster.py --json out.json

It starts a private cluster (:class:`~neuroglia.data.redis.testing.LocalCluster`:
three primaries, three replicas, free loopback ports, no persistence) and
measures:

(a) 50 concurrent tasks doing SET+GET pairs of 100-byte values on keys spread
    over every slot: ops/s of ``RedisRepository`` (default settings: circuit
    breaker, retries, deadline; the cluster transport, one multiplexed
    connection per node) and of ``redis.asyncio.RedisCluster`` (hiredis,
    ``decode_responses=True``, its default pool per node), in slices whose
    order turns every round; medians over rounds and the median of the
    per-round ratios (target: >= 3x);
(b) ``get_many_async`` of 100 keys spread over the slots against 100 single
    ``get_async`` calls awaited one after the other and against 100 gathered
    at once: median latency of each;
(c) failover: a primary is killed while a probe writes a key of its slots
    every 5 ms; the times from the kill to the promotion (the cluster names
    a new owner) and from the promotion to the probe's first success.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from _machine import describe_machine
from redis.asyncio.cluster import RedisCluster

from neuroglia.data.redis import CacheException, RedisConfig, RedisRepository
from neuroglia.data.redis.testing import LocalCluster

VALUE = "v" * 100
TASKS = 50
TARGET_CONCURRENT = 3.0


async def _pairs(set_: Callable[[str, str], Awaitable[Any]], get: Callable[[str], Awaitable[Any]], pairs: int) -> float:
    """ops/s of ``TASKS`` tasks doing ``pairs`` SET+GET pairs each."""

    async def task(index: int) -> None:
        for n in range(pairs):
            key = f"bench:{index}:{n % 64}"
            await set_(key, VALUE)
            await get(key)

    started = time.perf_counter()
    await asyncio.gather(*(task(i) for i in range(TASKS)))
    return TASKS * pairs * 2 / (time.perf_counter() - started)


async def concurrent(cluster: LocalCluster, rounds: int, pairs: int) -> dict[str, Any]:
    repo = RedisRepository(RedisConfig(url=cluster.url))
    seed = cluster.nodes[0]
    raw = RedisCluster(host=seed.host, port=seed.port, decode_responses=True)
    await raw.initialize()
    contenders: dict[str, tuple[Callable[[str, str], Awaitable[Any]], Callable[[str], Awaitable[Any]]]] = {
        "repository": (repo.set_async, repo.get_async),
        "redis-py RedisCluster": (raw.set, raw.get),
    }
    for set_, get in contenders.values():  # warm up: connections, slot maps
        await _pairs(set_, get, 20)
    figures: dict[str, list[float]] = {name: [] for name in contenders}
    order = list(contenders)
    for _ in range(rounds):
        for name in order:
            figures[name].append(await _pairs(*contenders[name], pairs))
        order.reverse()
    await repo.disconnect()
    await raw.aclose()
    ratios = [a / b for a, b in zip(figures["repository"], figures["redis-py RedisCluster"], strict=True)]
    return {
        "ops_per_s_median": {name: statistics.median(values) for name, values in figures.items()},
        "ratio_median": statistics.median(ratios),
        "target": TARGET_CONCURRENT,
    }


async def many_keys(cluster: LocalCluster, repeats: int) -> dict[str, Any]:
    repo = RedisRepository(RedisConfig(url=cluster.url))
    keys = [f"many:{n}" for n in range(100)]
    await repo.set_many_async(dict.fromkeys(keys, VALUE))
    slots = len({cluster.primary_of(k).port for k in keys})
    timings: dict[str, list[float]] = {
        "get_many_async (100 keys)": [],
        "100 get_async in turn": [],
        "100 get_async gathered": [],
    }
    for _ in range(repeats):
        started = time.perf_counter()
        await repo.get_many_async(keys)
        timings["get_many_async (100 keys)"].append(time.perf_counter() - started)
        started = time.perf_counter()
        for key in keys:
            await repo.get_async(key)
        timings["100 get_async in turn"].append(time.perf_counter() - started)
        started = time.perf_counter()
        await asyncio.gather(*(repo.get_async(key) for key in keys))
        timings["100 get_async gathered"].append(time.perf_counter() - started)
    await repo.disconnect()
    medians = {name: statistics.median(values) * 1000 for name, values in timings.items()}
    many = medians["get_many_async (100 keys)"]
    return {
        "primaries_touched": slots,
        "median_ms": medians,
        "speedup_vs_in_turn": medians["100 get_async in turn"] / many,
        "speedup_vs_gathered": medians["100 get_async gathered"] / many,
    }


async def failover(cluster: LocalCluster, runs: int) -> dict[str, Any]:
    results = []
    loop = asyncio.get_running_loop()
    for run in range(runs):
        repo = RedisRepository(RedisConfig(url=cluster.url))
        key = f"{{failover}}:{run}"
        await repo.set_async(key, "before")
        dead = cluster.primary_of(key)
        marks: dict[str, float] = {}
        killed = asyncio.Event()

        def kill(dead: Any = dead, key: str = key, marks: dict[str, float] = marks, killed: Any = killed) -> None:
            cluster.kill_primary_of(key)
            marks["kill"] = time.monotonic()
            loop.call_soon_threadsafe(killed.set)
            cluster.wait_for_promotion(key, dead, timeout=30)
            marks["promoted"] = time.monotonic()

        thread = threading.Thread(target=kill)
        thread.start()
        await killed.wait()
        for _ in range(20_000):
            try:
                await repo.set_async(key, "after")
                marks["success"] = time.monotonic()
                break
            except CacheException:
                await asyncio.sleep(0.005)
        await asyncio.to_thread(thread.join)
        await repo.disconnect()
        results.append(
            {
                "kill_to_promotion_s": marks["promoted"] - marks["kill"],
                "kill_to_first_success_s": marks["success"] - marks["kill"],
                "promotion_to_first_success_s": marks["success"] - marks["promoted"],
            }
        )
        cluster.restart(dead)  # it rejoins as a replica of its successor
        cluster.wait_until_ready(30)
    return {
        "runs": results,
        "median_promotion_to_first_success_s": statistics.median(r["promotion_to_first_success_s"] for r in results),
        "median_kill_to_first_success_s": statistics.median(r["kill_to_first_success_s"] for r in results),
    }


async def main(quick: bool) -> dict[str, Any]:
    report: dict[str, Any] = {"machine": describe_machine()}
    with LocalCluster() as cluster:
        report["concurrent_50_tasks"] = await concurrent(cluster, rounds=3 if quick else 7, pairs=100 if quick else 300)
        report["get_many_100_keys"] = await many_keys(cluster, repeats=20 if quick else 100)
        report["failover"] = await failover(cluster, runs=1 if quick else 3)
    return report


def _print(report: dict[str, Any]) -> None:
    c = report["concurrent_50_tasks"]
    print("(a) 50 tasks, SET+GET on the cluster (ops/s, median):")
    for name, value in c["ops_per_s_median"].items():
        print(f"    {name:24s} {value:10,.0f}")
    verdict = "met" if c["ratio_median"] >= c["target"] else "NOT met"
    print(f"    ratio (median of rounds) {c['ratio_median']:.2f}x  (target >= {c['target']}x: {verdict})")
    m = report["get_many_100_keys"]
    print(f"(b) 100 keys over {m['primaries_touched']} primaries (median ms):")
    for name, value in m["median_ms"].items():
        print(f"    {name:28s} {value:8.2f}")
    print(f"    get_many_async is {m['speedup_vs_in_turn']:.1f}x faster than 100 gets in turn, "
          f"{m['speedup_vs_gathered']:.1f}x faster than 100 gathered")  # fmt: skip
    f = report["failover"]
    print("(c) failover (seconds):")
    for run in f["runs"]:
        print("    " + ", ".join(f"{k} {v:.2f}" for k, v in run.items()))
    print(f"    median promotion -> first success {f['median_promotion_to_first_success_s']:.2f}s; "
          f"kill -> first success {f['median_kill_to_first_success_s']:.2f}s")  # fmt: skip
    print(f"machine: {report['machine']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--json", help="also write the report to this file")
    options = parser.parse_args()
    result = asyncio.run(main(options.quick))
    _print(result)
    if options.json:
        with open(options.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
