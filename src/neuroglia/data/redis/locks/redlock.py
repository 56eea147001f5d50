"""Redlock: one lock over several independent Redis masters.

The algorithm as its authors describe it: take the same key with the same
random token on each of N independent masters (3 or 5), each attempt bounded
by a short per-server timeout; the lock is held when a majority granted it
and the time spent acquiring, plus an allowance for clock drift, is shorter
than the lease. The remainder is the *validity*. On failure the key is
released on every server, including those whose reply was lost or late: a
server that does not answer the release gets it again until it does, and
remembers the released token so that an acquisition arriving after the
release (a server paused with it unread) is refused.

It survives the crash of a minority of servers. It does **not** give mutual
exclusion under process pauses (GC, SIGSTOP, a VM migration) longer than the
validity, nor when a server's clock jumps or a restarted server forgets a key
(run them with ``appendfsync always`` or delay restarts by one lease), and
it has no fencing token: the servers' counters are independent, so no
single strictly increasing number can be derived safely. Where a late write
would do harm, use :class:`~neuroglia.data.redis.DistributedLock` on one
server and fence the writes. ``docs/locks.md`` discusses the limits.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, Final, TypeVar

from ..exceptions import CacheException, CacheTimeoutError, CacheUnavailableError, InvalidArgumentError
from ..repository import RedisRepository
from .lease import Acquisition, LeaseLock, OnLost, Seconds, to_seconds, undo_horizon
from .runtime import LockRuntime, lock_runtime

__all__ = ["Redlock"]

T = TypeVar("T")

_DRIFT_MS: Final = 0.002  # seconds added to the drift allowance (timer granularity)
_RESEND_PAUSE: Final = 0.05  # seconds before a release that got no answer is sent again

_log = logging.getLogger("neuroglia.data.redis.lock")


class Redlock(LeaseLock):
    """A lock held on a majority of several independent Redis masters.

    ::

        servers = [RedisRepository(RedisConfig(url=u)) for u in urls]  # 3 or 5
        async with Redlock(servers, "reports:nightly", timeout=60):
            ...

    The same interface as :class:`~neuroglia.data.redis.DistributedLock`
    (``acquire``, ``release``, ``extend``, ``is_owned``, ``async with``,
    watchdog renewal, ``on_lost``, re-entry), except that waiting polls with
    a jittered delay (``retry_delay`` seconds) and :attr:`fencing_token` is
    always ``None``. :attr:`valid_for` is the validity left: the lease minus
    the time taken to acquire and the drift allowance
    (``clock_drift_factor`` x lease + 2 ms). ``server_timeout`` bounds each
    server's reply (by default a tenth of the lease, between 50 ms and 1 s).
    """

    def __init__(
        self,
        repositories: Sequence[RedisRepository],
        key: str | bytes,
        timeout: Seconds = 30.0,
        *,
        wait_timeout: Seconds | None = None,
        auto_renew: bool = True,
        on_lost: OnLost | None = None,
        cancel_on_lost: bool = False,
        reentrant: bool = False,
        clock_drift_factor: float = 0.01,
        retry_delay: Seconds = 0.2,
        server_timeout: Seconds | None = None,
    ) -> None:
        super().__init__(
            key,
            timeout,
            wait_timeout=wait_timeout,
            auto_renew=auto_renew,
            on_lost=on_lost,
            cancel_on_lost=cancel_on_lost,
            reentrant=reentrant,
        )
        repos = tuple(repositories)
        if not repos or not all(isinstance(r, RedisRepository) for r in repos):
            raise InvalidArgumentError("Redlock needs a non-empty sequence of RedisRepository objects")
        if len({id(r) for r in repos}) != len(repos):
            raise InvalidArgumentError("Redlock's repositories must be distinct (one per independent server)")
        if (
            isinstance(clock_drift_factor, bool)
            or not isinstance(clock_drift_factor, int | float)
            or not 0 <= clock_drift_factor < 1
        ):
            raise InvalidArgumentError(f"clock_drift_factor must be in [0, 1), got {clock_drift_factor!r}")
        self._repositories = repos
        # The key and its companions on each server (each repository has its own key prefix).
        self._lock_keys = [lock_runtime(r).keys(self._key) for r in repos]
        self._quorum = len(repos) // 2 + 1
        self._drift_factor = float(clock_drift_factor)
        self._retry_delay = to_seconds(retry_delay, "retry_delay")
        self._jitter = random.Random()  # retry delays never touch the application's global random state
        self._server_timeout = (
            min(1.0, max(0.05, self._lease / 10))
            if server_timeout is None
            else to_seconds(server_timeout, "server_timeout")
        )

    @property
    def _runtime(self) -> LockRuntime:
        # Tokens, the watchdog and background work come from the first
        # server's repository; each server's scripts from its own.
        return lock_runtime(self._repositories[0])

    @property
    def repositories(self) -> tuple[RedisRepository, ...]:
        """The repositories of the independent servers."""
        return self._repositories

    @property
    def quorum(self) -> int:
        """How many servers must grant the lock: a majority."""
        return self._quorum

    def _resource(self) -> Hashable:
        return ("redlock", self._repositories, self._key)

    def _drift(self, lease: float) -> float:
        return lease * self._drift_factor + _DRIFT_MS

    async def _each(self, make: Callable[[int], Awaitable[T]], index: int, timeout: float) -> T | None:
        """One server's part, bounded in time; ``None`` when it failed."""
        try:
            async with asyncio.timeout(timeout):
                return await make(index)
        except (CacheException, TimeoutError):
            return None

    async def _everywhere(self, make: Callable[[int], Awaitable[T]], timeout: float | None = None) -> list[T | None]:
        limit = self._server_timeout if timeout is None else timeout
        return list(await asyncio.gather(*(self._each(make, i, limit) for i in range(len(self._repositories)))))

    async def _do_acquire(self, acquisition: Acquisition, blocking: bool, deadline: float) -> bool:
        loop = asyncio.get_running_loop()
        while True:
            token, lease_ms = acquisition.token, acquisition.lease_ms
            start = loop.time()
            limit = self._server_timeout if not blocking else min(self._server_timeout, max(deadline - start, 0.05))
            try:
                replies = await self._everywhere(
                    functools.partial(self._acquire_on, token=token, lease_ms=lease_ms), limit
                )
            except asyncio.CancelledError:
                self._runtime.spawn(self._release_everywhere(token, lease_ms))
                raise
            granted = sum(1 for r in replies if r is not None and int(r) > 0)  # a fencing token: granted
            validity = acquisition.lease - (loop.time() - start) - self._drift(acquisition.lease)
            if granted >= self._quorum and validity > 0:
                acquisition.valid_until = start + validity
                return True
            # Not enough: undo everywhere, also where the reply was lost. In the
            # background (an unreachable server must not delay the answer), so
            # the next attempt takes a token of its own.
            self._runtime.spawn(self._release_everywhere(token, lease_ms))
            acquisition.token = self._runtime.new_token()
            if not blocking:
                return False
            delay = self._jitter.uniform(self._retry_delay / 2, self._retry_delay)
            if loop.time() + delay >= deadline:
                return False
            await asyncio.sleep(delay)

    async def _acquire_on(self, index: int, token: str, lease_ms: int) -> Any:
        scripts = lock_runtime(self._repositories[index]).scripts
        return await scripts.acquire.run((*self._lock_keys[index].script, token, lease_ms))

    async def _undo_on(self, index: int, token: str, lease_ms: int) -> Any:
        """Release (or undo) ``token`` on one server: 1 when it held the key there, else 0.

        Where it did not hold the key, the server remembers the token for a
        lease, so that the acquisition arriving late (a server paused with it
        unread) is refused.
        """
        scripts = lock_runtime(self._repositories[index]).scripts
        prepared = (*self._lock_keys[index].script, token, "", lease_ms)
        try:
            async with asyncio.timeout(self._server_timeout):
                return await scripts.withdraw.run(prepared)
        except TimeoutError:
            raise CacheTimeoutError(
                f"Redlock {self._key!r}: server {index + 1} did not answer within {self._server_timeout:g} s"
            ) from None

    async def _release_everywhere(self, token: str, lease_ms: int) -> list[Any]:
        """Release ``token`` on every server; where the answer does not come, keep sending it in the background.

        A server that did not answer (down, paused, slow) may still hold the
        key, or get it later from an acquisition that was unread when it
        stopped: the release is sent to it again until it answers (for two
        leases, at least ten seconds).
        """
        replies = await self._everywhere(functools.partial(self._undo_on, token=token, lease_ms=lease_ms))
        for index, reply in enumerate(replies):
            if reply is None:
                self._runtime.spawn(self._undo_until_answered(index, token, lease_ms))
        return replies

    async def _undo_until_answered(self, index: int, token: str, lease_ms: int) -> None:
        try:
            await asyncio.sleep(_RESEND_PAUSE)
            repository = self._repositories[index]
            if not repository.is_connected:
                return  # closed by its owner meanwhile: not reopened for this
            await self._runtime.until_answered(
                functools.partial(self._undo_on, index, token, lease_ms), undo_horizon(lease_ms / 1000), repository
            )
        except CacheException as exc:
            _log.warning(
                "Redlock %r: server %d never answered the release (%s); if it holds the key, the key expires "
                "with its lease",
                self._key,
                index + 1,
                exc,
            )

    async def _do_release(self, acquisition: Acquisition) -> bool:
        try:
            replies = await self._release_everywhere(acquisition.token, acquisition.lease_ms)
        except asyncio.CancelledError:
            self._runtime.spawn(self._release_everywhere(acquisition.token, acquisition.lease_ms))
            raise
        answered = [r for r in replies if r is not None]
        if len(answered) < self._quorum:
            raise CacheUnavailableError(
                f"Redlock {self._key!r}: only {len(answered)} of {len(replies)} servers answered the release"
            )
        return sum(1 for r in answered if int(r) == 1) >= self._quorum  # 1: it held the key there

    def _majority_left(self, replies: list[Any], start: float, lease: float) -> float:
        answered = [int(r) for r in replies if r is not None]
        if len(answered) < self._quorum:
            raise CacheUnavailableError(
                f"Redlock {self._key!r}: only {len(answered)} of {len(replies)} servers answered"
            )
        held = sorted((ms for ms in answered if ms != 0), reverse=True)
        if len(held) < self._quorum:
            return 0.0
        # The quorum-th longest remaining lease bounds the majority's validity.
        left_ms = held[self._quorum - 1]
        if left_ms < 0:
            return -1.0
        elapsed = asyncio.get_running_loop().time() - start
        return max(0.0, left_ms / 1000 - elapsed - self._drift(lease))

    async def _do_extend(self, acquisition: Acquisition, ms: int, mode: str) -> float:
        start = asyncio.get_running_loop().time()
        args = (acquisition.token, ms, mode)
        replies = await self._everywhere(
            lambda i: lock_runtime(self._repositories[i]).scripts.extend(keys=(self._key,), args=args)
        )
        return self._majority_left(replies, start, ms / 1000)

    async def _do_owned(self, acquisition: Acquisition) -> float:
        start = asyncio.get_running_loop().time()
        args = (acquisition.token,)
        replies = await self._everywhere(
            lambda i: lock_runtime(self._repositories[i]).scripts.owned(keys=(self._key,), args=args)
        )
        return self._majority_left(replies, start, acquisition.lease)

    def __repr__(self) -> str:
        return f"Redlock(key={self._key!r}, timeout={self._lease:g}, servers={len(self._repositories)})"
