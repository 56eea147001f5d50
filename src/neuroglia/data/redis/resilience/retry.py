"""RetryPolicy: how many times, and how long apart, a failed command is resent.

Whether a command may be resent at all is the executor's decision (only
what cannot be applied twice); this policy only spaces the attempts.
"""

from __future__ import annotations

import dataclasses
import math
import random as _random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..exceptions import ConfigurationError

__all__ = ["RetryPolicy"]

# Jitter draws from a generator of its own: retries never disturb (nor depend on)
# the application's global random state.
_jitter = _random.Random()


def _fail(field_name: str, problem: str) -> ConfigurationError:
    return ConfigurationError(f"{field_name}: {problem}")


def _non_negative(name: str, value: Any, *, allow_zero: bool = True) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise _fail(name, f"expected a number, got {type(value).__name__}")
    if value < 0 or (value == 0 and not allow_zero):
        raise _fail(name, f"must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """How failed commands are retried.

    ``retries`` is the number of extra attempts (``0`` turns retrying off);
    the delay before attempt *n* is ``retry_delay * backoff_factor**(n-1)``,
    capped at ``max_retry_delay`` and spread by full jitter when ``jitter``.
    Only commands that cannot be applied twice are retried after an uncertain
    send; see ``docs/resilience.md``.
    """

    retries: int = 3
    retry_delay: float = 0.1
    backoff_factor: float = 2.0
    max_retry_delay: float = 1.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise _fail("retry_policy.retries", f"must be an integer >= 0, got {self.retries!r}")
        _non_negative("retry_policy.retry_delay", self.retry_delay)
        _non_negative("retry_policy.max_retry_delay", self.max_retry_delay)
        _non_negative("retry_policy.backoff_factor", self.backoff_factor, allow_zero=False)
        if self.backoff_factor < 1:
            raise _fail("retry_policy.backoff_factor", f"must be >= 1, got {self.backoff_factor!r}")

    @classmethod
    def coerce(cls, value: RetryPolicy | Mapping[str, Any] | None) -> RetryPolicy:
        """Accept a policy, the page's dict form, or ``None`` for the defaults."""
        if value is None:
            return cls()
        if isinstance(value, RetryPolicy):
            return value
        if isinstance(value, Mapping):
            allowed = [f.name for f in dataclasses.fields(cls)]
            unknown = sorted(set(value) - set(allowed))
            if unknown:
                raise _fail("retry_policy", f"unknown keys {unknown}; allowed: {allowed}")
            return cls(**value)
        raise _fail("retry_policy", f"expected a RetryPolicy or a dict, got {type(value).__name__}")

    def delay(self, attempt: int, random: Callable[[], float] = _jitter.random) -> float:
        """The delay before retry number ``attempt`` (1-based).

        Exponential, capped at ``max_retry_delay``; with ``jitter`` a random
        point in its upper half, so that clients that failed together do not
        retry together.
        """
        base = float(min(self.max_retry_delay, self.retry_delay * self.backoff_factor ** (attempt - 1)))
        return base * (0.5 + 0.5 * random()) if self.jitter else base
