"""Resilience: the circuit breaker, the retry policy and the stale-read fallback.

The policies live here; the executor (:mod:`neuroglia.data.redis.core`)
applies them to every command: the breaker admits or refuses it, the retry
policy spaces resends (the executor decides which commands may be resent at
all), the fallback answers reads from the last known value during an
outage. The operation deadline is a setting (``operation_timeout``) that
the executor and the transport enforce. See ``docs/resilience.md``.
"""

from .breaker import CircuitBreakerPolicy, CircuitState
from .fallback import FallbackPolicy, LastKnownGood
from .retry import RetryPolicy

__all__ = ["CircuitBreakerPolicy", "CircuitState", "FallbackPolicy", "LastKnownGood", "RetryPolicy"]
