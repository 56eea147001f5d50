"""Benchmark: what a planted value costs the event loop, and what typed round trips cost.

Run by hand (not part of the test suite)::

    .venv/bin/python benchmarks/bench_values.py            # about a minute
    .venv/bin/python benchmarks/bench_values.py --quick    # a few seconds
    .venv/bin/python benchmarks/bench_values.py --json out.json

Part 1, planted values. Two bombs are planted with ``set_async``, as anyone
who can write to Redis could: a 32 KiB zstd value that inflates to 1 GiB
and a 16 KiB zlib value that inflates to 16 MiB. Eight readers read each
one concurrently while a 1 ms timer task records the gaps between its
ticks (the event loop's stalls). Contenders, interleaved round by round, on
memory:// and on a private redis-server:

- ``GET only``: the eight plain reads, no decoding (the floor);
- ``typed read``: ``get_object_async`` with the default envelope policy
  (64 MiB, 256:1, decoding past 256 KiB in the decoding thread);
- ``typed read, ratio lifted``: the same with ``max_ratio`` lifted, so only
  ``max_value_bytes`` (64 MiB) bounds the zlib bomb;
- ``0.1's read, emulated``: what 0.1 did with the zlib bomb: inflate it
  inline, on the event loop, up to 512 MiB, then parse it (the zstd bomb is
  left out: 0.1 inflated it to 1 GiB, a 2.3 s freeze per read);
- ``large legit value``: eight typed reads of a valid 8 MiB JSON document
  (compressed), to show what parsing a large value costs the loop even in
  the decoding thread (parsers hold the GIL).

The report gives, per contender, the median over rounds of the longest
stall and of the 99th percentile gap, and the median wall time.

Part 2, typed round trips (dumps, loads, rebuild the type), per object, for
a flat dataclass and a nested one (nested dataclasses, datetime, set,
tuple, Decimal, UUID, enums): 0.1's path (orjson with OPT_NON_STR_KEYS and
the to_plain hook, ``type_(**data)``, which leaves nested fields as dicts
and text) against this release's (the strict JSON encoder, pydantic's
TypeAdapter), interleaved, medians over rounds and the ratio; msgspec's
typed codec is shown for reference when it is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import enum
import gc
import json
import statistics
import sys
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import zstandard
from _machine import describe_machine

from neuroglia.data.redis import JsonSerializer, RedisConfig, RedisRepository
from neuroglia.data.redis.serialization import from_plain
from neuroglia.data.redis.testing import RedisServer, redis_server_binary

MiB = 1024 * 1024
READERS = 8


# -- part 1: planted values -----------------------------------------------------------------------


def envelope(strategy: str, flag: int, payload: bytes) -> bytes:
    name = strategy.encode()
    return b"\xc1NG\x01" + bytes((flag, len(name))) + name + payload


def make_bombs() -> dict[str, bytes]:
    chunk = b"\x00" * MiB
    zstd = zstandard.ZstdCompressor(level=19).compressobj(size=1024 * MiB)
    zstd_payload = b"".join(zstd.compress(chunk) for _ in range(1024)) + zstd.flush()
    deflate = zlib.compressobj(9)
    zlib_payload = b"".join(deflate.compress(chunk) for _ in range(16)) + deflate.flush()
    return {"zstd-1GiB": envelope("json", 2, zstd_payload), "zlib-16MiB": envelope("json", 1, zlib_payload)}


def legit_document() -> bytes:
    menu = [{"name": f"pizza {i}", "price": 8.5 + i % 7, "toppings": ["tomato", "basil"] * 3} for i in range(80_000)]
    payload = orjson.dumps({"menu": menu})
    return envelope("json", 1, zlib.compress(payload))


class Gaps:
    """The gaps between ticks of a 1 ms timer while a workload runs."""

    def __init__(self) -> None:
        self.gaps: list[float] = []
        self._stop = False

    async def _tick(self) -> None:
        last = time.perf_counter()
        while not self._stop:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            self.gaps.append(now - last)
            last = now

    async def measure(self, work: Callable[[], Awaitable[Any]]) -> dict[str, float]:
        task = asyncio.create_task(self._tick())
        await asyncio.sleep(0.02)
        started = time.perf_counter()
        await work()
        wall = time.perf_counter() - started
        await asyncio.sleep(0.02)
        self._stop = True
        await task
        gaps = sorted(self.gaps)
        return {
            "max_stall_ms": gaps[-1] * 1000,
            "p99_gap_ms": gaps[int(len(gaps) * 0.99)] * 1000,
            "wall_ms": wall * 1000,
        }


async def planted(url: str, rounds: int) -> dict[str, Any]:
    bombs = make_bombs()
    legit = legit_document()
    default = RedisRepository(RedisConfig(url=url, operation_timeout=30))
    lifted = RedisRepository(RedisConfig(url=url, operation_timeout=30, envelope={"max_ratio": 10**6}))
    await default.connect()
    await lifted.connect()
    for name, bomb in bombs.items():
        await default.set_async(f"bench:{name}", bomb)
    await default.set_async("bench:legit", legit)

    async def gather_all(read: Callable[[str], Awaitable[Any]], keys: list[str]) -> None:
        for key in keys:
            await asyncio.gather(*(read(key) for _ in range(READERS)), return_exceptions=True)

    bomb_keys = [f"bench:{name}" for name in bombs]

    async def read_0_1(key: str) -> Any:
        raw = await default.get_async(key)
        payload = memoryview(raw)[10:]
        out = zlib.decompressobj().decompress(payload, 512 * MiB)  # 0.1: inline, up to 512 MiB
        try:
            return orjson.loads(out)
        except orjson.JSONDecodeError:
            return None

    contenders: dict[str, Callable[[], Awaitable[Any]]] = {
        "GET only": lambda: gather_all(default.get_async, bomb_keys),
        "typed read": lambda: gather_all(default.get_object_async, bomb_keys),
        "typed read, ratio lifted": lambda: gather_all(lifted.get_object_async, bomb_keys),
        "0.1's read, emulated (zlib bomb)": lambda: gather_all(read_0_1, ["bench:zlib-16MiB"]),
        "large legit value (8 MiB JSON)": lambda: gather_all(default.get_object_async, ["bench:legit"]),
    }
    results: dict[str, list[dict[str, float]]] = {name: [] for name in contenders}
    await gather_all(default.get_object_async, [*bomb_keys, "bench:legit"])  # warm the decoding thread
    order = list(contenders)
    for round_ in range(rounds):
        for name in order if round_ % 2 == 0 else reversed(order):
            gc.collect()
            results[name].append(await Gaps().measure(contenders[name]))
    await default.flushdb()
    await default.disconnect()
    await lifted.disconnect()
    return {name: {key: statistics.median(r[key] for r in runs) for key in runs[0]} for name, runs in results.items()}


# -- part 2: typed round trips --------------------------------------------------------------------


class Size(enum.Enum):
    SMALL = "s"
    LARGE = "l"


@dataclasses.dataclass
class MenuItem:
    name: str
    price: float
    tags: list[str]


@dataclasses.dataclass
class Topping:
    name: str
    price: Decimal


@dataclasses.dataclass
class Order:
    id: uuid.UUID
    size: Size
    toppings: list[Topping]
    tags: set[str]
    dimensions: tuple[int, int]
    placed_at: datetime
    baked_on: date
    prep: timedelta
    notes: str | None = None


def hook_0_1(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError


def round_trip_0_1(value: Any, type_: Any) -> Any:
    data = orjson.dumps(value, default=hook_0_1, option=orjson.OPT_NON_STR_KEYS)
    return type_(**orjson.loads(data))


def round_trip_now(serializer: JsonSerializer) -> Callable[[Any, Any], Any]:
    def run(value: Any, type_: Any) -> Any:
        return from_plain(serializer.loads(serializer.dumps(value)), type_)

    return run


def round_trip_msgspec() -> Callable[[Any, Any], Any] | None:
    try:
        import msgspec
    except ImportError:
        return None

    def run(value: Any, type_: Any) -> Any:
        return msgspec.json.decode(msgspec.json.encode(value), type=type_)

    return run


def typed(rounds: int, ops: int) -> dict[str, Any]:
    samples: dict[str, Any] = {
        "flat": (MenuItem("Diavola", 11.0, ["hot", "classic"]), MenuItem),
        "nested": (
            Order(
                uuid.uuid4(),
                Size.LARGE,
                [Topping("basil", Decimal("0.50")), Topping("tomato", Decimal("1.25"))],
                {"vegetarian", "spicy"},
                (30, 40),
                datetime(2024, 5, 1, 18, 0, tzinfo=UTC),
                date(2024, 5, 1),
                timedelta(minutes=12),
            ),
            Order,
        ),
    }
    contenders: dict[str, Callable[[Any, Any], Any]] = {
        "0.1": round_trip_0_1,
        "now": round_trip_now(JsonSerializer()),
    }
    reference = round_trip_msgspec()
    if reference is not None:
        contenders["msgspec (reference)"] = reference
    report: dict[str, Any] = {}
    for label, (value, type_) in samples.items():
        now = contenders["now"](value, type_)
        correct = {name: run(value, type_) == value for name, run in contenders.items()}
        assert now == value
        per_op: dict[str, list[float]] = {name: [] for name in contenders}
        for round_ in range(rounds):
            names = list(contenders) if round_ % 2 == 0 else list(reversed(contenders))
            for name in names:
                run = contenders[name]
                gc.collect()
                started = time.perf_counter()
                for _ in range(ops):
                    run(value, type_)
                per_op[name].append((time.perf_counter() - started) / ops * 1e6)
        medians = {name: statistics.median(times) for name, times in per_op.items()}
        report[label] = {
            "us_per_round_trip": medians,
            "reads_back_equal": correct,
            "now_over_0_1": medians["now"] / medians["0.1"],
        }
    return report


# -- report ---------------------------------------------------------------------------------------


def print_report(report: dict[str, Any]) -> None:
    print(f"machine: {report['machine']['cpu_model']} x{report['machine']['cpus']}, {report['machine']['date']}")
    for backend, rows in report["planted"].items():
        print(f"\nplanted values, {READERS} concurrent readers per value, {backend} (medians over rounds)")
        print(f"  {'contender':36} {'longest stall':>14} {'p99 gap':>9} {'wall':>9}")
        for name, row in rows.items():
            print(f"  {name:36} {row['max_stall_ms']:11.1f} ms {row['p99_gap_ms']:6.1f} ms {row['wall_ms']:6.0f} ms")
    for label, row in report["typed"].items():
        print(f"\ntyped round trip, {label} dataclass (dumps + loads + rebuild, median µs)")
        for name, us in row["us_per_round_trip"].items():
            print(f"  {name:22} {us:8.2f} µs   reads back equal: {row['reads_back_equal'][name]}")
        print(f"  now / 0.1: {row['now_over_0_1']:.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--ops", type=int, default=20_000, help="round trips per contender per round (part 2)")
    parser.add_argument("--quick", action="store_true", help="3 rounds, 2000 round trips")
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.ops = 3, 2000
    if redis_server_binary() is None:
        print("redis-server is not installed (set REDIS_SERVER_BIN or install it)", file=sys.stderr)
        return 2
    report: dict[str, Any] = {"machine": describe_machine(), "params": vars(args), "planted": {}}
    report["planted"]["memory://"] = asyncio.run(planted("memory://bench-values", args.rounds))
    with RedisServer() as server:
        report["planted"]["redis-server"] = asyncio.run(planted(server.url, args.rounds))
    report["typed"] = typed(args.rounds, args.ops)
    print_report(report)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
