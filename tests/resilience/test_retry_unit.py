"""Retries: RetryPolicy's delays, and the repository's decisions of what to resend.

The repository runs on a scripted transport (``RedisRepository(config,
transport=...)``): each command takes the next scripted outcome, so a test
says exactly which attempt fails and how. Retry delays are zero, and the
breaker runs on a fake clock, so nothing here sleeps, except the deadline
tests, which wait for a 0.2 s operation deadline on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis import exceptions as rex
from redis._parsers.base import BaseParser

from neuroglia.data.redis import (
    CacheAuthenticationError,
    CacheCommandError,
    CacheException,
    CacheTimeoutError,
    CacheUnavailableError,
    CircuitBreakerPolicy,
    CircuitOpenError,
    CircuitState,
    ConfigurationError,
    RedisConfig,
    RedisRepository,
    RetryPolicy,
)
from neuroglia.data.redis.testing import MockTransport
from neuroglia.data.redis.transport.redis_py import NotSentError, classify_error
from tests.support.faults import FakeClock


class ScriptedTransport(MockTransport):
    """The testing kit's MockTransport, raising scripted redis-py errors as the redis-py transport maps them."""

    async def _next(self, args: tuple[Any, ...] | None) -> Any:
        try:
            return await super()._next(args)
        except Exception as exc:
            error = classify_error(exc, str(args[0]).upper() if args else "PIPELINE")
            if error is None or error is exc:
                raise
            raise error from exc


def server_error(line: str) -> Exception:
    """The exception redis-py's parser makes of the error reply ``-<line>`` (code stripped, typed)."""
    return BaseParser.parse_error(line)  # type: ignore[no-any-return]


def refused() -> NotSentError:
    """Connection refused before a byte was written: surely never reached the server."""
    return NotSentError(rex.ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused."))


def read_timeout() -> rex.TimeoutError:
    """The request was written but no reply came: it may or may not have run."""
    return rex.TimeoutError("Timeout reading from 127.0.0.1:6379")


def reset_mid_reply() -> rex.ConnectionError:
    return rex.ConnectionError("Error while reading from 127.0.0.1:6379 : (104, 'Connection reset by peer')")


def repository(
    transport: ScriptedTransport,
    clock: FakeClock | None = None,
    *,
    retries: int = 3,
    operation_timeout: float | None = 5.0,
    **settings: Any,
) -> RedisRepository:
    breaker: Any = settings.pop("circuit_breaker", None)
    if breaker is None:
        breaker = CircuitBreakerPolicy(
            failure_threshold=3, recovery_timeout=10, success_threshold=1, clock=clock or FakeClock()
        )
    config = RedisConfig(
        url="redis://127.0.0.1:6379/0",
        retry_policy=RetryPolicy(retries=retries, retry_delay=0, max_retry_delay=0),
        operation_timeout=operation_timeout,
        circuit_breaker=breaker,
        **settings,
    )
    return RedisRepository(config, transport=transport)


def many_retries_short_deadline(transport: ScriptedTransport) -> RedisRepository:
    """100 retries 50 ms apart, no breaker, under an operation deadline of 0.2 s."""
    config = RedisConfig(
        url="redis://127.0.0.1:6379/0",
        retry_policy=RetryPolicy(retries=100, retry_delay=0.05, max_retry_delay=0.05, jitter=False),
        operation_timeout=0.2,
        circuit_breaker=False,
    )
    return RedisRepository(config, transport=transport)


# -- RetryPolicy --------------------------------------------------------------------


def test_delays_grow_exponentially_and_are_capped() -> None:
    policy = RetryPolicy(retries=6, retry_delay=0.1, backoff_factor=2, max_retry_delay=1.0, jitter=False)
    assert [policy.delay(n) for n in range(1, 7)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_backoff_factor_one_is_a_constant_delay() -> None:
    policy = RetryPolicy(retry_delay=0.25, backoff_factor=1, max_retry_delay=5, jitter=False)
    assert {policy.delay(n) for n in range(1, 10)} == {0.25}


def test_jitter_picks_a_point_in_the_upper_half_of_the_delay() -> None:
    policy = RetryPolicy(retry_delay=0.1, backoff_factor=2, max_retry_delay=1.0)
    assert policy.jitter  # on by default
    assert policy.delay(1, random=lambda: 0.0) == pytest.approx(0.05)
    assert policy.delay(1, random=lambda: 0.5) == pytest.approx(0.075)
    assert policy.delay(1, random=lambda: 1.0) == pytest.approx(0.1)
    assert policy.delay(10, random=lambda: 0.0) == pytest.approx(0.5)  # half of the cap
    assert policy.delay(10, random=lambda: 1.0) == pytest.approx(1.0)  # the cap, never more
    rng = random.Random(4)
    for attempt in range(1, 8):
        base = min(1.0, 0.1 * 2 ** (attempt - 1))
        for _ in range(200):
            assert base / 2 <= policy.delay(attempt, random=rng.random) <= base


def test_the_pages_dict_form() -> None:
    config = RedisConfig(
        url="redis://localhost:6379",
        retry_policy={"retries": 3, "retry_delay": 0.1, "backoff_factor": 2, "max_retry_delay": 1.0},
    )
    assert config.retry == RetryPolicy(retries=3, retry_delay=0.1, backoff_factor=2, max_retry_delay=1.0)


@pytest.mark.parametrize(
    "settings",
    [
        {"retries": -1},
        {"retries": 1.5},
        {"retry_delay": -0.1},
        {"backoff_factor": 0.5},
        {"max_retry_delay": -1},
    ],
)
def test_bad_retry_settings_raise_configuration_error(settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="retry_policy"):
        RetryPolicy(**settings)
    with pytest.raises(ConfigurationError, match="retry_policy"):
        RedisConfig(retry_policy=settings)


def test_unknown_retry_keys_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="retry_policy"):
        RedisConfig(retry_policy={"retries": 3, "retry_dealy": 0.1})


# -- what the repository resends ------------------------------------------------------


async def test_an_idempotent_get_is_retried_after_a_timeout() -> None:
    transport = ScriptedTransport(read_timeout(), b"margherita")
    repo = repository(transport)
    assert await repo.get_async("menu") == "margherita"
    assert transport.sent == [("GET", "menu"), ("GET", "menu")]
    assert repo.circuit_breaker is not None
    assert repo.circuit_breaker.failure_count == 0  # one outcome per operation: a success


async def test_an_idempotent_set_is_retried_after_a_reset_mid_reply() -> None:
    transport = ScriptedTransport(reset_mid_reply(), b"OK")
    repo = repository(transport)
    assert await repo.set_async("menu", "margherita") is True
    assert [args[0] for args in transport.sent] == ["SET", "SET"]


@pytest.mark.parametrize("uncertain", [read_timeout, reset_mid_reply], ids=["timeout", "reset"])
async def test_incr_is_not_retried_after_an_uncertain_failure(uncertain: Callable[[], Exception]) -> None:
    transport = ScriptedTransport(uncertain(), 2)
    repo = repository(transport)
    with pytest.raises(CacheUnavailableError) as caught:
        await repo.incr_async("orders")
    assert transport.sent == [("INCRBY", "orders", 1)]  # sent once: it may have run
    assert isinstance(caught.value.__cause__, type(uncertain()))


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda r: r.lpush_async("queue", "o-1"), "LPUSH"),
        (lambda r: r.zincrby_async("scores", 1.0, "margherita"), "ZINCRBY"),
        (lambda r: r.hincrby_async("stats", "orders", 1), "HINCRBY"),
        (lambda r: r.lpop_async("queue"), "LPOP"),
    ],
)
async def test_other_non_idempotent_commands_are_not_retried_after_a_timeout(
    call: Callable[[RedisRepository], Awaitable[Any]], name: str
) -> None:
    transport = ScriptedTransport(read_timeout(), 1)
    repo = repository(transport)
    with pytest.raises(CacheTimeoutError):
        await call(repo)
    assert [args[0] for args in transport.sent] == [name]


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda r: r.set_async("processed:o-1", "1", nx=True), "SET"),
        (lambda r: r.hsetnx_async("orders", "o-1", "new"), "HSETNX"),
    ],
    ids=["SET NX", "HSETNX"],
)
async def test_set_if_absent_is_not_retried_after_an_uncertain_failure(
    call: Callable[[RedisRepository], Awaitable[Any]], name: str
) -> None:
    # Its reply *is* the result ("was it written"): resent after the first one ran,
    # it would answer "no" for this caller's own write, and a dedup or claim
    # built on it would skip work that nobody did.
    transport = ScriptedTransport(read_timeout())
    repo = repository(transport)
    with pytest.raises(CacheTimeoutError):
        await call(repo)
    assert [args[0] for args in transport.sent] == [name]
    transport.script(refused(), 1 if name == "HSETNX" else b"OK")  # never sent: resending is safe
    assert await call(repo) is True
    assert len(transport.sent) == 3


@pytest.mark.parametrize(
    ("call", "resent"),
    [
        (lambda r: r.ltrim_async("recent", 0, 99), True),  # keep the first 100: the same twice
        (lambda r: r.ltrim_async("recent", -100, -1), True),  # keep the last 100
        (lambda r: r.ltrim_async("recent", 1, -1), False),  # drop the head: twice drops two
        (lambda r: r.ltrim_async("recent", 0, -2), False),  # drop the tail
        (lambda r: r.zremrangebyrank_async("top", 0, -51), True),  # keep the top 50
        (lambda r: r.zremrangebyrank_async("top", 0, 2), False),  # the 3 lowest: twice removes 6
        (lambda r: r.zremrangebyrank_async("top", -3, -1), False),  # the 3 highest
    ],
    ids=["ltrim-first", "ltrim-last", "ltrim-drop-head", "ltrim-drop-tail", "zrem-keep-top", "zrem-low", "zrem-high"],
)
async def test_rank_ranges_are_resent_only_when_applying_twice_changes_nothing(
    call: Callable[[RedisRepository], Awaitable[Any]], resent: bool
) -> None:
    transport = ScriptedTransport(read_timeout(), 1)
    repo = repository(transport)
    if resent:
        await call(repo)
        assert len(transport.sent) == 2
    else:
        with pytest.raises(CacheTimeoutError):
            await call(repo)
        assert len(transport.sent) == 1


async def test_incr_is_retried_after_not_sent() -> None:
    transport = ScriptedTransport(refused(), refused(), 7)
    repo = repository(transport)
    assert await repo.incr_async("orders") == 7
    assert transport.sent == [("INCRBY", "orders", 1)] * 3


@pytest.mark.parametrize(
    "reply",
    [
        "LOADING Redis is loading the dataset in memory",
        "READONLY You can't write against a read only replica.",
        "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
        "TRYAGAIN Multiple keys request during rehashing of slot",
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT.",
    ],
    ids=lambda r: r.split()[0],
)
async def test_incr_is_retried_after_a_refusal_that_did_not_run_it(reply: str) -> None:
    transport = ScriptedTransport(server_error(reply), 8)
    repo = repository(transport)
    assert await repo.incr_async("orders") == 8
    assert len(transport.sent) == 2


@pytest.mark.parametrize(
    "reply",
    [
        "LOADING Redis is loading the dataset in memory",
        "READONLY You can't write against a read only replica.",
        "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
    ],
    ids=lambda r: r.split()[0],
)
async def test_server_states_that_cannot_serve_are_outages(reply: str) -> None:
    transport = ScriptedTransport(*(server_error(reply) for _ in range(3)))
    repo = repository(transport, retries=0)
    for _ in range(3):
        with pytest.raises(CacheUnavailableError) as caught:
            await repo.get_async("menu")
        assert not isinstance(caught.value, CacheCommandError)
    assert repo.circuit_breaker is not None
    assert repo.circuit_breaker.state is CircuitState.OPEN


async def test_retries_stop_after_retries_attempts() -> None:
    transport = ScriptedTransport(*(refused() for _ in range(3)))
    repo = repository(transport, retries=2)
    with pytest.raises(CacheUnavailableError, match="Connection refused"):
        await repo.get_async("menu")
    assert len(transport.sent) == 3  # the first try and 2 retries
    assert repo.circuit_breaker is not None
    assert repo.circuit_breaker.failure_count == 1  # one failed operation, not three


async def test_retries_zero_sends_once() -> None:
    transport = ScriptedTransport(refused())
    repo = repository(transport, retries=0)
    with pytest.raises(CacheUnavailableError):
        await repo.get_async("menu")
    assert len(transport.sent) == 1


@pytest.mark.parametrize(
    "error",
    [
        NotSentError(server_error("WRONGPASS invalid username-password pair or user is disabled.")),
        server_error("WRONGPASS invalid username-password pair or user is disabled."),
        server_error("NOAUTH Authentication required."),
    ],
    ids=["AuthenticationError", "WRONGPASS", "NOAUTH"],
)
async def test_authentication_errors_are_not_retried(error: Exception) -> None:
    transport = ScriptedTransport(error, b"never")
    repo = repository(transport)
    with pytest.raises(CacheAuthenticationError):
        await repo.get_async("menu")
    assert len(transport.sent) == 1


async def test_command_errors_are_neither_retried_nor_counted() -> None:
    wrongtype = "WRONGTYPE Operation against a key holding the wrong kind of value"
    transport = ScriptedTransport(*(server_error(wrongtype) for _ in range(5)))
    repo = repository(transport)
    for _ in range(5):
        with pytest.raises(CacheCommandError, match="WRONGTYPE"):
            await repo.get_async("a-list")
    assert len(transport.sent) == 5
    assert repo.circuit_breaker is not None
    assert repo.circuit_breaker.state is CircuitState.CLOSED
    assert repo.circuit_breaker.failure_count == 0


async def test_retries_never_outlive_the_operation_deadline() -> None:
    # Every attempt times out at once and there are many retries left, each after
    # a 50 ms backoff: the deadline (0.2 s), not the retry count, ends the operation.
    transport = ScriptedTransport(*(read_timeout() for _ in range(100)))
    repo = many_retries_short_deadline(transport)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(CacheTimeoutError):
        await repo.get_async("menu")
    elapsed = loop.time() - started
    assert elapsed < 0.2 + 0.5  # the deadline plus a generous margin for a loaded machine
    assert 2 <= len(transport.sent) <= 4  # 0, 50, 100, 150 ms; never a retry that would end past 200 ms


async def test_a_hung_command_ends_at_the_deadline_without_a_retry() -> None:
    never: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def hang() -> Any:
        return await never

    transport = ScriptedTransport(hang, b"too late")
    repo = repository(transport, operation_timeout=0.2)
    with pytest.raises(CacheTimeoutError, match="operation deadline"):
        await repo.get_async("menu")
    assert len(transport.sent) == 1  # no time left for a retry
    assert repo.circuit_breaker is not None
    assert repo.circuit_breaker.failure_count == 1  # a timeout is an outage


# -- the repository's breaker on the scripted transport --------------------------------


async def test_the_repository_breaker_opens_fails_fast_and_closes(clock: FakeClock) -> None:
    transport = ScriptedTransport()
    repo = repository(transport, clock, retries=0)
    events: list[tuple[CircuitState, CircuitState]] = []
    breaker = repo.circuit_breaker
    assert breaker is not None
    breaker.add_listener(lambda old, new: events.append((old, new)))
    transport.script(*(refused() for _ in range(3)))
    for _ in range(3):
        with pytest.raises(CacheUnavailableError):
            await repo.get_async("menu")
    assert breaker.state is CircuitState.OPEN
    sent = len(transport.sent)
    for _ in range(100):
        with pytest.raises(CircuitOpenError):
            await repo.set_async("menu", "x")
    assert len(transport.sent) == sent  # nothing reached the transport
    clock.advance(10)
    transport.script(b"margherita")
    assert await repo.get_async("menu") == "margherita"
    assert breaker.state is CircuitState.CLOSED
    assert events == [
        (CircuitState.CLOSED, CircuitState.OPEN),
        (CircuitState.OPEN, CircuitState.HALF_OPEN),
        (CircuitState.HALF_OPEN, CircuitState.CLOSED),
    ]


async def test_circuit_open_is_never_retried(clock: FakeClock) -> None:
    transport = ScriptedTransport()
    repo = repository(transport, clock, retries=5)
    assert repo.circuit_breaker is not None
    transport.script(*(refused() for _ in range(18)))
    for _ in range(3):
        with pytest.raises(CacheUnavailableError):
            await repo.get_async("k")
    assert len(transport.sent) == 18
    with pytest.raises(CircuitOpenError):
        await repo.get_async("k")
    assert len(transport.sent) == 18


async def test_callers_that_catch_cache_exception_still_trip_the_repository_breaker(clock: FakeClock) -> None:
    transport = ScriptedTransport(*(refused() for _ in range(3)))
    repo = repository(transport, clock, retries=0)

    async def page_style_read() -> str | None:
        try:
            return await repo.get_async("menu")
        except CacheException:
            return None  # swallowed, as the page's ResilientMenuService does

    for _ in range(3):
        assert await page_style_read() is None
    assert repo.circuit_breaker is not None
    assert repo.circuit_breaker.state is CircuitState.OPEN


async def test_a_deadline_during_a_half_open_trial_reopens_the_breaker(clock: FakeClock) -> None:
    never: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def hang() -> Any:
        return await never

    transport = ScriptedTransport(*(refused() for _ in range(3)))
    repo = repository(transport, clock, retries=0, operation_timeout=0.1)
    breaker = repo.circuit_breaker
    assert breaker is not None
    for _ in range(3):
        with pytest.raises(CacheUnavailableError):
            await repo.get_async("menu")
    clock.advance(10)
    transport.script(hang)
    with pytest.raises(CacheTimeoutError):
        await repo.get_async("menu")  # the trial, cut by the operation deadline
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError):
        await repo.get_async("menu")


async def test_a_trial_cancelled_in_its_retry_backoff_frees_its_slot(clock: FakeClock) -> None:
    transport = ScriptedTransport()
    config = RedisConfig(
        url="redis://127.0.0.1:6379/0",
        retry_policy=RetryPolicy(retries=3, retry_delay=30, max_retry_delay=30, jitter=False),
        operation_timeout=None,
        circuit_breaker=CircuitBreakerPolicy(
            failure_threshold=1, recovery_timeout=10, success_threshold=1, trial_timeout=60, clock=clock
        ),
    )
    repo = RedisRepository(config, transport=transport)
    breaker = repo.circuit_breaker
    assert breaker is not None
    breaker.record(breaker.before_call(), CacheUnavailableError("down"))  # open it
    clock.advance(10)
    assert breaker.state is CircuitState.HALF_OPEN
    transport.script(refused())
    trial = asyncio.create_task(repo.get_async("menu"))
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(transport.sent) == 1  # the trial failed once and is now in its 30 s backoff
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial
    # The cancelled trial says nothing about health: still half-open, and its slot is free.
    assert breaker.state is CircuitState.HALF_OPEN
    transport.script(b"margherita")
    assert await repo.get_async("menu") == "margherita"
    assert breaker.state is CircuitState.CLOSED


# -- pipelines -----------------------------------------------------------------------


async def test_a_batch_is_resent_only_if_it_was_never_sent() -> None:
    transport = ScriptedTransport(refused(), [b"OK", 1])
    repo = repository(transport)
    async with repo.pipeline() as pipe:
        pipe.set_async("a", "1")
        pipe.incr_async("n")
    assert pipe.results == [True, 1]
    assert len(transport.batches) == 2

    transport.script(read_timeout(), [b"OK", 2])
    pipe = repo.pipeline()
    pipe.set_async("a", "1")
    pipe.incr_async("n")
    with pytest.raises(CacheTimeoutError):
        await pipe.execute()
    assert len(transport.batches) == 3  # the uncertain batch was not resent


async def test_pipeline_retries_never_outlive_the_operation_deadline() -> None:
    transport = ScriptedTransport(*(refused() for _ in range(100)))
    repo = many_retries_short_deadline(transport)
    pipe = repo.pipeline()
    pipe.get_async("a")
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(CacheUnavailableError):
        await pipe.execute()
    assert loop.time() - started < 0.2 + 0.5
    assert len(transport.batches) <= 5


async def test_a_full_pool_is_retried_but_never_counted_by_the_breaker(clock: FakeClock) -> None:
    def full() -> NotSentError:
        return NotSentError(rex.ConnectionError("No connection available."))

    transport = ScriptedTransport(full(), 5, *(full() for _ in range(10)))
    repo = repository(transport, clock, retries=1)
    assert await repo.incr_async("n") == 5  # never sent: even INCR may be resent
    assert len(transport.sent) == 2
    breaker = repo.circuit_breaker
    assert breaker is not None
    for _ in range(5):
        with pytest.raises(CacheTimeoutError, match="no connection became free"):
            await repo.get_async("menu")
    assert breaker.state is CircuitState.CLOSED
    assert breaker.failure_count == 0


async def test_a_refused_call_leaves_no_reference_cycle(clock: FakeClock) -> None:
    # Fail-fast calls can come by the thousand per second during an outage: each
    # must be freed by reference counting, or the garbage collector's passes
    # show up as ~60 µs in the fail-fast p99.
    transport = ScriptedTransport(refused())
    repo = repository(
        transport, clock, retries=0, circuit_breaker=CircuitBreakerPolicy(failure_threshold=1, clock=clock)
    )
    with pytest.raises(CacheUnavailableError):
        await repo.get_async("menu")

    async def refused_once() -> None:
        with contextlib.suppress(CircuitOpenError):
            await repo.get_async("menu")

    gc.disable()
    try:
        gc.collect()
        for _ in range(50):
            await refused_once()
        assert gc.collect() == 0
    finally:
        gc.enable()
