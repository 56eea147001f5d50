"""The recovery probe: while the breaker is open, ask the server in the background whether it is back.

An open breaker fails every call fast for up to ``recovery_timeout``; a
server that came back after one second would still be refused for the rest
of it. The probe makes recovery follow the server instead: as soon as the
breaker opens it sends a ``PING`` straight to the transport (not through the
breaker, and not on behalf of any caller), again and again with a growing,
jittered delay (at most a few per second), and the first answer moves the
breaker to half-open, so that the next calls are its trials. Callers keep
failing fast meanwhile; the probe never touches their commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import Final

from ..exceptions import CacheException
from ..resilience.breaker import CircuitBreakerPolicy, CircuitState
from ..transport.contract import Transport

__all__ = ["RecoveryProbe"]

_log = logging.getLogger("neuroglia.data.redis.breaker")

FIRST_DELAY: Final = 0.05
MAX_DELAY: Final = 0.5
PING_TIMEOUT: Final = 1.0


class RecoveryProbe:
    """Probes the server while ``breaker`` is open; see the module docstring."""

    def __init__(
        self,
        breaker: CircuitBreakerPolicy,
        transport: Callable[[], Transport],
        *,
        first_delay: float = FIRST_DELAY,
        max_delay: float = MAX_DELAY,
        ping_timeout: float = PING_TIMEOUT,
    ) -> None:
        self._breaker = breaker
        self._transport = transport
        self._first_delay = first_delay
        self._max_delay = max_delay
        self._ping_timeout = ping_timeout
        self._task: asyncio.Task[None] | None = None
        self._jitter = random.Random()  # not the application's global random state
        self.probes = 0
        """Probes sent so far (answered or not)."""
        breaker.add_listener(self._on_change)

    @property
    def running(self) -> bool:
        """Whether a probe loop is under way."""
        return self._task is not None and not self._task.done()

    def _on_change(self, old: CircuitState, new: CircuitState) -> None:
        if new is CircuitState.OPEN and not self.running:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # driven outside an event loop (a test's clock): nothing to probe with
                return
            self._task = loop.create_task(self._probe(), name="neuroglia-redis-recovery-probe")

    async def _probe(self) -> None:
        breaker = self._breaker
        delay = self._first_delay
        loop = asyncio.get_running_loop()
        while breaker.state is CircuitState.OPEN:
            # Jitter: repositories that opened together do not probe together.
            await asyncio.sleep(delay * self._jitter.uniform(0.8, 1.2))
            if breaker.state is not CircuitState.OPEN:
                return
            self.probes += 1
            try:
                await self._transport().execute(("PING",), loop.time() + self._ping_timeout)
            except CacheException as exc:
                _log.debug("circuit %s: recovery probe failed (%s)", breaker.name, exc)
                delay = min(delay * 2, self._max_delay)
                continue
            if breaker.half_open():
                _log.info("circuit %s: the server answers again; letting trial calls through", breaker.name)
            return

    async def close(self) -> None:
        """Stop probing (the repository is disconnecting)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
