"""Benchmark: the multiplexed transport against redis-py, valkey-glide and the redis-py transport.

Run by hand (not part of the test suite), with the ``bench`` extra installed
(``pip install -e '.[bench]'``: valkey-glide and uvloop)::

    .venv/bin/python benchmarks/bench_transport.py                 # both loops, a few minutes
    .venv/bin/python benchmarks/bench_transport.py --quick         # a quick look
    .venv/bin/python benchmarks/bench_transport.py --loop uvloop   # one loop only
    .venv/bin/python benchmarks/bench_transport.py --json out.json # also save the report
    .venv/bin/python benchmarks/bench_transport.py --profile       # cProfile of 50 tasks on the repository

It starts one private ``redis-server`` (a free loopback port, no persistence)
and measures, against it, SET+GET pairs of 100-byte values:

(a) sequential: one caller, ops/s and p50 latency of one command;
(b) 50 concurrent tasks: ops/s;
(c) 1,000 concurrent tasks: ops/s, the connections the client opened (the
    server's ``connected_clients``) and, in a separate untimed pass, the peak
    memory the run allocated (``tracemalloc``);
(d) a pipeline of 100 SETs and 100 GETs (two batches), ops/s.

Contenders: ``repo-mux`` is ``RedisRepository`` with its default settings
(circuit breaker, retries and the 10 s operation deadline on; the
multiplexed transport); ``repo-redis-py`` the same repository on the
redis-py transport; ``redis-py`` is raw ``redis.asyncio.Redis`` (hiredis
parser, pool of 50, RESP2, ``decode_responses=True``); ``glide`` is
valkey-glide's async ``GlideClient`` (its Rust core, one multiplexed
connection; request timeout 10 s like the repository's deadline), run in a
process of its own so that its Rust runtime's threads do not share the
process of the others (in one process they cut the repository's 1,000-task
figure by a third); the main process still orders every slice. Every
round runs each contender's share in slices, in an order that turns from
round to round; the report gives medians over rounds and the
median of per-round ratios. Targets (repo-mux): (b) >= 4x redis-py and >=
1.3x glide; (a) >= 1.5x redis-py with p50 <= 0.7x; (d) >= 1.5x redis-py's
pipeline; (c) no more connections than configured and ops/s >= (b).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import multiprocessing
import pstats
import statistics
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio as aioredis
from _machine import describe_machine

from neuroglia.data.redis import RedisConfig, RedisRepository
from neuroglia.data.redis.testing import RedisServer

VALUE = "v" * 100
MUX, REPO_PY, RAW, GLIDE = "repo-mux", "repo-redis-py", "redis-py", "glide"
TARGETS = {
    "concurrent50_vs_redis_py": 4.0,
    "concurrent50_vs_glide": 1.3,
    "sequential_vs_redis_py": 1.5,
    "sequential_p50_vs_redis_py": 0.7,  # at most
    "pipeline_vs_redis_py": 1.5,
}


@dataclass
class Client:
    """One contender: SET, GET and a pipeline of SETs then GETs, plus its close."""

    set: Callable[[str], Awaitable[Any]]
    get: Callable[[str], Awaitable[Any]]
    pipeline: Callable[[list[str]], Awaitable[Any]]
    close: Callable[[], Awaitable[Any]]
    crowd: Client | None = None  # what runs the 1,000 tasks, when not this client itself


async def make_clients(url: str, host: str, port: int, names: list[str]) -> dict[str, Client]:
    clients: dict[str, Client] = {}
    for name in names:
        if name in (MUX, REPO_PY):
            repo = RedisRepository(
                RedisConfig(url=url, transport="multiplexed" if name == MUX else "redis-py", client_name=name)
            )
            await repo.connect()

            async def repo_pipeline(keys: list[str], repo: RedisRepository = repo) -> Any:
                pipe = repo.pipeline()
                for key in keys:
                    pipe.set_async(key, VALUE)
                await pipe.execute()
                pipe = repo.pipeline()
                for key in keys:
                    pipe.get_async(key)
                return await pipe.execute()

            clients[name] = Client(
                set=lambda k, repo=repo: repo.set_async(k, VALUE),
                get=repo.get_async,
                pipeline=repo_pipeline,
                close=repo.disconnect,
            )
        elif name == RAW:
            raw = aioredis.Redis(
                host=host, port=port, max_connections=50, protocol=2, decode_responses=True, client_name=name
            )
            await raw.ping()

            async def raw_pipeline(keys: list[str], raw: aioredis.Redis = raw) -> Any:
                async with raw.pipeline(transaction=False) as pipe:
                    for key in keys:
                        pipe.set(key, VALUE)
                    await pipe.execute()
                    for key in keys:
                        pipe.get(key)
                    return await pipe.execute()

            # redis-py's default pool raises "Too many connections" past its size;
            # 1,000 tasks need the blocking pool, which waits for a connection.
            blocking = aioredis.Redis.from_pool(
                aioredis.BlockingConnectionPool(
                    host=host,
                    port=port,
                    max_connections=50,
                    timeout=10,
                    protocol=2,
                    decode_responses=True,
                    client_name=f"{name}-blocking",
                )
            )
            await blocking.ping()

            async def close_both(raw: aioredis.Redis = raw, blocking: aioredis.Redis = blocking) -> None:
                await raw.aclose()
                await blocking.aclose()

            crowd = Client(
                set=lambda k, b=blocking: b.set(k, VALUE), get=blocking.get, pipeline=raw_pipeline, close=close_both
            )
            clients[name] = Client(
                set=lambda k, raw=raw: raw.set(k, VALUE),
                get=raw.get,
                pipeline=raw_pipeline,
                close=close_both,
                crowd=crowd,
            )
        elif name == GLIDE:
            from glide import Batch, GlideClient, GlideClientConfiguration, NodeAddress

            # Its default request timeout (250 ms) is shorter than a 1,000-task queue
            # takes to drain; give it the repository's operation deadline (10 s).
            config = GlideClientConfiguration([NodeAddress(host, port)], client_name=name, request_timeout=10_000)
            glide = await GlideClient.create(config)

            async def glide_pipeline(keys: list[str], glide: Any = glide) -> Any:
                batch = Batch(is_atomic=False)
                for key in keys:
                    batch.set(key, VALUE)
                await glide.exec(batch, raise_on_error=True)
                batch = Batch(is_atomic=False)
                for key in keys:
                    batch.get(key)
                return await glide.exec(batch, raise_on_error=True)

            clients[name] = Client(
                set=lambda k, glide=glide: glide.set(k, VALUE),
                get=glide.get,
                pipeline=glide_pipeline,
                close=glide.close,
            )
    return clients


@dataclass
class Tally:
    ops: int = 0
    elapsed: float = 0.0
    latencies: list[int] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.ops += other.ops
        self.elapsed += other.elapsed
        self.latencies += other.latencies


class Remote:
    """A contender in a process of its own (valkey-glide: its Rust runtime's threads
    would otherwise share the process, and its CPU, with the other contenders).

    The main process still decides the order of every slice; the worker runs
    the same workload functions on its own loop and sends back its tally.
    """

    def __init__(self, name: str, host: str, port: int, loop_name: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_worker, args=(child, name, host, port, loop_name), daemon=True)
        self._process.start()

    async def run(self, kind: str, *args: Any) -> Tally:
        self._conn.send((kind, args))
        ops, elapsed, latencies = await asyncio.to_thread(self._conn.recv)
        return Tally(ops, elapsed, latencies)

    async def close(self) -> None:
        self._conn.send(("close", ()))
        await asyncio.to_thread(self._process.join, 30)


def _worker(conn: Any, name: str, host: str, port: int, loop_name: str) -> None:
    async def serve() -> None:
        client = (await make_clients("", host, port, [name]))[name]
        while True:
            kind, args = conn.recv()
            if kind == "close":
                await client.close()
                return
            tally = Tally()
            if kind == "seq":
                await sequential(client, args[0], tally, args[1])
            elif kind == "conc":
                await concurrent(client, args[0], args[1], tally)
            else:
                await pipelined(client, args[0], tally)
            conn.send((tally.ops, tally.elapsed, tally.latencies))

    if loop_name == "uvloop":
        import uvloop

        uvloop.run(serve())
    else:
        asyncio.run(serve())


async def sequential(client: Client, n: int, tally: Tally, offset: int) -> None:
    clock = time.perf_counter_ns
    gc.collect()
    started = clock()
    lat = tally.latencies
    for i in range(offset, offset + n):
        key = f"seq:{i % 1000}"
        t0 = clock()
        await client.set(key)
        t1 = clock()
        await client.get(key)
        t2 = clock()
        lat.append(t1 - t0)
        lat.append(t2 - t1)
    tally.elapsed += (clock() - started) / 1e9
    tally.ops += 2 * n


async def concurrent(client: Client, pairs: int, tasks: int, tally: Tally) -> None:
    if tasks > 50 and client.crowd is not None:
        client = client.crowd
    per_task = max(1, pairs // tasks)

    async def worker(t: int) -> None:
        for i in range(per_task):
            key = f"c:{(t * 7 + i) % 5000}"
            await client.set(key)
            await client.get(key)

    gc.collect()
    started = time.perf_counter()
    await asyncio.gather(*(worker(t) for t in range(tasks)))
    tally.elapsed += time.perf_counter() - started
    tally.ops += 2 * per_task * tasks


async def pipelined(client: Client, batches: int, tally: Tally) -> None:
    keys = [f"p:{i}" for i in range(100)]
    gc.collect()
    started = time.perf_counter()
    for _ in range(batches):
        replies = await client.pipeline(keys)
        assert len(replies) == 100
    tally.elapsed += time.perf_counter() - started
    tally.ops += 200 * batches


def percentile(values: list[int], q: float) -> float:
    values = sorted(values)
    return float(values[min(len(values) - 1, max(0, round(q * len(values)) - 1))])


async def connections_during(admin: redis.Redis, name: str, work: Awaitable[Any]) -> tuple[Any, int]:
    """Run ``work``; the most connections named ``name`` the server saw meanwhile."""
    highest = 0
    done = False

    def count() -> int:
        return sum(1 for client in admin.client_list() if client.get("name") == name)

    async def sample() -> None:
        nonlocal highest
        while not done:
            highest = max(highest, await asyncio.to_thread(count))
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    try:
        result = await work
    finally:
        done = True
        await sampler
    return result, highest


async def run(args: argparse.Namespace, server: RedisServer, loop_name: str) -> dict[str, Any]:
    names = [MUX, REPO_PY, RAW] if args.contenders is None else args.contenders.split(",")
    if not args.no_glide and args.contenders is None:
        try:
            import glide  # noqa: F401

            names.append(GLIDE)
        except ImportError:
            print("  (valkey-glide is not installed: pip install -e '.[bench]')", file=sys.stderr)
    clients = await make_clients(server.url, server.host, server.port, [n for n in names if n != GLIDE])
    remotes = {GLIDE: Remote(GLIDE, server.host, server.port, loop_name)} if GLIDE in names else {}

    async def seq(name: str, n: int, tally: Tally, offset: int) -> None:
        if name in remotes:
            tally.add(await remotes[name].run("seq", n, offset))
        else:
            await sequential(clients[name], n, tally, offset)

    async def conc(name: str, pairs: int, tasks: int, tally: Tally) -> None:
        if name in remotes:
            tally.add(await remotes[name].run("conc", pairs, tasks))
        else:
            await concurrent(clients[name], pairs, tasks, tally)

    async def pipe(name: str, batches: int, tally: Tally) -> None:
        if name in remotes:
            tally.add(await remotes[name].run("pipe", batches))
        else:
            await pipelined(clients[name], batches, tally)

    admin = redis.Redis(host=server.host, port=server.port, decode_responses=True)
    for name in names:  # warm up code paths and connections
        await seq(name, 200, Tally(), 0)
        await conc(name, 2000, 50, Tally())
        await conc(name, 2000, 1000, Tally())
        await pipe(name, 5, Tally())
    rounds: list[dict[str, Any]] = []
    for rnd in range(args.rounds):
        shift = rnd % len(names)
        order = names[shift:] + names[:shift]
        if rnd % 2:
            order.reverse()
        row: dict[str, Any] = {"order": order}
        tallies = {kind: {name: Tally() for name in names} for kind in ("seq", "c50", "c1000", "pipe")}
        for slice_ in range(args.slices):
            group = order if slice_ % 2 == 0 else order[::-1]
            for name in group:
                await seq(name, args.seq_pairs // args.slices, tallies["seq"][name], slice_ * 1000)
            for name in group:
                await conc(name, args.pairs // args.slices, 50, tallies["c50"][name])
            for name in group:
                # At least ten pairs per task, so that starting 1,000 tasks is not what is measured.
                await conc(name, max(args.pairs // args.slices, 10 * 1000), 1000, tallies["c1000"][name])
            for name in group:
                await pipe(name, max(1, args.pipelines // args.slices), tallies["pipe"][name])
        for name in names:
            tally = tallies["seq"][name]
            row[name] = {
                "sequential_ops": tally.ops / tally.elapsed,
                "sequential_p50_us": percentile(tally.latencies, 0.5) / 1000,
                "concurrent50_ops": tallies["c50"][name].ops / tallies["c50"][name].elapsed,
                "concurrent1000_ops": tallies["c1000"][name].ops / tallies["c1000"][name].elapsed,
                "pipeline_ops": tallies["pipe"][name].ops / tallies["pipe"][name].elapsed,
            }
        rounds.append(row)
        print(f"  [{loop_name}] round {rnd + 1}/{args.rounds} ({', '.join(order)})", file=sys.stderr)

    # Connections during 1,000 concurrent tasks, and the memory they need (untimed).
    connections: dict[str, int] = {}
    memory_mb: dict[str, float] = {}
    for name in names:
        named = f"{name}-blocking" if name in clients and clients[name].crowd is not None else name
        _, connections[name] = await connections_during(admin, named, conc(name, 20000, 1000, Tally()))
    for name in [n for n in (MUX, RAW) if n in clients]:
        gc.collect()
        tracemalloc.start()
        await concurrent(clients[name], 4000, 1000, Tally())
        memory_mb[name] = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
    for client in clients.values():
        await client.close()
    for remote in remotes.values():
        await remote.close()
    admin.close()
    return summarise(rounds, names, connections, memory_mb)


def summarise(
    rounds: list[dict[str, Any]], names: list[str], connections: dict[str, int], memory_mb: dict[str, float]
) -> dict[str, Any]:
    med = statistics.median
    metrics = ("sequential_ops", "sequential_p50_us", "concurrent50_ops", "concurrent1000_ops", "pipeline_ops")
    figures = {name: {m: med(r[name][m] for r in rounds) for m in metrics} for name in names}
    ratios: dict[str, dict[str, float]] = {}
    if MUX not in names or RAW not in names:
        return {"rounds": len(rounds), "figures": figures, "ratios_of_repo_mux_to": {}, "checks": {},
                "connections_during_1000_tasks": connections, "peak_memory_mb_1000_tasks": memory_mb}
    for other in names:
        if other == MUX:
            continue
        ratios[other] = {m: med(r[MUX][m] / r[other][m] for r in rounds) for m in metrics}
    checks = {
        "concurrent50_vs_redis_py": ratios[RAW]["concurrent50_ops"] >= TARGETS["concurrent50_vs_redis_py"],
        "sequential_vs_redis_py": ratios[RAW]["sequential_ops"] >= TARGETS["sequential_vs_redis_py"],
        "sequential_p50_vs_redis_py": ratios[RAW]["sequential_p50_us"] <= TARGETS["sequential_p50_vs_redis_py"],
        "pipeline_vs_redis_py": ratios[RAW]["pipeline_ops"] >= TARGETS["pipeline_vs_redis_py"],
        "concurrent1000_not_below_concurrent50": med(
            r[MUX]["concurrent1000_ops"] / r[MUX]["concurrent50_ops"] for r in rounds
        )
        >= 1.0,
        "connections_1000_tasks_within_config": connections.get(MUX, 99) <= 1,
    }
    if GLIDE in ratios:
        checks["concurrent50_vs_glide"] = ratios[GLIDE]["concurrent50_ops"] >= TARGETS["concurrent50_vs_glide"]
    return {
        "rounds": len(rounds),
        "figures": figures,
        "ratios_of_repo_mux_to": ratios,
        "connections_during_1000_tasks": connections,
        "peak_memory_mb_1000_tasks": memory_mb,
        "checks": checks,
        "per_round": rounds,
    }


def report(loop_name: str, summary: dict[str, Any]) -> None:
    figures, ratios = summary["figures"], summary["ratios_of_repo_mux_to"]
    names = list(figures)
    print(f"\n== {loop_name} loop, medians over {summary['rounds']} rounds (SET+GET, 100-byte values) ==")
    header = f"{'':22}" + "".join(f"{n:>16}" for n in names)
    print(header)
    for metric, label in (
        ("sequential_ops", "sequential ops/s"),
        ("sequential_p50_us", "sequential p50 us"),
        ("concurrent50_ops", "50 tasks ops/s"),
        ("concurrent1000_ops", "1000 tasks ops/s"),
        ("pipeline_ops", "pipeline 100 ops/s"),
    ):
        print(f"{label:22}" + "".join(f"{figures[n][metric]:>16,.1f}" for n in names))
    print("repo-mux / other (median of per-round ratios):")
    for other, values in ratios.items():
        shown = ", ".join(f"{m} {v:.2f}x" for m, v in values.items())
        print(f"  vs {other:14} {shown}")
    print(f"connections during 1000 tasks: {summary['connections_during_1000_tasks']}")
    print(f"peak memory of 1000 tasks (MB, tracemalloc): {summary['peak_memory_mb_1000_tasks']}")
    for check, ok in summary["checks"].items():
        print(f"  {'PASS' if ok else 'FAIL'}  {check}")


def profile(server: RedisServer) -> None:
    async def work() -> None:
        clients = await make_clients(server.url, server.host, server.port, [MUX])
        client = clients[MUX]
        await concurrent(client, 5000, 50, Tally())
        profiler = cProfile.Profile()
        profiler.enable()
        await concurrent(client, 40000, 50, Tally())
        profiler.disable()
        await client.close()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(18)

    asyncio.run(work())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loop", choices=("asyncio", "uvloop", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--slices", type=int, default=2)
    parser.add_argument("--seq-pairs", type=int, default=3000, help="SET+GET pairs per round, sequential")
    parser.add_argument("--pairs", type=int, default=20000, help="SET+GET pairs per round, concurrent")
    parser.add_argument("--pipelines", type=int, default=100, help="pipelines of 100+100 per round")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-glide", action="store_true")
    parser.add_argument("--contenders", help=f"comma-separated subset of {MUX},{REPO_PY},{RAW},{GLIDE}")
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.seq_pairs, args.pairs, args.pipelines = 3, 1000, 6000, 30
    machine = describe_machine()
    print(f"machine: {json.dumps(machine)}")
    print(f"command: {' '.join(sys.argv)}")
    results: dict[str, Any] = {"machine": machine, "command": " ".join(sys.argv)}
    with RedisServer() as server:
        if args.profile:
            profile(server)
            return 0
        loops = ["asyncio", "uvloop"] if args.loop == "both" else [args.loop]
        for loop_name in loops:
            if loop_name == "uvloop":
                import uvloop

                summary = uvloop.run(run(args, server, loop_name))
            else:
                summary = asyncio.run(run(args, server, loop_name))
            report(loop_name, summary)
            results[loop_name] = summary
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
