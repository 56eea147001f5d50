"""The executor of a repository with a near cache: reads consult it first, writes drop their keys.

A subclass, so that repositories without a near cache pay nothing for it.
For each command:

* a read the near cache holds is answered from it (no breaker, no round
  trip: nothing is sent);
* a cacheable read it does not hold is sent as the near cache's batch (the
  read and its keys' ``PTTL``) through the ordinary path, breaker, deadline,
  retries and metrics included, and its reply is kept unless an
  invalidation or a write of its key happened while it was in flight;
* any other command that may change keys (pipelines and transactions
  included) drops them from the near cache before it is sent and again when
  it has completed, failed or not, so that no read of this process returns
  what was there before its own write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ..nearcache import MISS, Fetch, NearCache
from ..observability.metrics import CacheMetrics
from ..resilience.breaker import CircuitBreakerPolicy
from ..resilience.fallback import LastKnownGood
from ..resilience.retry import RetryPolicy
from ..transport.contract import Transport
from .command import Command
from .executor import Executor

__all__ = ["NearCachingExecutor"]

T = TypeVar("T")


class NearCachingExecutor(Executor):
    """An :class:`~.executor.Executor` in front of which sits a :class:`~neuroglia.data.redis.nearcache.NearCache`."""

    __slots__ = ("_near",)

    def __init__(
        self,
        transport: Callable[[], Transport],
        *,
        near: NearCache,
        retry: RetryPolicy,
        timeout: float | None,
        breaker: CircuitBreakerPolicy | None = None,
        metrics: CacheMetrics | None = None,
        fallback: LastKnownGood | None = None,
    ) -> None:
        super().__init__(transport, retry=retry, timeout=timeout, breaker=breaker, metrics=metrics, fallback=fallback)
        self._near = near

    @property
    def near_cache(self) -> NearCache:
        """The near cache this executor consults."""
        return self._near

    async def run(self, cmd: Command[T], fetch: Fetch | None = None) -> T:
        """Run one command, through the near cache (see the module docstring)."""
        args = cmd.args
        if not args:
            return cmd.parse(None)
        near = self._near
        if cmd.read:
            reply: Any = near.get(args)
            if reply is not MISS:
                return cmd.parse(reply)
            fetch = near.fetch(args)
            if fetch is None:
                return await Executor.run(self, cmd)
            try:
                if fetch.done:
                    return cmd.parse(fetch.reply)
                return await Executor.run(self, cmd, fetch)
            finally:
                fetch.close()
        commands = cmd.batch if cmd.batch is not None else (args,)
        near.wrote(commands)
        try:
            return await Executor.run(self, cmd)
        finally:
            near.wrote(commands)
