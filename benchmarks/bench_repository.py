"""Benchmark: RedisRepository against raw redis-py, on one private redis-server.

Run by hand (not part of the test suite)::

    .venv/bin/python benchmarks/bench_repository.py                     # about a minute
    .venv/bin/python benchmarks/bench_repository.py --quick             # a few seconds
    .venv/bin/python benchmarks/bench_repository.py --json out.json     # also save the report
    .venv/bin/python benchmarks/bench_repository.py --with-no-deadline  # + a third contender
    .venv/bin/python benchmarks/bench_repository.py --overhead          # library layers on a stub
    .venv/bin/python benchmarks/bench_repository.py --profile           # cProfile of the GET path

It starts its own ``redis-server`` (``neuroglia.data.redis.testing.RedisServer``:
a free loopback port, no persistence) and measures, against that one server:

(a) sequential GET and SET, one at a time: ops/s, p50 and p99 latency;
(b) GET and SET from ``--concurrency`` (50) concurrent tasks: ops/s;
(c) ``get_many_async`` of 100 keys versus 100 sequential ``get_async``.

The contenders of (a) and (b) are ``RedisRepository.get_async``/``set_async``
with its default settings and a raw ``redis.asyncio.Redis`` (hiredis parser)
with the same pool size, socket settings and protocol (RESP2). Every round
cuts each workload into slices run alternately (A B B A ...), the order
turning from round to round, so drift in the machine's load hits both alike.
The report gives medians over rounds, the client's CPU time per operation,
and the ratio repository/raw: the median of the per-round ratios. Targets:
ratio >= 0.9 in (a) and (b); get_many >= 10x faster than 100 gets in (c).

Exit status is 0, or 1 with ``--check`` when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from _machine import describe_machine
from redis.utils import HIREDIS_AVAILABLE

from neuroglia.data.redis import ConnectionPoolConfig, RedisConfig, RedisRepository
from neuroglia.data.redis.testing import RedisServer

THROUGHPUT_TARGET = 0.9  # repository ops/s divided by raw ops/s, at least
BATCH_TARGET = 10.0  # 100 sequential gets take at least this many times one get_many

Op = Callable[[str], Awaitable[Any]]


# -- measurements --------------------------------------------------------------


@dataclass
class Sequential:
    ops_per_s: float
    p50_us: float
    p99_us: float
    cpu_us: float  # client process CPU time per operation


def _percentile(sorted_values: list[int], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))
    return float(sorted_values[index])


@dataclass
class Tally:
    """What the slices of one contender add up to within a round."""

    ops: int = 0
    elapsed: float = 0.0  # seconds of wall time
    cpu: float = 0.0  # seconds of this process' CPU time
    latencies: list[int] = field(default_factory=list)  # ns, sequential runs only

    def sequential(self) -> Sequential:
        self.latencies.sort()
        return Sequential(
            ops_per_s=self.ops / self.elapsed,
            p50_us=_percentile(self.latencies, 0.50) / 1000,
            p99_us=_percentile(self.latencies, 0.99) / 1000,
            cpu_us=self.cpu / self.ops * 1e6,
        )


async def run_sequential(op: Op, keys: list[str], n: int, start: int, tally: Tally, collect: bool = True) -> None:
    """``n`` operations one after the other, each one timed."""
    latencies = [0] * n
    nkeys = len(keys)
    clock = time.perf_counter_ns
    if collect:
        gc.collect()
    cpu = time.process_time()
    started = clock()
    for i in range(start, start + n):
        t0 = clock()
        await op(keys[i % nkeys])
        latencies[i - start] = clock() - t0
    tally.elapsed += (clock() - started) / 1e9
    tally.cpu += time.process_time() - cpu
    tally.ops += n
    tally.latencies += latencies


async def run_concurrent(op: Op, keys: list[str], n: int, tasks: int, tally: Tally, collect: bool = True) -> None:
    """``n`` operations spread over ``tasks`` concurrent tasks."""
    per_task = max(1, n // tasks)
    nkeys = len(keys)

    async def worker(offset: int) -> None:
        for i in range(per_task):
            await op(keys[(offset + i) % nkeys])

    if collect:
        gc.collect()
    cpu = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker(t * per_task) for t in range(tasks)))
    tally.elapsed += time.perf_counter() - started
    tally.cpu += time.process_time() - cpu
    tally.ops += per_task * tasks


async def run_batch(repo: RedisRepository, keys: list[str], iterations: int, batch: int) -> tuple[float, float]:
    """Mean seconds of one ``get_many_async(batch keys)`` and of ``batch`` sequential gets."""
    groups = [keys[(i * batch) % len(keys) :][:batch] for i in range(iterations)]
    groups = [g if len(g) == batch else keys[:batch] for g in groups]
    gc.collect()
    started = time.perf_counter()
    for group in groups:
        result = await repo.get_many_async(group)
        assert len(result) == batch
    many = (time.perf_counter() - started) / iterations
    gc.collect()
    started = time.perf_counter()
    for group in groups:
        for key in group:
            await repo.get_async(key)
    sequential = (time.perf_counter() - started) / iterations
    return many, sequential


# -- the contenders ------------------------------------------------------------


def build_repository(url: str, pool_size: int, **settings: Any) -> RedisRepository:
    """The repository with its default settings, apart from the pool size (and ``settings``)."""
    pool = ConnectionPoolConfig(max_connections=pool_size)
    return RedisRepository(RedisConfig(url=url, connection_pool=pool, **settings))


def build_raw(repo: RedisRepository, pool_kind: str = "default") -> aioredis.Redis:
    """Plain redis-py with the repository's pool size, socket settings and protocol.

    ``pool_kind="default"`` is what ``redis.asyncio.Redis(max_connections=N)``
    builds (a ``ConnectionPool`` that raises when exhausted, the cheaper of the
    two); ``"blocking"`` is a ``BlockingConnectionPool`` that waits up to the
    pool timeout, the same promise the repository makes.
    """
    cfg = repo.config
    pool_cfg = cfg.pool
    kwargs: dict[str, Any] = {
        "host": cfg.host,
        "port": cfg.port,
        "db": cfg.db,
        "max_connections": pool_cfg.max_connections,
        "socket_timeout": pool_cfg.socket_timeout,
        "socket_connect_timeout": pool_cfg.socket_connect_timeout,
        "socket_keepalive": pool_cfg.socket_keepalive,
        "health_check_interval": pool_cfg.health_check_interval,
        # The repository speaks RESP2; redis-py 8 would default to RESP3.
        "protocol": 2,
        # Same result type as the repository's default: str.
        "decode_responses": True,
    }
    if pool_kind == "blocking":
        pool: aioredis.ConnectionPool = aioredis.BlockingConnectionPool(timeout=pool_cfg.pool_timeout, **kwargs)
    else:
        pool = aioredis.ConnectionPool(**kwargs)
    return aioredis.Redis.from_pool(pool)


def parser_name(client: aioredis.Redis) -> str:
    pool = client.connection_pool
    conns = list(getattr(pool, "_available_connections", ())) + list(getattr(pool, "_in_use_connections", ()))
    return type(conns[0]._parser).__name__ if conns else "?"


# -- one run -------------------------------------------------------------------


REPOSITORY, RAW, NO_DEADLINE = "repository", "raw", "repo-no-deadline"


async def bench(args: argparse.Namespace, url: str) -> dict[str, Any]:
    repo = build_repository(url, args.pool_size)
    await repo.connect()
    raw = build_raw(repo, args.raw_pool)
    await raw.ping()
    # Private attribute, read only to name the parser in the report.
    transport_client = getattr(repo._transport, "_client", None)
    value = "v" * args.value_size
    keys = [f"bench:{i:06d}" for i in range(args.keys)]
    await repo.set_many_async(dict.fromkeys(keys, value))

    contenders: dict[str, dict[str, Op]] = {
        REPOSITORY: {"GET": repo.get_async, "SET": lambda k: repo.set_async(k, value)},
        RAW: {"GET": raw.get, "SET": lambda k: raw.set(k, value)},
    }
    extra: RedisRepository | None = None
    if args.with_no_deadline:
        # The same repository without its per-operation deadline: shows what the
        # deadline's timer costs (informational, no target).
        extra = build_repository(url, args.pool_size, operation_timeout=None)
        await extra.connect()
        contenders[NO_DEADLINE] = {"GET": extra.get_async, "SET": lambda k: extra.set_async(k, value)}
    names = list(contenders)
    # Sanity: all read back the same thing.
    for ops in contenders.values():
        assert await ops["GET"](keys[0]) == value

    # Warm-up: fill the pools to the concurrency level, warm caches and code paths.
    for ops in contenders.values():
        for op in ops.values():
            await run_sequential(op, keys, min(500, args.seq_ops), 0, Tally())
            await run_concurrent(op, keys, min(2000, args.conc_ops), args.concurrency, Tally())
    await run_batch(repo, keys, 3, args.batch)

    rounds: list[dict[str, Any]] = []
    deadline = time.monotonic() + args.max_seconds
    for rnd in range(args.rounds):
        if rnd and time.monotonic() > deadline:
            print(f"  (stopping after {rnd} rounds: --max-seconds {args.max_seconds} reached)", file=sys.stderr)
            break
        shift = rnd % len(names)
        order = names[shift:] + names[:shift] if rnd % 2 == 0 else (names[shift:] + names[:shift])[::-1]
        row: dict[str, Any] = {"round": rnd + 1, "order": order}
        # Each contender's share of a round is cut into slices run alternately
        # (A B B A A B ...), so a burst of outside load lands on all alike.
        slices = [order if i % 2 == 0 else order[::-1] for i in range(args.slices)]
        seq_n = max(1, args.seq_ops // args.slices)
        conc_n = max(args.concurrency, args.conc_ops // args.slices)
        for cmd in ("GET", "SET"):
            seq = {name: Tally() for name in order}
            for i, group in enumerate(slices):
                for name in group:
                    await run_sequential(contenders[name][cmd], keys, seq_n, i * seq_n, seq[name])
            conc = {name: Tally() for name in order}
            for group in slices:
                for name in group:
                    await run_concurrent(contenders[name][cmd], keys, conc_n, args.concurrency, conc[name])
            for name in order:
                row[f"seq_{cmd}_{name}"] = seq[name].sequential().__dict__
                t = conc[name]
                row[f"conc_{cmd}_{name}"] = {"ops_per_s": t.ops / t.elapsed, "cpu_us": t.cpu / t.ops * 1e6}
        many, sequential = await run_batch(repo, keys, args.batch_iterations, args.batch)
        row["batch"] = {"get_many_ms": many * 1000, "sequential_gets_ms": sequential * 1000}
        rounds.append(row)
        if not args.quiet:
            print(f"  round {rnd + 1}/{args.rounds} done ({', '.join(order)})", file=sys.stderr)

    parsers = {REPOSITORY: parser_name(transport_client) if transport_client else "?", RAW: parser_name(raw)}
    await raw.aclose(close_connection_pool=True)
    await repo.disconnect()
    if extra is not None:
        await extra.disconnect()
    return summarise(rounds, names, parsers)


def summarise(rounds: list[dict[str, Any]], names: list[str], parsers: dict[str, str]) -> dict[str, Any]:
    """Medians over rounds; ratios of each repository contender to raw (target: ``repository``)."""
    med = statistics.median
    summary: dict[str, Any] = {"contenders": names, "sequential": {}, "concurrent": {}, "batch": {}}
    for kind, fields in (("seq", ("ops_per_s", "p50_us", "p99_us", "cpu_us")), ("conc", ("ops_per_s", "cpu_us"))):
        for cmd in ("GET", "SET"):
            entry: dict[str, Any] = {}
            for name in names:
                samples = [r[f"{kind}_{cmd}_{name}"] for r in rounds]
                entry[name] = {f: med(sample[f] for sample in samples) for f in fields}
                entry[name]["ops_per_s_rounds"] = [sample["ops_per_s"] for sample in samples]
            for name in names:
                if name == RAW:
                    continue
                paired = [
                    r[f"{kind}_{cmd}_{name}"]["ops_per_s"] / r[f"{kind}_{cmd}_{RAW}"]["ops_per_s"] for r in rounds
                ]
                # The verdict's ratio: the median of per-round ratios. Both sides of
                # a round ran in alternating slices under the same load, which a
                # ratio of medians taken from different rounds does not ensure.
                entry[name]["ratio"] = med(paired)
                entry[name]["ratio_of_medians"] = entry[name]["ops_per_s"] / entry[RAW]["ops_per_s"]
                entry[name]["ratio_rounds"] = paired
            entry["ratio"] = entry[REPOSITORY]["ratio"]
            entry["pass"] = entry["ratio"] >= THROUGHPUT_TARGET
            summary["sequential" if kind == "seq" else "concurrent"][cmd] = entry

    many = [r["batch"]["get_many_ms"] for r in rounds]
    sequential = [r["batch"]["sequential_gets_ms"] for r in rounds]
    summary["batch"] = {
        "get_many_ms": med(many),
        "sequential_gets_ms": med(sequential),
        "speedup": med(sequential) / med(many),
        "speedup_rounds": [s / m for s, m in zip(sequential, many, strict=True)],
        "pass": med(sequential) / med(many) >= BATCH_TARGET,
    }
    summary["parsers"] = parsers
    summary["rounds"] = len(rounds)
    summary["raw_rounds"] = rounds
    summary["pass"] = (
        all(v["pass"] for v in summary["sequential"].values())
        and all(v["pass"] for v in summary["concurrent"].values())
        and summary["batch"]["pass"]
    )
    return summary


# -- reporting -----------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {**describe_machine(), "source": source_revision(), "hiredis_available": HIREDIS_AVAILABLE}


def source_revision() -> str:
    """The commit of the library measured, marked when ``src/`` has local changes."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "../src"], cwd=here, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except OSError:
        return "?"
    return f"{head or '?'}{' + local changes in src/' if dirty else ''}"


async def profile(args: argparse.Namespace, url: str) -> None:
    """cProfile of the repository's GET path, sequential then concurrent (no benchmark)."""
    import cProfile
    import pstats

    repo = build_repository(url, args.pool_size)
    await repo.connect()
    value = "v" * args.value_size
    keys = [f"bench:{i:06d}" for i in range(args.keys)]
    await repo.set_many_async(dict.fromkeys(keys, value))
    await run_sequential(repo.get_async, keys, 500, 0, Tally())
    await run_concurrent(repo.get_async, keys, 2000, args.concurrency, Tally())
    profiler = cProfile.Profile()
    profiler.enable()
    await run_sequential(repo.get_async, keys, args.seq_ops, 0, Tally(), collect=False)
    await run_concurrent(repo.get_async, keys, args.conc_ops, args.concurrency, Tally(), collect=False)
    profiler.disable()
    await repo.disconnect()
    print(f"cProfile: {args.seq_ops} sequential + {args.conc_ops} concurrent get_async calls")
    stats = pstats.Stats(profiler)
    stats.strip_dirs().sort_stats("tottime").print_stats(30)


class _StubTransport:
    """A transport that answers at once: what is left to time is the library's own code."""

    async def execute(self, args: tuple[Any, ...], deadline: float | None = None) -> Any:
        await asyncio.sleep(0)  # one trip through the event loop, as a real reply takes
        return b"value"

    async def execute_blocking(self, args: tuple[Any, ...], timeout: float) -> Any:
        return await self.execute(args)

    async def execute_many(self, commands: Any, *, transaction: bool) -> list[Any]:
        return [b"value" for _ in commands]

    async def close(self) -> None:
        return None

    def pool_stats(self) -> Any:
        return None


async def overhead(args: argparse.Namespace) -> dict[str, float]:
    """Microseconds per ``get_async`` above a stub transport, with and without the deadline.

    No network and no redis-py: the figure is what the repository's own layers
    (method wrapper, validation, the execute chokepoint, reply parsing) cost per
    call, far less noisy than any end-to-end ratio.
    """
    url = "redis://127.0.0.1:1/0"  # never dialled: the stub answers
    contenders: dict[str, Op] = {
        "stub transport alone": lambda k: _StubTransport().execute(("GET", k)),
        "get_async (defaults)": RedisRepository(RedisConfig(url=url), transport=_StubTransport()).get_async,
        "get_async, operation_timeout=None": RedisRepository(
            RedisConfig(url=url, operation_timeout=None), transport=_StubTransport()
        ).get_async,
    }
    keys = ["k"]
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for rnd in range(15):
        names = list(contenders) if rnd % 2 == 0 else list(contenders)[::-1]
        for name in names:
            tally = Tally()
            await run_sequential(contenders[name], keys, 10000, 0, tally, collect=False)
            samples[name].append(tally.elapsed / tally.ops * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def print_table(report: dict[str, Any]) -> None:
    m, p, s = report["machine"], report["params"], report["summary"]
    print()
    print(f"RedisRepository vs raw redis.asyncio   {m['date']}")
    print(f"  {m['cpus']} x {m['cpu_model']}, Python {m['python']}, redis-py {m['redis_py']}, hiredis {m['hiredis']}")
    print(f"  {m['redis_server']}; library at {m['source']}")
    raw_pool = "BlockingConnectionPool" if p["raw_pool"] == "blocking" else "ConnectionPool"
    print(
        f"  parsers: repository={s['parsers'][REPOSITORY]} raw={s['parsers'][RAW]};"
        f" pool={p['pool_size']} (raw: {raw_pool}), value={p['value_size']} B, keys={p['keys']}"
    )
    print(
        f"  medians of {s['rounds']} rounds x {p['slices']} alternating slices; seq={p['seq_ops']} ops, "
        f"concurrent={p['conc_ops']} ops x {p['concurrency']} tasks, "
        f"batch={p['batch_iterations']} x {p['batch']} keys"
    )
    names = s["contenders"]
    extras = [n for n in names if n not in (REPOSITORY, RAW)]
    cols = [REPOSITORY, RAW, *extras]
    print()
    header = f"{'workload':<24}" + "".join(f"{n:>17}" for n in cols) + f"{'ratio':>8}  {'target':<8}{'':>5}"
    print(header)
    print("-" * len(header))

    def line(label: str, entry: dict[str, Any], field_: str, fmt: str, verdict_: str = "") -> None:
        cells = "".join(format(entry[n][field_], fmt).rjust(17) for n in cols)
        print(f"{label:<24}{cells}{verdict_}")

    for kind, key in (("(a) seq", "sequential"), (f"(b) {p['concurrency']} tasks", "concurrent")):
        for cmd, entry in s[key].items():
            line(
                f"{kind} {cmd} ops/s",
                entry,
                "ops_per_s",
                ",.0f",
                f"{entry['ratio']:>8.2f}  {'>= 0.90':<8}{verdict(entry['pass']):>5}",
            )
            if key == "sequential":
                line("      p50 latency us", entry, "p50_us", ".1f")
                line("      p99 latency us", entry, "p99_us", ".1f")
            line("      client CPU us/op", entry, "cpu_us", ".1f")
            for n in extras:
                print(f"{'      ' + n + '/raw':<24}{entry[n]['ratio']:>17.2f}")
    b = s["batch"]
    print()
    print(f"{'workload':<36}{'ms per batch':>14}")
    print("-" * 50)
    print(f"{'(c) get_many_async(' + str(p['batch']) + ' keys)':<36}{b['get_many_ms']:>14.3f}")
    print(f"{'    ' + str(p['batch']) + ' x get_async':<36}{b['sequential_gets_ms']:>14.3f}")
    print(f"{'    speedup':<36}{b['speedup']:>13.1f}x  target >= {BATCH_TARGET:.0f}x  {verdict(b['pass'])}")
    print()
    print("ratio = median of the per-round ratios repository/raw (the rounds, and the ratio of medians):")
    for kind, key in (("seq", "sequential"), ("conc", "concurrent")):
        for cmd, entry in s[key].items():
            label = f"  {kind} {cmd}:"
            rounds_ = " ".join(f"{x:.2f}" for x in entry[REPOSITORY]["ratio_rounds"])
            print(f"{label:<13}{rounds_}   (ratio of medians {entry[REPOSITORY]['ratio_of_medians']:.2f})")
    print("  get_many speedup: " + " ".join(f"{x:.1f}" for x in b["speedup_rounds"]))
    print()
    print(f"overall: {verdict(s['pass'])}   (wall time {report['elapsed_s']:.1f} s)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    ap.add_argument("--seq-ops", type=int, default=4000, help="sequential ops per contender, command and round")
    ap.add_argument("--conc-ops", type=int, default=12000, help="concurrent ops per contender, command and round")
    ap.add_argument("--slices", type=int, default=10, help="alternating slices per contender and round (default 10)")
    ap.add_argument("--concurrency", type=int, default=50, help="concurrent tasks (default 50)")
    ap.add_argument("--pool-size", type=int, default=50, help="connection pool size of both clients (default 50)")
    ap.add_argument("--batch", type=int, default=100, help="keys per get_many_async (default 100)")
    ap.add_argument("--batch-iterations", type=int, default=60, help="batches per round (default 60)")
    ap.add_argument("--keys", type=int, default=1000, help="distinct keys, preloaded (default 1000)")
    ap.add_argument("--value-size", type=int, default=100, help="value size in bytes (default 100)")
    ap.add_argument("--max-seconds", type=float, default=60.0, help="start no new round after this (default 60)")
    ap.add_argument(
        "--raw-pool",
        choices=("default", "blocking"),
        default="default",
        help="raw client's pool: redis-py's default ConnectionPool (default) or BlockingConnectionPool",
    )
    ap.add_argument(
        "--with-no-deadline",
        action="store_true",
        help="add a third contender: the repository with operation_timeout=None (informational)",
    )
    ap.add_argument("--quick", action="store_true", help="3 short rounds: a smoke run of a few seconds")
    ap.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="PATH",
        help="write the full report as JSON to PATH ('-' or no PATH: to stdout, without the table)",
    )
    ap.add_argument("--profile", action="store_true", help="instead of the benchmark, cProfile the GET path")
    ap.add_argument(
        "--overhead", action="store_true", help="instead of the benchmark, time the library's own layers on a stub"
    )
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    ap.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.slices, args.seq_ops, args.conc_ops, args.batch_iterations = 3, 4, 800, 2000, 10
    if args.batch > args.keys:
        ap.error("--batch must not exceed --keys")
    positive = ("rounds", "slices", "seq_ops", "conc_ops", "concurrency", "pool_size")
    for name in (*positive, "batch", "batch_iterations", "keys"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    info = machine()
    with RedisServer() as server:
        if not args.quiet:
            print(f"private redis-server on {server.url} (pid {server.pid})", file=sys.stderr)
        if args.profile:
            asyncio.run(profile(args, server.url))
            return 0
        if args.overhead:
            figures = asyncio.run(overhead(args))
            print("median wall time per call, us (15 rounds x 10000 calls):")
            base = figures["stub transport alone"]
            for name, us in figures.items():
                extra = "" if us is base else f"   (+{us - base:.2f} over the stub)"
                print(f"  {name:<36}{us:>8.2f}{extra}")
            return 0
        summary = asyncio.run(bench(args, server.url))
    params = ["rounds", "slices", "seq_ops", "conc_ops", "concurrency", "pool_size"]
    params += ["batch", "batch_iterations", "keys", "value_size", "raw_pool", "with_no_deadline"]
    report = {
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "machine": info,
        "params": {k: getattr(args, k) for k in params},
        "summary": summary,
        "elapsed_s": time.perf_counter() - started,
    }
    if args.json != "-":
        print_table(report)
    if args.json == "-":
        json.dump(report, sys.stdout, indent=2)
        print()
    elif args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2)
            fh.write("\n")
    return 1 if args.check and not summary["pass"] else 0


if __name__ == "__main__":
    sys.exit(main())
