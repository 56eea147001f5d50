"""CircuitBreakerPolicy: stop calling a dependency that keeps failing.

States::

    CLOSED --(failure_threshold consecutive failures)--> OPEN
    OPEN --(recovery_timeout elapsed, or half_open() after a probe)--> HALF_OPEN
    HALF_OPEN --(success_threshold successes)--> CLOSED
    HALF_OPEN --(a failure, or a trial older than trial_timeout)--> OPEN

While OPEN every call fails at once with
:class:`~neuroglia.data.redis.CircuitOpenError` and runs nothing. HALF_OPEN
admits at most ``half_open_max_calls`` trial calls at a time; the other
callers fail fast as if OPEN, so a recovering server is not stampeded. A trial
that neither succeeds nor fails within ``trial_timeout`` (a hung call) counts
as a failure, so it cannot wedge the breaker half-open.

The clock is injectable (``clock=``): tests drive the breaker without sleeping.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from ..exceptions import CacheTLSError, CacheUnavailableError, CircuitOpenError, ConfigurationError

__all__ = ["CircuitBreakerPolicy", "CircuitState"]

P = ParamSpec("P")
T = TypeVar("T")
_log = logging.getLogger("neuroglia.data.redis.breaker")

StateListener = Callable[["CircuitState", "CircuitState"], None]


class CircuitState(enum.Enum):
    """The breaker's state."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


def _default_is_failure(exc: BaseException) -> bool:
    # Outages count; a refused command, bad input or the caller's own bugs do not.
    # Nor does a refused TLS handshake: counting it would soon replace its cause
    # (bad certificate, wrong host name) with CircuitOpenError.
    return isinstance(exc, CacheUnavailableError | OSError | TimeoutError) and not isinstance(exc, CacheTLSError)


class CircuitBreakerPolicy:
    """A circuit breaker, usable as ``@breaker.apply`` or through :meth:`call`.

    ``failure_threshold`` consecutive failures open it; after
    ``recovery_timeout`` seconds it lets ``half_open_max_calls`` trial calls
    through at a time; ``success_threshold`` successful trials close it.
    ``is_failure`` decides which exceptions count (by default outages:
    :class:`~neuroglia.data.redis.CacheUnavailableError`, ``OSError``,
    ``TimeoutError``); others pass through without touching the counts.
    ``name`` appears in logs and events.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        recovery_timeout: float = 30.0,
        success_threshold: int = 2,
        *,
        half_open_max_calls: int = 1,
        trial_timeout: float | None = None,
        is_failure: Callable[[BaseException], bool] = _default_is_failure,
        clock: Callable[[], float] = time.monotonic,
        name: str = "redis",
    ) -> None:
        for field, value in (
            ("failure_threshold", failure_threshold),
            ("success_threshold", success_threshold),
            ("half_open_max_calls", half_open_max_calls),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"circuit_breaker.{field}: must be an integer >= 1, got {value!r}")
        if isinstance(recovery_timeout, bool) or not isinstance(recovery_timeout, int | float) or recovery_timeout < 0:
            raise ConfigurationError(
                f"circuit_breaker.recovery_timeout: must be seconds >= 0, got {recovery_timeout!r}"
            )
        if trial_timeout is not None and not trial_timeout > 0:
            raise ConfigurationError(f"circuit_breaker.trial_timeout: must be seconds > 0, got {trial_timeout!r}")
        self.failure_threshold = failure_threshold
        self.recovery_timeout = float(recovery_timeout)
        self.success_threshold = success_threshold
        self.half_open_max_calls = half_open_max_calls
        # A trial that takes longer than this is presumed hung.
        self.trial_timeout = float(trial_timeout) if trial_timeout is not None else max(self.recovery_timeout, 1.0)
        self.is_failure = is_failure
        self.name = name
        self._clock = clock
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._successes = 0
        self._opened_at = 0.0
        self._trials: dict[int, float] = {}  # trial id -> start time
        self._next_trial = 1
        self._listeners: list[StateListener] = []
        self.opened_count = 0

    # -- state -----------------------------------------------------------------

    @property
    def state(self) -> CircuitState:
        """The current state (OPEN turns HALF_OPEN once ``recovery_timeout`` has passed)."""
        if self._state is CircuitState.OPEN and self._clock() - self._opened_at >= self.recovery_timeout:
            self._transition(CircuitState.HALF_OPEN)
        return self._state

    @property
    def failure_count(self) -> int:
        """Consecutive failures counted while closed."""
        return self._failures

    def add_listener(self, listener: StateListener) -> None:
        """Call ``listener(old_state, new_state)`` on every state change."""
        self._listeners.append(listener)

    def remove_listener(self, listener: StateListener) -> None:
        """Stop calling ``listener``."""
        self._listeners.remove(listener)

    def half_open(self) -> bool:
        """Let trial calls through now, before ``recovery_timeout``: the dependency was seen answering.

        An open breaker moves to half-open (its trials then decide, as
        always); in any other state nothing changes. Returns whether it moved.
        The repository calls this when its recovery probe gets an answer.
        """
        if self._state is not CircuitState.OPEN:
            return False
        self._transition(CircuitState.HALF_OPEN)
        return True

    def reset(self) -> None:
        """Close the breaker and forget every count."""
        self._trials.clear()
        self._failures = self._successes = 0
        self._transition(CircuitState.CLOSED)

    def _transition(self, new: CircuitState) -> None:
        old = self._state
        if old is new:
            return
        self._state = new
        self._failures = 0
        self._successes = 0
        if new is CircuitState.OPEN:
            self._opened_at = self._clock()
            self._trials.clear()
            self.opened_count += 1
        log = _log.warning if new is CircuitState.OPEN else _log.info
        log("circuit %s: %s -> %s", self.name, old.value, new.value)
        for listener in list(self._listeners):
            try:
                listener(old, new)
            except Exception:  # a listener's bug must not break the caller's call
                _log.exception("circuit %s: state listener failed", self.name)

    # -- the protocol used around each call -----------------------------------

    def before_call(self) -> int:
        """Admit a call or raise :class:`CircuitOpenError`.

        Returns a ticket for :meth:`on_success`/:meth:`on_failure`/:meth:`on_ignored`
        (``0`` for a normal call, a trial id while half-open).
        """
        if self._state is CircuitState.CLOSED:
            return 0
        state = self.state
        if state is CircuitState.CLOSED:
            return 0
        if state is CircuitState.HALF_OPEN:
            now = self._clock()
            if any(now - started >= self.trial_timeout for started in self._trials.values()):
                _log.warning("circuit %s: a trial call hung past %.3gs", self.name, self.trial_timeout)
                self._transition(CircuitState.OPEN)
            elif len(self._trials) < self.half_open_max_calls:
                ticket = self._next_trial
                self._next_trial += 1
                self._trials[ticket] = now
                return ticket
        retry_in = max(0.0, self.recovery_timeout - (self._clock() - self._opened_at))
        raise CircuitOpenError(
            f"circuit {self.name!r} is {self._state.value}: failing fast (next trial in {retry_in:.3g}s)"
        )

    def on_success(self, ticket: int) -> None:
        """Record a successful call."""
        if ticket == 0:
            if self._state is CircuitState.CLOSED:
                self._failures = 0
            return
        if self._trials.pop(ticket, None) is None:
            return  # a trial from before the breaker re-opened
        self._successes += 1
        if self._successes >= self.success_threshold:
            self._transition(CircuitState.CLOSED)

    def on_failure(self, ticket: int) -> None:
        """Record a failed call."""
        if ticket == 0:
            if self._state is CircuitState.CLOSED:
                self._failures += 1
                if self._failures >= self.failure_threshold:
                    self._transition(CircuitState.OPEN)
            return
        if self._trials.pop(ticket, None) is not None:
            self._transition(CircuitState.OPEN)

    def on_ignored(self, ticket: int) -> None:
        """Release a trial slot for a call whose outcome says nothing about health."""
        if ticket:
            self._trials.pop(ticket, None)

    def record(self, ticket: int, exc: BaseException | None) -> None:
        """Record the outcome of a call admitted with ``ticket``."""
        if exc is None:
            self.on_success(ticket)
        elif isinstance(exc, Exception) and self.is_failure(exc):
            self.on_failure(ticket)
        else:
            self.on_ignored(ticket)

    # -- wrapping --------------------------------------------------------------

    async def call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``await fn(*args, **kwargs)`` under the breaker.

        A trial call (half-open) is bounded by ``trial_timeout``.
        """
        ticket = self.before_call()
        try:
            if ticket:
                async with asyncio.timeout(self.trial_timeout):
                    result = await fn(*args, **kwargs)
            else:
                result = await fn(*args, **kwargs)
        except BaseException as exc:
            self.record(ticket, exc)
            raise
        self.record(ticket, None)
        return result

    def apply(self, fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        """Decorate an async function or method so every call goes through the breaker.

        One breaker per decorated function: define it at module or class
        level (``breaker = CircuitBreakerPolicy(...)`` then ``@breaker.apply``);
        the decorated method's calls share its state across instances.
        """
        if not inspect.iscoroutinefunction(fn):
            raise ConfigurationError(f"@apply needs an async function, got {fn!r}")

        @functools.wraps(fn)
        async def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
            return await self.call(fn, *args, **kwargs)

        return guarded

    def __repr__(self) -> str:
        return (
            f"CircuitBreakerPolicy(name={self.name!r}, state={self.state.value}, "
            f"failure_threshold={self.failure_threshold}, recovery_timeout={self.recovery_timeout}, "
            f"success_threshold={self.success_threshold})"
        )

    @classmethod
    def coerce(cls, value: Any) -> CircuitBreakerPolicy | None:
        """Accept a policy, a dict of its arguments, ``None`` (defaults) or ``False`` (off)."""
        if value is False:
            return None
        if value is None or value is True:
            return cls()
        if isinstance(value, CircuitBreakerPolicy):
            return value
        if isinstance(value, dict):
            allowed = set(inspect.signature(cls).parameters)
            unknown = sorted(set(value) - allowed)
            if unknown:
                raise ConfigurationError(f"circuit_breaker: unknown keys {unknown}; allowed: {sorted(allowed)}")
            return cls(**value)
        raise ConfigurationError(
            f"circuit_breaker: expected a CircuitBreakerPolicy, a dict, None or False, got {type(value).__name__}"
        )
