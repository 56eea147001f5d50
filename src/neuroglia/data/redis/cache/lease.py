"""The distributed lease: one process computes a missing entry, the others wait for it.

A process that misses runs ``cache_lease.lua``, which in one step returns the
entry if another process has just written it, takes the lease (``SET NX PX``
of a token of this attempt) if nobody holds it, or registers the process as a
waiter. A waiter blocks on its own wake-up list (``BLPOP``) until the holder
writes the value or releases the lease (both wake every registered waiter), or
until the lease runs out (the holder died or overran, timed by the waiter),
then checks again: no polling. The holder's write (``cache_set.lua``) and release
(``cache_release.lua``) delete the lease only if it still holds their token.

Inside one process only the flight of a key talks to Redis, so a process is
one waiter however many of its tasks wait.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from .entry import StoredEntry
from .keyspace import KeySpace
from .scripts import CacheScripts

if TYPE_CHECKING:
    from ._library import RedisRepository

__all__ = ["DistributedLease", "LeaseOutcome", "LeaseState"]

# A waiter blocks until the lease should have run out plus this margin, so that
# its next attempt finds the lease gone rather than a few milliseconds left.
WAKE_MARGIN: Final = 0.01
# The BLPOP's own (server-side) timeout is later than the waiter's: only a
# backstop, should the client-side one not fire.
SERVER_BACKSTOP: Final = 1.0


class LeaseState(enum.Enum):
    """What an attempt to take the lease found."""

    FRESH = 1  # the entry is fresh (another process wrote it): use it
    ACQUIRED = 2  # this attempt holds the lease: compute, then write or release
    BUSY = 3  # another process holds the lease (only when not waiting)


@dataclass(frozen=True, slots=True)
class LeaseOutcome:
    """The end of :meth:`DistributedLease.acquire`."""

    state: LeaseState
    entry: StoredEntry | None = None
    waited: bool = False


class DistributedLease:
    """The lease operations of one cache on one repository."""

    __slots__ = ("_keys", "_repository", "_scripts", "waiter_id")

    def __init__(self, repository: RedisRepository, scripts: CacheScripts, keys: KeySpace, waiter_id: str) -> None:
        self._repository = repository
        self._scripts = scripts
        self._keys = keys
        self.waiter_id = waiter_id

    async def acquire(
        self,
        key: str,
        token: str,
        lease_ms: int,
        fresh_after: Callable[[], int],
        *,
        wait: bool,
        on_wait: Callable[[], None] = lambda: None,
    ) -> LeaseOutcome:
        """Take the lease of ``key`` with ``token``, or get the entry another process wrote.

        ``fresh_after()`` gives the time (ms) after which the entry's expiration
        must lie for it to count as fresh. With ``wait`` the call waits (notified)
        while another process holds the lease and returns only FRESH or
        ACQUIRED; without, it returns BUSY at once. ``on_wait`` is called once,
        when the call starts waiting. Raises
        :class:`~neuroglia.data.redis.CacheUnavailableError` when Redis cannot
        be reached.
        """
        keys = self._keys
        script_keys = (keys.entry(key), keys.lease(key), keys.waiters(key))
        waiter = self.waiter_id if wait else ""
        wake_prefix = keys.wake_prefix(key)
        wake_list = keys.wake(key, self.waiter_id)
        waited = False
        while True:
            reply = await self._scripts.lease(
                keys=script_keys, args=(token, lease_ms, fresh_after(), waiter, wake_prefix)
            )
            state = LeaseState(int(reply[0]))
            if state is LeaseState.FRESH:
                return LeaseOutcome(state, StoredEntry.from_fields(reply[1], reply[2], reply[3]), waited)
            if state is LeaseState.ACQUIRED or not wait:
                return LeaseOutcome(state, None, waited)
            if not waited:
                waited = True
                on_wait()
            # Woken by the holder's write or release, or by the end of its lease.
            # The end is timed here: Redis checks blocking timeouts when its event
            # loop wakes, up to 1/hz (100 ms) late on an idle server. Cutting the
            # BLPOP short costs its connection (dropped, reopened on demand), and
            # happens only when a holder died or overran.
            remaining = int(reply[1]) / 1000 + WAKE_MARGIN
            try:
                async with asyncio.timeout(remaining):
                    await self._repository.blpop_async(wake_list, remaining + SERVER_BACKSTOP)
            except TimeoutError:
                pass

    async def release(self, key: str, token: str) -> None:
        """Give the lease up without writing, waking the waiters (one of them takes over)."""
        keys = self._keys
        await self._scripts.release(keys=(keys.lease(key), keys.waiters(key)), args=(token, keys.wake_prefix(key)))
