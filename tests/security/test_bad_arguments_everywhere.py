"""Bad arguments, on every public method: a library error naming the argument, never a raw Python error.

The cases the hardening probe found are checked one by one (each refused
before anything is sent, with :class:`InvalidArgumentError` naming the
argument). Then a property test calls every public method of
:class:`RedisRepository`, enumerated from the class (a method added later
is covered without touching this file), with generated bad arguments, on
memory:// and on a real server: only a normal result or a
:class:`CacheException` may come out.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import re
from collections.abc import Coroutine, Iterator
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuroglia.data.redis import (
    CacheException,
    InvalidArgumentError,
    RedisConfig,
    RedisRepository,
)
from neuroglia.data.redis.testing import RedisEndpoint

T = TypeVar("T")
HUGE = 10**400


async def commands_sent(repo: RedisRepository) -> int | None:
    """The server's count of processed commands (``None`` on memory://, which keeps none)."""
    if repo.config.scheme == "memory":
        return None
    return int((await repo.info("stats"))["total_commands_processed"])


@pytest.mark.parametrize(
    ("label", "call", "argument"),
    [
        ("expiration=10**400", lambda r: r.set_async("k", "v", expiration=HUGE), "expiration"),
        ("expiration=1e300", lambda r: r.set_async("k", "v", expiration=1e300), "expiration"),
        ("expire 10**400", lambda r: r.expire_async("k", HUGE), "expiration"),
        ("set_many expiration", lambda r: r.set_many_async({"a": "1"}, expiration=HUGE), "expiration"),
        ("zadd score 10**400", lambda r: r.zadd_async("z", {"m": HUGE}), "score"),
        ("zincrby 10**400", lambda r: r.zincrby_async("z", HUGE, "m"), "amount"),
        ("incrbyfloat 10**400", lambda r: r.incrbyfloat_async("k", HUGE), "amount"),
        ("hincrbyfloat 10**400", lambda r: r.hincrbyfloat_async("h", "f", HUGE), "amount"),
        ("incrby 2**64", lambda r: r.incrby_async("k", 2**64), "amount"),
        ("lindex 10**400", lambda r: r.lindex_async("l", HUGE), "index"),
        ("blpop timeout 10**400", lambda r: r.blpop_async("l", HUGE), "timeout"),
        ("blpop timeout inf", lambda r: r.blpop_async("l", float("inf")), "timeout"),
        ("brpop timeout nan", lambda r: r.brpop_async("l", float("nan")), "timeout"),
        ("get_many None", lambda r: r.get_many_async(None), "keys"),
        ("get_many 5", lambda r: r.get_many_async(5), "keys"),
        ("hmget 5", lambda r: r.hmget_async("h", 5), "fields"),
        ("hmget None", lambda r: r.hmget_async("h", None), "fields"),
        ("lmove None", lambda r: r.lmove_async("a", "b", None), "wherefrom"),
        ("lmove 5", lambda r: r.lmove_async("a", "b", "LEFT", 5), "whereto"),
        ("score bound 1_0", lambda r: r.zrangebyscore_async("z", "1_0", 5), "min"),
        ("score bound ' 1'", lambda r: r.zcount_async("z", 0, " 1"), "max"),
        ("score bound nan", lambda r: r.zremrangebyscore_async("z", "nan", 5), "min"),
        ("score bound (inf)", lambda r: r.zrevrangebyscore_async("z", "(infinity", "-inf"), None),
        ("register_script None", lambda r: r.register_script(None), "source"),
        ("eval None", lambda r: r.eval_async(None), "source"),
        ("eval keys 5", lambda r: r.eval_async("return 1", 5), "keys"),
    ],
)
async def test_each_case_found_by_the_probe_is_refused_before_sending(
    backend: RedisRepository, label: str, call: Any, argument: str | None
) -> None:
    async def attempt() -> None:
        outcome = call(backend)
        if inspect.isawaitable(outcome):
            await outcome

    if argument is None:
        await attempt()  # a valid call ("(infinity" is an exclusive bound Redis accepts)
        return
    # The INFO of the first count counts itself, on every primary of a cluster.
    own = int((await backend.info("cluster")).get("cluster_primaries", 1))
    before = await commands_sent(backend)
    with pytest.raises(InvalidArgumentError, match=re.escape(argument)):
        await attempt()
    after = await commands_sent(backend)
    if before is not None:  # counted on a real server only
        assert after == before + own, f"{label}: something was sent"
    assert await backend.dbsize() == 0


async def test_the_valid_forms_next_to_them_still_work(backend: RedisRepository) -> None:
    assert await backend.set_async("k", "v", expiration=10**9) is True
    assert await backend.zadd_async("z", {"{t}a": 2**70, "{t}b": -math.inf, "c": 1.5}) == 3
    assert await backend.zrangebyscore_async("z", "(1", "+inf") == ["c", "{t}a"]
    assert await backend.zcount_async("z", "-INF", "1e30") == 3
    assert await backend.zcount_async("z", "(-inf", 2.5e21) == 2
    assert await backend.blpop_async("nothing", 0.01) is None
    assert await backend.get_many_async(("k", "missing")) == {"k": "v", "missing": None}
    assert await backend.hmget_async("h", ["{t}a", "{t}b"]) == [None, None]
    assert await backend.lmove_async("{t}a", "{t}b", "left", "Right") is None
    assert await backend.incrbyfloat_async("f", 2**60) == float(2**60)
    assert await backend.incrby_async("n", 2**63 - 1) == 2**63 - 1


# -- every public method, with generated bad arguments -------------------------------------------

BAD = [
    None,
    True,
    0,
    -1,
    1,
    2**64,
    HUGE,
    -HUGE,
    math.nan,
    math.inf,
    -math.inf,
    1e300,
    -0.5,
    "",
    "k",
    "1_0",
    " 1",
    "nan",
    "\ud800",
    "LEFT",
    b"",
    b"k",
    bytearray(b"k"),
    [],
    [None],
    ["k", 5],
    ("k",),
    {},
    {"m": HUGE},
    {"m": math.nan},
    {1: None},
    {"f": object()},
    {None: "v"},
    set(),
    frozenset({"k"}),
    object(),
    ...,
    print,
    type,
    timedelta(days=-1),
    timedelta.max,
    1j,
]


def waits(value: Any) -> bool:
    """Whether a blocking pop given ``value`` as its timeout would wait (0 is forever)."""
    return type(value) in (int, float) and 0 <= value <= 2**62 / 1000


# Blocking pops get no valid wait but a short one: a valid call blocks, and a
# cancelled blocking call on memory:// leaves fakeredis a coroutine to complain about.
SHORT_TIMEOUTS = [0.01, *(value for value in BAD if not waits(value))]
BLOCKING = {"blpop_async", "brpop_async"}
# The lifetime and server-wide methods take nothing to fuzz beyond what they are
# called with; they are called too, with their (absent) arguments.


def public_methods() -> list[str]:
    """Every public callable of RedisRepository, from the class itself."""
    names = []
    for name in dir(RedisRepository):
        if name.startswith("_"):
            continue
        if isinstance(inspect.getattr_static(RedisRepository, name), property):
            continue
        if callable(getattr(RedisRepository, name)):
            names.append(name)
    return names


METHODS = public_methods()


def test_the_method_list_is_the_whole_class() -> None:
    assert len(METHODS) >= 95
    for name in ("set_async", "zadd_async", "blpop_async", "scan_async", "attachment", "configure", "pipeline"):
        assert name in METHODS


@st.composite
def calls(draw: st.DrawFn, name: str) -> tuple[list[Any], dict[str, Any]]:
    function = getattr(RedisRepository, name)
    signature = inspect.signature(function)
    pool = SHORT_TIMEOUTS if name in BLOCKING else BAD
    value = st.sampled_from(pool)
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for parameter in signature.parameters.values():
        if parameter.name == "self":
            continue
        if parameter.kind is parameter.VAR_POSITIONAL:
            args += draw(st.lists(value, max_size=3))
        elif parameter.kind is parameter.VAR_KEYWORD:
            continue
        elif parameter.kind is parameter.KEYWORD_ONLY:
            if draw(st.booleans()):
                kwargs[parameter.name] = draw(value)
        elif parameter.default is parameter.empty or draw(st.booleans()):
            args.append(draw(value))
        else:
            break  # the remaining optional positionals keep their defaults
    return args, kwargs


class Loop:
    """One event loop for the module's repositories (hypothesis drives plain functions)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.repos: list[RedisRepository] = []

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        for repo in self.repos:
            self.run(repo.disconnect())
        self.loop.close()


@pytest.fixture(scope="module")
def loop() -> Iterator[Loop]:
    runner = Loop()
    try:
        yield runner
    finally:
        runner.close()


@pytest.fixture(scope="module", params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
def fuzzed(request: pytest.FixtureRequest, loop: Loop, redis_server: RedisEndpoint) -> RedisRepository:
    """A repository on memory:// or on database 5 of the session's private server."""
    url = "memory://bad-arguments" if request.param == "memory" else redis_server.url[: -len("/0")] + "/5"
    repo = RedisRepository(RedisConfig(url=url, key_prefix="fuzz:", operation_timeout=2.0))
    loop.repos.append(repo)
    loop.run(repo.connect())
    loop.run(repo.flushdb())
    return repo


async def outcome(repo: RedisRepository, name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    result = getattr(repo, name)(*args, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    if inspect.isasyncgen(result):
        result = [item async for item in result]
    return result


@pytest.mark.parametrize("name", METHODS)
def test_every_public_method_with_bad_arguments(loop: Loop, fuzzed: RedisRepository, name: str) -> None:
    @settings(
        max_examples=30,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(call=calls(name))
    def property_(call: tuple[list[Any], dict[str, Any]]) -> None:
        args, kwargs = call

        async def attempt() -> None:
            try:
                async with asyncio.timeout(1.0):
                    await outcome(fuzzed, name, args, kwargs)
            except CacheException:
                pass  # the library's answer: fine
            except TimeoutError:
                pytest.fail(f"{name}(*{args!r}, **{kwargs!r}) hung")
            finally:
                if name in {"flushdb", "disconnect"}:
                    await fuzzed.connect()

        try:
            loop.run(attempt())
        except CacheException:
            raise
        except Exception as error:
            pytest.fail(f"{name}(*{args!r}, **{kwargs!r}) raised {type(error).__name__}: {error}")

    property_()
