"""CircuitBreakerPolicy on its own, driven by an injected clock: no test sleeps.

Covers each state transition and its event, the half-open admission limit
under 100 concurrent callers, a hung trial re-opening the breaker, the
exceptions that never count, and the working forms of ``@breaker.apply``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import textwrap
from typing import TYPE_CHECKING, Any

import pytest

from neuroglia.data.redis import (
    CacheCommandError,
    CacheTimeoutError,
    CacheUnavailableError,
    CircuitBreakerPolicy,
    CircuitOpenError,
    CircuitState,
    ConfigurationError,
    SerializationError,
)

if TYPE_CHECKING:
    from tests.support.faults import FakeClock

Events = list[tuple[CircuitState, CircuitState]]
CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


def make_breaker(clock: FakeClock, **settings: Any) -> tuple[CircuitBreakerPolicy, Events]:
    """A breaker on ``clock`` (3 failures, 10 s recovery, 2 successes) and the list its events go to."""
    options: dict[str, Any] = {"failure_threshold": 3, "recovery_timeout": 10, "success_threshold": 2, "clock": clock}
    options.update(settings)
    breaker = CircuitBreakerPolicy(**options)
    events: Events = []
    breaker.add_listener(lambda old, new: events.append((old, new)))
    return breaker, events


async def fail() -> None:
    raise CacheUnavailableError("connection refused")


async def succeed() -> str:
    return "ok"


async def trip(breaker: CircuitBreakerPolicy) -> None:
    """Make the breaker open by failing ``failure_threshold`` times."""
    for _ in range(breaker.failure_threshold):
        with pytest.raises(CacheUnavailableError):
            await breaker.call(fail)
    assert breaker.state is OPEN


# -- transitions -----------------------------------------------------------------


async def test_starts_closed_and_stays_closed_below_the_threshold(clock: FakeClock) -> None:
    breaker, events = make_breaker(clock)
    assert breaker.state is CLOSED
    for _ in range(2):
        with pytest.raises(CacheUnavailableError):
            await breaker.call(fail)
    assert breaker.state is CLOSED
    assert breaker.failure_count == 2
    assert events == []


async def test_a_success_resets_the_consecutive_failure_count(clock: FakeClock) -> None:
    breaker, events = make_breaker(clock)
    for _ in range(5):
        for _ in range(2):
            with pytest.raises(CacheUnavailableError):
                await breaker.call(fail)
        assert await breaker.call(succeed) == "ok"
        assert breaker.failure_count == 0
    assert breaker.state is CLOSED
    assert events == []


async def test_closed_to_open_after_failure_threshold_consecutive_failures(clock: FakeClock) -> None:
    breaker, events = make_breaker(clock)
    await trip(breaker)
    assert events == [(CLOSED, OPEN)]
    assert breaker.opened_count == 1


async def test_open_fails_fast_without_running_the_call(clock: FakeClock) -> None:
    breaker, _ = make_breaker(clock)
    await trip(breaker)
    ran = 0

    async def counted() -> None:
        nonlocal ran
        ran += 1

    for _ in range(50):
        with pytest.raises(CircuitOpenError, match="failing fast"):
            await breaker.call(counted)
    assert ran == 0
    # CircuitOpenError is an outage to callers that catch CacheUnavailableError.
    assert issubclass(CircuitOpenError, CacheUnavailableError)


async def test_open_to_half_open_after_recovery_timeout(clock: FakeClock) -> None:
    breaker, events = make_breaker(clock)
    await trip(breaker)
    clock.advance(9.999)
    assert breaker.state is OPEN
    with pytest.raises(CircuitOpenError):
        await breaker.call(succeed)
    clock.advance(0.001)
    assert breaker.state is HALF_OPEN
    assert events == [(CLOSED, OPEN), (OPEN, HALF_OPEN)]


async def test_half_open_to_closed_after_success_threshold_successes(clock: FakeClock) -> None:
    breaker, events = make_breaker(clock)
    await trip(breaker)
    clock.advance(10)
    assert await breaker.call(succeed) == "ok"
    assert breaker.state is HALF_OPEN  # one success of two
    assert await breaker.call(succeed) == "ok"
    assert breaker.state is CLOSED
    assert events == [(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED)]
    # Closed again with fresh counts: it takes the full threshold to re-open.
    for _ in range(2):
        with pytest.raises(CacheUnavailableError):
            await breaker.call(fail)
    assert breaker.state is CLOSED


async def test_half_open_to_open_on_a_failed_trial_restarts_the_recovery_timeout(clock: FakeClock) -> None:
    breaker, events = make_breaker(clock)
    await trip(breaker)
    clock.advance(10)
    with pytest.raises(CacheUnavailableError):
        await breaker.call(fail)
    assert breaker.state is OPEN
    assert events == [(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, OPEN)]
    assert breaker.opened_count == 2
    clock.advance(9.5)  # counted from the re-opening, not from the first opening
    assert breaker.state is OPEN
    clock.advance(0.5)
    assert breaker.state is HALF_OPEN


async def test_a_success_between_failed_trials_does_not_close_early(clock: FakeClock) -> None:
    breaker, _ = make_breaker(clock, success_threshold=3)
    await trip(breaker)
    clock.advance(10)
    await breaker.call(succeed)
    await breaker.call(succeed)
    with pytest.raises(CacheUnavailableError):
        await breaker.call(fail)
    assert breaker.state is OPEN
    clock.advance(10)
    for _ in range(2):
        await breaker.call(succeed)
    assert breaker.state is HALF_OPEN  # the earlier successes were forgotten
    await breaker.call(succeed)
    assert breaker.state is CLOSED


async def test_recovery_timeout_zero_goes_half_open_at_once(clock: FakeClock) -> None:
    breaker, _ = make_breaker(clock, recovery_timeout=0)
    await trip_with_state_check(breaker)
    assert await breaker.call(succeed) == "ok"


async def trip_with_state_check(breaker: CircuitBreakerPolicy) -> None:
    for _ in range(breaker.failure_threshold):
        with pytest.raises(CacheUnavailableError):
            await breaker.call(fail)
    assert breaker.opened_count == 1
    assert breaker.state is HALF_OPEN


async def test_reset_closes_and_forgets(clock: FakeClock) -> None:
    breaker, events = make_breaker(clock)
    await trip(breaker)
    breaker.reset()
    assert breaker.state is CLOSED
    assert breaker.failure_count == 0
    assert events[-1] == (OPEN, CLOSED)


# -- half-open admission ----------------------------------------------------------


@pytest.mark.parametrize("max_calls", [1, 3])
async def test_half_open_admits_exactly_half_open_max_calls_of_100_concurrent_callers(
    clock: FakeClock, max_calls: int
) -> None:
    breaker, _ = make_breaker(clock, half_open_max_calls=max_calls, success_threshold=max_calls)
    await trip(breaker)
    clock.advance(10)
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    started = 0

    async def trial() -> str:
        nonlocal started
        started += 1
        await gate  # every admitted caller is still running while the others arrive
        return "ok"

    tasks = [asyncio.create_task(breaker.call(trial)) for _ in range(100)]
    await asyncio.sleep(0)  # every task has reached the breaker (and the admitted ones the gate)
    assert started == max_calls
    refused = [t for t in tasks if t.done()]
    assert len(refused) == 100 - max_calls
    assert all(isinstance(t.exception(), CircuitOpenError) for t in refused)
    assert breaker.state is HALF_OPEN
    gate.set_result(None)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results.count("ok") == max_calls
    assert breaker.state is CLOSED


async def test_half_open_slots_free_up_one_trial_at_a_time(clock: FakeClock) -> None:
    breaker, _ = make_breaker(clock, half_open_max_calls=1, success_threshold=3)
    await trip(breaker)
    clock.advance(10)
    for _ in range(2):
        assert await breaker.call(succeed) == "ok"
        assert breaker.state is HALF_OPEN
    assert await breaker.call(succeed) == "ok"
    assert breaker.state is CLOSED


# -- a hung trial -----------------------------------------------------------------


async def test_a_hung_trial_times_out_by_the_clock_and_reopens(clock: FakeClock) -> None:
    breaker, events = make_breaker(clock, trial_timeout=5)
    await trip(breaker)
    clock.advance(10)
    hang: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def hung() -> str:
        await hang
        return "late"

    stuck = asyncio.create_task(breaker.call(hung))
    await asyncio.sleep(0)
    assert breaker.state is HALF_OPEN
    # While the trial is young, other callers fail fast (the slot is taken)...
    clock.advance(4.999)
    with pytest.raises(CircuitOpenError):
        await breaker.call(succeed)
    assert breaker.state is HALF_OPEN
    # ...and once it is older than trial_timeout it counts as a failure: open again.
    clock.advance(0.001)
    with pytest.raises(CircuitOpenError):
        await breaker.call(succeed)
    assert breaker.state is OPEN
    assert events[-1] == (HALF_OPEN, OPEN)
    # The hung call finishing late changes nothing: it belongs to a past half-open period.
    hang.set_result(None)
    assert await stuck == "late"
    assert breaker.state is OPEN
    # The breaker is not wedged: after recovery_timeout a new trial is admitted and closes it.
    clock.advance(10)
    assert await breaker.call(succeed) == "ok"
    assert await breaker.call(succeed) == "ok"
    assert breaker.state is CLOSED


async def test_a_hung_trial_is_bounded_by_trial_timeout_inside_call() -> None:
    # With the real clock: call() wraps a trial in asyncio.timeout(trial_timeout).
    breaker = CircuitBreakerPolicy(failure_threshold=1, recovery_timeout=0, success_threshold=1, trial_timeout=0.01)
    with pytest.raises(CacheUnavailableError):
        await breaker.call(fail)
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def hung() -> None:
        await never

    with pytest.raises(TimeoutError):
        await breaker.call(hung)
    assert breaker.opened_count == 2  # the timed-out trial re-opened it
    assert await breaker.call(succeed) == "ok"
    assert breaker.state is CLOSED


async def test_default_trial_timeout_follows_recovery_timeout() -> None:
    assert CircuitBreakerPolicy(recovery_timeout=60).trial_timeout == 60
    assert CircuitBreakerPolicy(recovery_timeout=0.1).trial_timeout == 1.0
    assert CircuitBreakerPolicy(recovery_timeout=60, trial_timeout=2).trial_timeout == 2


# -- what counts ------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        CacheUnavailableError("down"),
        CacheTimeoutError("slow"),
        CircuitOpenError("an inner breaker is open"),
        ConnectionRefusedError(111, "refused"),
        ConnectionResetError(104, "reset"),
        OSError(113, "no route to host"),
        TimeoutError(),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_outages_count_as_failures(clock: FakeClock, error: BaseException) -> None:
    breaker, _ = make_breaker(clock, failure_threshold=1)

    async def raising() -> None:
        raise error

    with pytest.raises(type(error)):
        await breaker.call(raising)
    assert breaker.state is OPEN


@pytest.mark.parametrize(
    "error",
    [
        CacheCommandError("WRONGTYPE Operation against a key holding the wrong kind of value"),
        SerializationError("not JSON"),
        ValueError("a bug in the caller's code"),
        KeyError("menu"),
        json.JSONDecodeError("Expecting value", "", 0),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_ignored_exceptions_are_not_counted(clock: FakeClock, error: Exception) -> None:
    breaker, events = make_breaker(clock, failure_threshold=1)

    async def raising() -> None:
        raise error

    for _ in range(10):
        with pytest.raises(type(error)):
            await breaker.call(raising)
    assert breaker.state is CLOSED
    assert breaker.failure_count == 0
    assert events == []


async def test_ignored_exceptions_do_not_reset_the_failure_count_either(clock: FakeClock) -> None:
    breaker, _ = make_breaker(clock)

    async def bad_input() -> None:
        raise ValueError("caller bug")

    with pytest.raises(CacheUnavailableError):
        await breaker.call(fail)
    with pytest.raises(ValueError, match="caller bug"):
        await breaker.call(bad_input)
    assert breaker.failure_count == 1


async def test_ignored_exceptions_release_a_half_open_trial_slot(clock: FakeClock) -> None:
    breaker, _ = make_breaker(clock, half_open_max_calls=1, success_threshold=1)
    await trip(breaker)
    clock.advance(10)

    async def wrong_type() -> None:
        raise CacheCommandError("WRONGTYPE")

    with pytest.raises(CacheCommandError):
        await breaker.call(wrong_type)
    assert breaker.state is HALF_OPEN  # neither a success nor a failure
    assert await breaker.call(succeed) == "ok"  # the slot was released
    assert breaker.state is CLOSED


async def test_cancellation_is_not_counted_and_releases_the_trial_slot(clock: FakeClock) -> None:
    breaker, events = make_breaker(clock, failure_threshold=1, half_open_max_calls=1, success_threshold=1)
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def waits() -> None:
        await never

    # Closed: cancelled calls do not count.
    for _ in range(5):
        task = asyncio.create_task(breaker.call(waits))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert breaker.state is CLOSED
    assert breaker.failure_count == 0
    # Half-open: a cancelled trial frees its slot without closing or opening.
    await trip(breaker)
    clock.advance(10)
    task = asyncio.create_task(breaker.call(waits))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.state is HALF_OPEN
    assert await breaker.call(succeed) == "ok"
    assert breaker.state is CLOSED
    assert events == [(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED)]


async def test_a_custom_is_failure_decides_what_counts(clock: FakeClock) -> None:
    breaker, _ = make_breaker(clock, failure_threshold=1, is_failure=lambda exc: isinstance(exc, LookupError))

    async def lookup() -> None:
        raise KeyError("x")

    with pytest.raises(CacheUnavailableError):
        await breaker.call(fail)
    assert breaker.state is CLOSED
    with pytest.raises(KeyError):
        await breaker.call(lookup)
    assert breaker.state is OPEN


def test_record_with_tickets_is_the_protocol_the_repository_uses(clock: FakeClock) -> None:
    breaker, _ = make_breaker(clock, failure_threshold=2, success_threshold=1)
    ticket = breaker.before_call()
    assert ticket == 0  # closed: no trial bookkeeping
    breaker.record(ticket, CacheUnavailableError("down"))
    breaker.record(breaker.before_call(), CacheCommandError("WRONGTYPE"))
    assert breaker.failure_count == 1
    breaker.record(breaker.before_call(), CacheUnavailableError("down"))
    assert breaker.state is OPEN
    with pytest.raises(CircuitOpenError):
        breaker.before_call()
    clock.advance(10)
    trial = breaker.before_call()
    assert trial > 0
    with pytest.raises(CircuitOpenError):
        breaker.before_call()  # one trial at a time by default
    breaker.record(trial, None)
    assert breaker.state is CLOSED
    assert breaker.before_call() == 0


# -- listeners --------------------------------------------------------------------


async def test_listeners_get_every_change_and_can_be_removed(clock: FakeClock) -> None:
    breaker, events = make_breaker(clock, success_threshold=1)
    second: list[str] = []

    def listener(old: CircuitState, new: CircuitState) -> None:
        second.append(f"{old.value}->{new.value}")

    breaker.add_listener(listener)
    await trip(breaker)
    clock.advance(10)
    await breaker.call(succeed)
    assert second == ["closed->open", "open->half_open", "half_open->closed"]
    assert events == [(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED)]
    breaker.remove_listener(listener)
    await trip(breaker)
    assert len(second) == 3
    assert events[-1] == (CLOSED, OPEN)


async def test_a_failing_listener_does_not_break_the_call(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    breaker, events = make_breaker(clock, failure_threshold=1)

    def broken(old: CircuitState, new: CircuitState) -> None:
        raise RuntimeError("metrics exporter down")

    breaker.add_listener(broken)
    breaker.add_listener(lambda old, new: events.append((new, new)))
    with pytest.raises(CacheUnavailableError):
        await breaker.call(fail)
    assert breaker.state is OPEN
    assert events == [(CLOSED, OPEN), (OPEN, OPEN)]  # the listener after the broken one still ran
    assert "state listener failed" in caplog.text


# -- @breaker.apply ---------------------------------------------------------------

module_breaker = CircuitBreakerPolicy(failure_threshold=2, recovery_timeout=60, success_threshold=1)
module_calls: list[str] = []


@module_breaker.apply
async def fetch_menu(menu_id: str, *, fail_with: BaseException | None = None) -> str:
    """Fetch a menu (documented)."""
    module_calls.append(menu_id)
    if fail_with is not None:
        raise fail_with
    return f"menu:{menu_id}"


async def test_apply_on_a_module_level_function() -> None:
    module_breaker.reset()
    module_calls.clear()
    assert fetch_menu.__name__ == "fetch_menu"
    assert fetch_menu.__doc__ == "Fetch a menu (documented)."
    assert await fetch_menu("margherita") == "menu:margherita"
    for _ in range(2):
        with pytest.raises(CacheUnavailableError):
            await fetch_menu("x", fail_with=CacheUnavailableError("down"))
    assert module_breaker.state is OPEN
    with pytest.raises(CircuitOpenError):
        await fetch_menu("pepperoni")
    assert module_calls == ["margherita", "x", "x"]  # the refused call never ran
    module_breaker.reset()


class MenuService:
    """The working form of the page's decorator: the breaker is a class attribute."""

    circuit_breaker = CircuitBreakerPolicy(failure_threshold=2, recovery_timeout=60, success_threshold=1)

    def __init__(self, name: str, healthy: bool = True) -> None:
        self.name = name
        self.healthy = healthy

    @circuit_breaker.apply
    async def get_menu(self, menu_id: str) -> str:
        if not self.healthy:
            raise CacheUnavailableError("Redis down")
        return f"{self.name}:{menu_id}"


async def test_apply_on_a_method_with_a_class_level_breaker_shared_by_instances() -> None:
    MenuService.circuit_breaker.reset()
    broken, healthy = MenuService("a", healthy=False), MenuService("b")
    assert await healthy.get_menu("margherita") == "b:margherita"
    for _ in range(2):
        with pytest.raises(CacheUnavailableError):
            await broken.get_menu("margherita")
    # One breaker per decorated method, shared by every instance of the class.
    with pytest.raises(CircuitOpenError):
        await healthy.get_menu("margherita")
    assert healthy.circuit_breaker is broken.circuit_breaker is MenuService.circuit_breaker
    MenuService.circuit_breaker.reset()


async def test_per_instance_breakers_through_call(clock: FakeClock) -> None:
    class PerInstance:
        def __init__(self) -> None:
            self.circuit_breaker = CircuitBreakerPolicy(failure_threshold=1, clock=clock)

        async def _get_menu(self, fail_it: bool) -> str:
            if fail_it:
                raise CacheUnavailableError("down")
            return "ok"

        async def get_menu(self, fail_it: bool = False) -> str:
            return await self.circuit_breaker.call(self._get_menu, fail_it)

    one, two = PerInstance(), PerInstance()
    with pytest.raises(CacheUnavailableError):
        await one.get_menu(fail_it=True)
    with pytest.raises(CircuitOpenError):
        await one.get_menu()
    assert await two.get_menu() == "ok"  # its own breaker


def test_the_pages_class_body_form_is_a_name_error() -> None:
    # The page writes ``@circuit_breaker.apply`` in the class body while the
    # breaker is an instance attribute set in __init__: Python evaluates the
    # decorator when the class is defined, where no such name exists.
    source = textwrap.dedent(
        """
        class ResilientMenuService:
            def __init__(self):
                self.circuit_breaker = CircuitBreakerPolicy(
                    failure_threshold=5, recovery_timeout=60, success_threshold=3
                )

            @circuit_breaker.apply
            async def get_menu_with_fallback(self, menu_id):
                return menu_id
        """
    )
    with pytest.raises(NameError, match="circuit_breaker"):
        exec(source, {"CircuitBreakerPolicy": CircuitBreakerPolicy})


def test_apply_refuses_a_sync_function() -> None:
    breaker = CircuitBreakerPolicy()

    def sync() -> None:
        return None

    with pytest.raises(ConfigurationError, match="async"):
        breaker.apply(sync)  # type: ignore[arg-type]


async def test_apply_keeps_a_partial_of_an_async_function() -> None:
    breaker = CircuitBreakerPolicy(failure_threshold=1)

    async def add(a: int, b: int) -> int:
        return a + b

    assert await breaker.apply(add)(1, 2) == 3
    assert await breaker.call(functools.partial(add, 1), 4) == 5


# -- settings ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        {"failure_threshold": 0},
        {"failure_threshold": 1.5},
        {"failure_threshold": True},
        {"success_threshold": 0},
        {"half_open_max_calls": 0},
        {"recovery_timeout": -1},
        {"recovery_timeout": "60"},
        {"trial_timeout": 0},
    ],
)
def test_bad_settings_raise_configuration_error(settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="circuit_breaker"):
        CircuitBreakerPolicy(**settings)


def test_coerce_accepts_the_config_shapes() -> None:
    assert CircuitBreakerPolicy.coerce(False) is None
    assert isinstance(CircuitBreakerPolicy.coerce(None), CircuitBreakerPolicy)
    assert isinstance(CircuitBreakerPolicy.coerce(True), CircuitBreakerPolicy)
    policy = CircuitBreakerPolicy(failure_threshold=7)
    assert CircuitBreakerPolicy.coerce(policy) is policy
    from_dict = CircuitBreakerPolicy.coerce({"failure_threshold": 5, "recovery_timeout": 60, "success_threshold": 3})
    assert from_dict is not None
    assert (from_dict.failure_threshold, from_dict.recovery_timeout, from_dict.success_threshold) == (5, 60.0, 3)
    with pytest.raises(ConfigurationError, match="unknown keys"):
        CircuitBreakerPolicy.coerce({"threshold": 5})
    with pytest.raises(ConfigurationError):
        CircuitBreakerPolicy.coerce(5)


def test_repr_shows_the_state(clock: FakeClock) -> None:
    breaker, _ = make_breaker(clock)
    assert "state=closed" in repr(breaker)
    assert "failure_threshold=3" in repr(breaker)
