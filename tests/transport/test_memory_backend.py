"""memory:// answers as the real server does, where the two used to differ.

Each test runs on both backends (``backend_url``) with the real server's
answers written out, so a difference shows as a failure on ``memory``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib

import pytest

from neuroglia.data.redis import (
    CacheCommandError,
    ConnectionPoolConfig,
    PoolExhaustedError,
    RedisRepository,
)
from neuroglia.data.redis.testing import RedisServer
from tests.support.repositories import RepositoryFactory

pytestmark = pytest.mark.timeout(60)


# -- INCRBYFLOAT and HINCRBYFLOAT: long double arithmetic, Redis' formatting ----------


@pytest.mark.parametrize(
    ("start", "amount", "expected"),
    [
        ("0.1", 0, "0.1"),  # not 0.10000000000000001: long double, 17 digits, zeros trimmed
        ("1e17", 1, "100000000000000001"),  # a double would lose the 1
        ("0x10", 1, "17"),  # hexadecimal input, as strtold reads it
        ("0x1.8p1", 0.25, "3.25"),
        ("5.0e3", -0.5, "4999.5"),
        ("-0", 0, "0"),
        ("10", 1.5, "11.5"),
        ("3", 1e-20, "3"),  # 17 decimals: the increment vanishes in the printing, not in the sum
        ("1e4000", 1, "5b56729d9b9cbc79bf6bfea495c4bb22394d8fd34e39109c79c13afa3dc3efa0"),  # beyond a double
    ],
)
async def test_incrbyfloat_computes_and_prints_like_redis(
    backend: RedisRepository, start: str, amount: float, expected: str
) -> None:
    await backend.set_async("n", start)
    await backend.incrbyfloat_async("n", amount)
    stored = await backend.get_async("n")
    assert isinstance(stored, str)
    if len(expected) == 64:  # the 4000 digits of the long double nearest 1e4000, by their SHA-256
        assert stored.startswith("99999999999999999999654638730996237849")
        assert hashlib.sha256(stored.encode()).hexdigest() == expected
    else:
        assert stored == expected
    await backend.hset_async("h", "f", start)
    await backend.hincrbyfloat_async("h", "f", amount)
    assert await backend.hget_async("h", "f") == stored


@pytest.mark.parametrize("start", ["inf", "-inf", "1e5000", "nan", " 1", "1 ", "0x", "1e", "", "abc", "1e-5000"])
async def test_incrbyfloat_refuses_what_redis_refuses(backend: RedisRepository, start: str) -> None:
    await backend.set_async("n", start)
    with pytest.raises(CacheCommandError):
        await backend.incrbyfloat_async("n", 1)
    assert await backend.get_async("n") == start
    await backend.hset_async("h", "f", start)
    with pytest.raises(CacheCommandError):
        await backend.hincrbyfloat_async("h", "f", 1)
    assert await backend.hget_async("h", "f") == start


async def test_incrbyfloat_in_a_script_gives_the_same_text(backend: RedisRepository) -> None:
    reply = await backend.eval_async("return redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])", ["n"], ["0.1"])
    assert reply == "0.1"


# -- DECRBY ---------------------------------------------------------------------------


async def test_decrby_of_the_smallest_integer_is_refused_as_redis_does(backend: RedisRepository) -> None:
    await backend.set_async("n", "0")
    with pytest.raises(CacheCommandError) as raised:
        await backend.decrby_async("n", -(2**63))
    assert str(raised.value).endswith(": decrement would overflow")
    assert await backend.get_async("n") == "0"


# -- INFO and MEMORY USAGE wherever a command can run ------------------------------------


async def test_info_in_a_pipeline_and_a_transaction(backend: RedisRepository) -> None:
    for transaction in (False, True):
        pipe = backend.pipeline(transaction=transaction)
        pipe.set_async("k", "v")
        pipe.info("memory")
        pipe.info()
        pipe.get_async("k")
        ok, memory, everything, value = await pipe.execute()
        assert ok is True
        assert isinstance(memory["used_memory"], int)
        assert "used_memory" in everything
        assert "redis_version" in everything
        assert value == "v"


async def test_info_and_memory_usage_inside_a_script(backend: RedisRepository) -> None:
    await backend.set_async("k", "v" * 100)
    usage = await backend.eval_async("return redis.call('MEMORY', 'USAGE', KEYS[1])", ["k"])
    assert isinstance(usage, int)
    assert usage > 100
    assert await backend.eval_async("return redis.call('MEMORY', 'USAGE', KEYS[1])", ["missing"]) is None
    info = await backend.eval_async("return redis.call('INFO', 'memory')")
    assert "used_memory:" in info


async def test_info_of_an_unknown_section_is_empty(backend: RedisRepository) -> None:
    assert await backend.info("no-such-section") == {}


# -- Lua: number conversion and the libraries Redis loads ------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("return math.huge", -(2**63)),
        ("return -math.huge", -(2**63)),
        ("return 0/0", -(2**63)),
        ("return 1e20", -(2**63)),
        ("return -1e20", -(2**63)),
        ("return 3.99", 3),
        ("return -3.99", -3),
        ("return {1.5, math.huge, 2}", [1, -(2**63), 2]),
        ("return 2^53 + 1", 2**53),
    ],
)
async def test_lua_numbers_become_integers_as_redis_converts_them(
    backend: RedisRepository, source: str, expected: object
) -> None:
    assert await backend.eval_async(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("return redis.sha1hex('')", hashlib.sha1(b"").hexdigest()),
        ("return redis.sha1hex('pizza')", hashlib.sha1(b"pizza").hexdigest()),
        ("return bit.tohex(bit.band(0xff00, 0x0ff0))", "00000f00"),
        ("return bit.bor(1, 2, 4)", 7),
        ("return bit.bxor(5, 3)", 6),
        ("return bit.bnot(0)", -1),
        ("return bit.lshift(1, 31)", -(2**31)),
        ("return bit.rshift(-1, 28)", 15),
        ("return bit.arshift(-256, 4)", -16),
        ("return bit.rol(0x12345678, 8)", 0x34567812),
        ("return bit.ror(0x12345678, 8)", 0x78123456),
        ("return bit.bswap(0x12345678)", 0x78563412),
        ("return bit.tobit(0xffffffff + 1)", 0),
        ("return bit.tohex(-1, -4)", "FFFF"),
        ("return struct.pack('>I2', 258)", b"\x01\x02"),
        ("return {struct.unpack('<i4', struct.pack('<i4', -2))}", [-2, 5]),
        ("return struct.size('>bhi')", 7),
        ("return {struct.unpack('>Bc0', struct.pack('>Bc0', 3, 'abc'))}", ["abc", 5]),  # the count is not returned
        ("return {struct.unpack('s', struct.pack('s', 'hi'))}", ["hi", 4]),
        ("return tostring(struct.unpack('>d', struct.pack('>d', 0.5)))", "0.5"),
        ("return cmsgpack.pack({1, 2, 3})", b"\x93\x01\x02\x03"),
        ("return cmsgpack.pack({a = 1})", b"\x81\xa1a\x01"),
        ("return cmsgpack.pack(-1, 300, 'x', true, false)", b"\xff\xcd\x01\x2c\xa1x\xc3\xc2"),
        ("return cmsgpack.pack(0.5)", b"\xca\x3f\x00\x00\x00"),
        ("return cmsgpack.pack(0.1)", b"\xcb\x3f\xb9\x99\x99\x99\x99\x99\x9a"),
        ("local t = cmsgpack.unpack(cmsgpack.pack({1, {2, 'x'}})) return {t[1], t[2][1], t[2][2]}", [1, 2, "x"]),
        ("return {cmsgpack.unpack(cmsgpack.pack(1, 2))}", [1, 2]),
        ("return redis.REDIS_VERSION_NUM > 0", 1),
    ],
)
async def test_the_lua_libraries_of_redis_are_there(backend: RedisRepository, source: str, expected: object) -> None:
    reply = await backend.eval_async(source)
    if isinstance(expected, bytes):
        reply = reply.encode("latin-1") if isinstance(reply, str) else reply
    assert reply == expected


@pytest.mark.parametrize("name", ["os", "io", "print", "require", "dofile", "loadfile", "setfenv", "getfenv", "python"])
async def test_lua_has_no_more_than_redis_gives_it(backend: RedisRepository, name: str) -> None:
    with pytest.raises(CacheCommandError):
        await backend.eval_async(f"return type({name})")


async def test_the_debug_library_is_out_of_reach(backend: RedisRepository) -> None:
    # (On memory:// `debug` reads as nil rather than failing: Lua's host looks it up.)
    with pytest.raises(CacheCommandError):
        await backend.eval_async("return debug.traceback()")


async def test_a_script_reading_an_undefined_global_fails(backend: RedisRepository) -> None:
    with pytest.raises(CacheCommandError):
        await backend.eval_async("return undefined_name")


async def test_a_script_cannot_create_a_global(backend: RedisRepository) -> None:
    with pytest.raises(CacheCommandError):
        await backend.eval_async("created = 1 return 1")
    assert await backend.eval_async("return 1") == 1  # and the next script runs as usual


# -- the pool bound ---------------------------------------------------------------------


async def test_the_pool_bound_holds(repo_factory: RepositoryFactory, backend_url: str) -> None:
    repo = await repo_factory(
        connection_pool=ConnectionPoolConfig(max_connections=1, pool_timeout=0.2), retry_policy={"retries": 0}
    )
    blocked = asyncio.create_task(repo.blpop_async("{t}empty-list", 1))
    await asyncio.sleep(0.05)  # the one connection waits in BLPOP
    with pytest.raises(PoolExhaustedError):
        await repo.get_async("{t}k")
    assert await blocked is None
    assert await repo.get_async("{t}k") is None  # free again


@pytest.mark.parametrize(
    "source",
    ["string.foo = 1 return 1", "math.pi = 3 return 1", "redis.call = nil return 1", "setmetatable(_G, nil) return 1"],
)
async def test_scripts_cannot_change_the_libraries_for_the_scripts_after_them(
    backend: RedisRepository, source: str
) -> None:
    with pytest.raises(CacheCommandError):
        await backend.eval_async(source)
    assert await backend.eval_async("return string.upper('ok') .. math.floor(math.pi)") == "OK3"
    with pytest.raises(CacheCommandError):
        await backend.eval_async("return undefined_global")  # the guard is still there


@pytest.mark.parametrize("fresh_server", [False, True], ids=["memory", "fresh-redis-server"])
async def test_math_random_follows_the_servers_sequence(repo_factory: RepositoryFactory, fresh_server: bool) -> None:
    # Redis 7 draws math.random from one rand48 sequence per server, from its
    # start (no reseeding per script): only a fresh server gives these values.
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(RedisServer()).url if fresh_server else "memory://"
        repo = await repo_factory(url)
        draws = [await repo.eval_async("return tostring(math.random())") for _ in range(2)]
        assert draws == ["0.39646477363839", "0.84048536971234"]
        assert await repo.eval_async("return {math.random(10), math.random(5, 7)}") == [4, 6]
        assert await repo.eval_async("math.randomseed(42) return tostring(math.random())") == "0.74452500033403"
        with pytest.raises(CacheCommandError):
            await repo.eval_async("return math.random(0)")
        await repo.disconnect()


# -- sorted-set scores are read as strtod reads them --------------------------------------------


@pytest.mark.parametrize(
    ("score", "stored"),
    [("0x10", 16.0), ("0x1p-2", 0.25), ("inf", float("inf")), ("2.5e-310", 2.5e-310), ("-0", 0.0)],
)
async def test_scores_written_as_c_reads_them_are_accepted(backend: RedisRepository, score: str, stored: float) -> None:
    assert await backend.eval_async("return redis.call('ZADD', KEYS[1], ARGV[1], 'm')", ["z"], [score]) == 1
    assert await backend.zscore_async("z", "m") == stored


@pytest.mark.parametrize("score", ["1_0", "\u0661", "1e400", "1e-400", " 1", "1 ", "", "nan"])
async def test_scores_c_does_not_read_are_refused(backend: RedisRepository, score: str) -> None:
    with pytest.raises(CacheCommandError):
        await backend.eval_async("return redis.call('ZADD', KEYS[1], ARGV[1], 'm')", ["z"], [score])
    with pytest.raises(CacheCommandError):
        await backend.eval_async("return redis.call('ZINCRBY', KEYS[1], ARGV[1], 'm')", ["z"], [score])


async def test_score_ranges_are_read_as_redis_reads_them(backend: RedisRepository) -> None:
    await backend.zadd_async("z", {"a": 1, "b": 16, "c": 40})
    count = "return redis.call('ZCOUNT', KEYS[1], ARGV[1], ARGV[2])"
    assert await backend.eval_async(count, ["z"], ["0x10", "+inf"]) == 2
    assert await backend.eval_async(count, ["z"], ["(0x10", "+inf"]) == 1
    assert await backend.eval_async(count, ["z"], [" 1", "1e400"]) == 3  # spaces skipped, out of range is infinite
    assert await backend.eval_async(count, ["z"], ["", "1"]) == 1  # an empty bound reads as 0
    with pytest.raises(CacheCommandError):
        await backend.eval_async(count, ["z"], ["1_0", "+inf"])
