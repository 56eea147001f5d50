"""DistributedLock: a Redis lease lock with fencing, renewal and fair hand-off.

The lock is the key ``key`` itself (under the repository's key prefix), holding
the random token of one acquisition and set with ``SET NX PX``. Release, extend
and ownership checks are Lua scripts that compare the token first (``lua/``),
so a holder can never delete or extend a lock that another holder took after
its lease expired.

Beside the lock key live a few companion keys, in a reserved namespace no
other key can reach and in the lock key's cluster hash slot
(:mod:`.keyspace`):

the fencing counter
    incremented by every acquisition: the *fencing token*. One counter serves
    every lock under the key prefix, so no key is left behind per lock name;
    it never expires. See :func:`fenced_set_async`.
the queue and heartbeats
    the fair queue of waiting processes (arrival order, heartbeats).
the wake-up lists
    a list a release pushes to wake the process at the head of the queue, which
    waits for it with ``BLPOP`` (polling only as a fallback).
the undone tokens
    acquisitions undone before they reached Redis, refused should they arrive late.

Waiting tasks of one process queue locally (:mod:`.queue`); the lease is
renewed by the watchdog (:mod:`.watchdog`); what every lock shares is in
:mod:`.lease`. Ownership is per acquisition and per task, never per thread:
two tasks sharing one lock object hold separate acquisitions, and neither
can release the other's. See ``docs/locks.md`` for the guarantees and their
limits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Hashable
from typing import Any

from ..core.arguments import Arguments
from ..core.command import Command
from ..exceptions import InvalidArgumentError, LockNotOwnedError
from ..observability.metrics import CacheMetrics
from ..repository import RedisRepository
from .lease import Acquisition, Key, LeaseLock, OnLost, Seconds, check_key, to_milliseconds, to_seconds
from .queue import Group
from .runtime import LockRuntime, lock_runtime

__all__ = ["DistributedLock", "fenced_set_async", "fenced_token_async"]


class DistributedLock(LeaseLock):
    """A lock shared by every process that uses the same Redis and key.

    ::

        async with DistributedLock(redis, f"orders:lock:{order_id}", timeout=30):
            ...  # one holder at a time, across processes

    ``timeout`` is the lease in seconds: if the holder dies, the lock frees
    itself after that long. While the lock is held a watchdog renews the
    lease every third of it (``auto_renew=False`` turns that off), so a
    critical section may outlast it. ``wait_timeout`` bounds the wait for the
    lock (the lease by default); :class:`LockTimeoutError` when it passes.

    When the lock is lost anyway (a pause longer than the lease, Redis
    unreachable past the lease, the key deleted from outside) the holder
    learns it: ``on_lost(error)`` is called, the ``async with`` block ends
    with :class:`LockLostError`, and with ``cancel_on_lost=True`` the block is
    cancelled at once. Every acquisition carries a strictly increasing
    :attr:`fencing_token`; protect writes with it (:meth:`fenced_set_async`),
    since no lease can stop a paused process from acting late.

    A task asking for a lock it already holds gets :class:`LockError`;
    ``reentrant=True`` counts the holds instead. One lock object may be shared
    by several tasks: each holds its own acquisition.
    """

    def __init__(
        self,
        repository: RedisRepository,
        key: Key,
        timeout: Seconds = 30.0,
        *,
        wait_timeout: Seconds | None = None,
        auto_renew: bool = True,
        on_lost: OnLost | None = None,
        cancel_on_lost: bool = False,
        reentrant: bool = False,
    ) -> None:
        if not isinstance(repository, RedisRepository):
            raise InvalidArgumentError(f"repository must be a RedisRepository, got {type(repository).__name__}")
        super().__init__(
            key,
            timeout,
            wait_timeout=wait_timeout,
            auto_renew=auto_renew,
            on_lost=on_lost,
            cancel_on_lost=cancel_on_lost,
            reentrant=reentrant,
        )
        self._repository = repository
        self._lock_runtime = lock_runtime(repository)
        self._scripts = self._lock_runtime.scripts
        self._registry = self._lock_runtime.groups

    @property
    def repository(self) -> RedisRepository:
        """The repository the lock lives in."""
        return self._repository

    def _resource(self) -> Hashable:
        return ("lock", self._repository, self._key)

    @property
    def _runtime(self) -> LockRuntime:
        return self._lock_runtime

    def _group(self) -> Group:
        """This process' group for the key (one per repository, key and event loop)."""
        return self._lock_runtime.group(self._key)

    # Who holds the key in this process is the group's business: it sees
    # every lock object of the repository and key.
    def _held_by(self, task: asyncio.Task[Any]) -> Acquisition | None:
        group = self._registry.get(self._key)
        holder = group.holder if group is not None else None
        return holder if holder is not None and holder.task is task else None

    def _note_held(self, task: asyncio.Task[Any], acquisition: Acquisition) -> None:
        pass

    def _note_released(self, acquisition: Acquisition) -> None:
        pass

    def _lock_metrics(self) -> CacheMetrics | None:
        return self._repository.metrics

    async def locked(self) -> bool:
        """Whether anyone holds the lock right now."""
        return await self._repository.exists_async(self._key)

    async def fenced_set_async(self, key: Key, value: Any, expiration: Seconds | None = None) -> bool:
        """Write ``value`` at ``key`` guarded by the current task's fencing token.

        Returns ``False`` (and writes nothing) when a holder with a newer token
        has already written ``key``. See :func:`fenced_set_async`.
        """
        acquisition = self._current()
        if acquisition is None or acquisition.fence is None:
            raise LockNotOwnedError(f"lock {self._key!r} is not held by this task")
        return await fenced_set_async(self._repository, key, value, acquisition.fence, expiration=expiration)

    def _do_acquire(self, acquisition: Acquisition, blocking: bool, deadline: float) -> Awaitable[bool]:
        return self._group().acquire(acquisition, blocking, deadline)

    def _do_release(self, acquisition: Acquisition) -> Awaitable[bool]:
        return (acquisition.group or self._group()).release(acquisition)

    async def _do_extend(self, acquisition: Acquisition, ms: int, mode: str) -> float:
        left = await self._scripts.extend(keys=(self._key,), args=(acquisition.token, ms, mode))
        return int(left) / 1000

    async def _do_owned(self, acquisition: Acquisition) -> float:
        left = int(await self._scripts.owned(keys=(self._key,), args=(acquisition.token,)))
        return -1.0 if left < 0 else left / 1000

    def __repr__(self) -> str:
        return f"DistributedLock(key={self._key!r}, timeout={self._lease:g}, repository={self._repository!r})"


async def fenced_set_async(
    repository: RedisRepository,
    key: Key,
    value: Any,
    fencing_token: int,
    *,
    expiration: Seconds | None = None,
) -> bool:
    """Write ``value`` at ``key`` unless a newer fencing token has written it.

    The highest token accepted so far is kept in a guard key beside it, in
    the locks' reserved namespace (it never expires; a guard that earlier
    versions kept at ``<key>:fencing`` is still honoured); a write carrying a
    lower token is refused and returns ``False``,
    so a holder that lost its lock during a pause cannot overwrite the work of
    the holder that came after it. Returns ``True`` when written. Use the
    tokens of one lock key for a given ``key``.
    """
    if isinstance(fencing_token, bool) or not isinstance(fencing_token, int) or fencing_token < 1:
        raise InvalidArgumentError(f"fencing_token must be a positive int, got {fencing_token!r}")
    ms = 0 if expiration is None else to_milliseconds(to_seconds(expiration, "expiration"))
    runtime = lock_runtime(repository)
    full, guard, legacy = runtime.guard(check_key(key))
    stored = Arguments.value(value)
    keys = (full, guard) if legacy is None else (full, guard, legacy)
    reply = await runtime.scripts.fenced_set.run((len(keys), *keys, fencing_token, stored, ms))
    return int(reply) == 1


async def fenced_token_async(repository: RedisRepository, key: Key) -> int | None:
    """The highest fencing token a :func:`fenced_set_async` to ``key`` has accepted, or ``None`` if none has.

    What an auditor (or a test) reads to check that the last write to a
    protected resource came from its latest holder.
    """
    runtime = lock_runtime(repository)
    _, guard, legacy = runtime.guard(check_key(key))
    executor = repository._executor
    replies = await executor.run(Command(("MGET", guard) if legacy is None else ("MGET", guard, legacy), list))
    tokens = [int(reply) for reply in replies if reply is not None and bytes(reply).isdigit()]
    return max(tokens) if tokens else None
