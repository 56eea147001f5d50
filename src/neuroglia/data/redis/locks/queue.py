"""The per-key queue of one process: its waiting tasks, their turn in Redis, and hand-off.

Inside one process the tasks waiting for the same key of the same
repository form a local first-come-first-served queue, and only the task
at its head talks to Redis (one blocking connection per contended key per
process, however many tasks wait). When a holder releases and another task
of the same process waits, the release script hands the lock straight to
that task's token in the same round trip, unless another process is queued
ahead, in which case this process goes to the back of the Redis queue.
Processes take turns; tasks take turns.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Final

from ..exceptions import CacheException
from .lease import Acquisition, Key, undo_horizon

if TYPE_CHECKING:
    from .runtime import LockRuntime
    from .watchdog import Watchdog

__all__ = ["Group", "Waiter"]

_log = logging.getLogger("neuroglia.data.redis.lock")

# A waiting process sleeps at most this long between two attempts: the fallback
# for a wake-up that never comes (a holder that crashed lets its lease expire).
_POLL: Final = 0.5
# (A queued process that has not refreshed its place for 3 s is skipped, so a
# crashed waiter cannot block the queue for longer: GRACE in lua/lock_queue.lua.)
_MIN_BLOCK: Final = 0.005


class Waiter:
    """A task of this process waiting for the lock; its future says how it ended."""

    __slots__ = ("acquisition", "future", "timer")

    def __init__(self, acquisition: Acquisition, future: asyncio.Future[bool]) -> None:
        self.acquisition = acquisition
        self.future = future  # True: granted; False: timed out; an exception: Redis failed
        self.timer: asyncio.TimerHandle | None = None

    def granted(self) -> bool:
        f = self.future
        return f.done() and not f.cancelled() and f.exception() is None and f.result()


class Group:
    """What this process knows and does about one lock key of one repository.

    At most one of these is active at a time: a task of this process holds
    the lock (``holder``); a first attempt is in flight (``attempting``); a
    release or hand-off is in flight (``handing_off``); or the lock is held
    elsewhere and the contender task waits for it on behalf of the local
    queue (``contender``).
    """

    def __init__(self, runtime: LockRuntime, key: Key) -> None:
        self.runtime = runtime
        self.repository = runtime.repository
        self.key = key
        # Script calls of this key start with (number of keys, the prefixed
        # key and its companions): made once, then each call only adds its
        # arguments.
        self.keys = runtime.keys(key)
        self.script_key = self.keys.script
        self.scripts = runtime.scripts
        self.loop = asyncio.get_running_loop()
        self.ticket = runtime.new_token()  # this process' id in the Redis queue
        self.holder: Acquisition | None = None
        self.queue: deque[Waiter] = deque()
        self.attempting = False
        self.handing_off = False
        self.contender: asyncio.Task[None] | None = None
        self.contender_blocked = False
        self.watch_at = math.inf  # when the watchdog's entry for this key comes due
        self.watchdog: Watchdog | None = None  # this loop's, once a holder is renewed

    # -- local queue ---------------------------------------------------------------

    def renewable(self) -> Acquisition | None:
        """What the watchdog renews for this key: the current holder's acquisition."""
        return self.holder

    def _head(self) -> Waiter | None:
        queue = self.queue
        while queue and queue[0].future.done():
            queue.popleft()
        return queue[0] if queue else None

    def idle(self) -> bool:
        return (
            self.holder is None
            and not self.attempting
            and not self.handing_off
            and self.contender is None
            and (not self.queue or self._head() is None)
        )

    def _kick(self, wait_ms: int | None = None) -> None:
        """Start the contender when tasks wait here and nothing else is under way."""
        if self.holder is not None or self.attempting or self.handing_off or self.contender is not None:
            return
        if self.queue and self._head() is not None:
            self.contender = self.loop.create_task(self._contend(wait_ms))

    def _retire_ticket(self) -> str:
        """Take a new queue id, so a clean-up of the old one cannot touch the new."""
        old, self.ticket = self.ticket, self.runtime.new_token()
        return old

    # -- acquiring -------------------------------------------------------------------

    def acquire(self, acquisition: Acquisition, blocking: bool, deadline: float) -> Awaitable[bool]:
        acquisition.group = self
        if self.idle():
            return self._first_attempt(acquisition, blocking, deadline)
        return self._queue(acquisition, blocking, deadline)

    async def _queue(self, acquisition: Acquisition, blocking: bool, deadline: float) -> bool:
        if not blocking:
            return False  # held or awaited here: a single attempt must not jump the queue
        waiter = Waiter(acquisition, self.loop.create_future())
        self.queue.append(waiter)
        self._kick()
        return await self._wait(waiter, deadline)

    async def _attempt(self, acquisition: Acquisition, ticket: str) -> int:
        """One try: the fencing token (> 0) when acquired, else minus the ms the lock may stay taken."""
        prepared: tuple[Any, ...]
        if ticket:
            prepared = (*self.script_key, acquisition.token, acquisition.lease_ms, ticket)
        else:
            prepared = (*self.script_key, acquisition.token, acquisition.lease_ms)
        return int(await self.scripts.acquire.run(prepared))

    async def _first_attempt(self, acquisition: Acquisition, blocking: bool, deadline: float) -> bool:
        # Without joining the Redis queue: a lock that is free costs the
        # shortest command; when it is busy, the contender joins.
        self.attempting = True
        sent = self.loop.time()
        try:
            fence = int(await self.scripts.acquire.run((*self.script_key, acquisition.token, acquisition.lease_ms)))
        except BaseException:
            # Cancelled or failed with the script maybe run: undo what it may have done.
            self.attempting = False
            self.runtime.spawn(self._withdraw(acquisition.token, "", acquisition.lease_ms))
            self._kick()
            raise
        self.attempting = False
        if fence > 0:
            acquisition.fence = fence
            acquisition.valid_until = sent + acquisition.lease
            self.holder = acquisition
            return True
        if not blocking:
            self._kick()
            return False
        waiter = Waiter(acquisition, self.loop.create_future())
        self.queue.appendleft(waiter)  # it came before anyone queued during the attempt
        self._kick()
        return await self._wait(waiter, deadline)

    async def _wait(self, waiter: Waiter, deadline: float) -> bool:
        if not math.isinf(deadline):
            waiter.timer = self.loop.call_at(deadline, self._expire, waiter)
        try:
            return await waiter.future
        except asyncio.CancelledError:
            if waiter.timer is not None:
                waiter.timer.cancel()
            if waiter.granted():
                # Handed over just as the cancellation landed: pass it on.
                self.runtime.spawn(self._release_quietly(waiter.acquisition))
            else:
                self._left()
            raise

    def _expire(self, waiter: Waiter) -> None:
        waiter.timer = None
        if not waiter.future.done():
            waiter.future.set_result(False)
            self._left()

    def _left(self) -> None:
        """A waiter gave up; stop waiting in Redis when it was the last one."""
        if self._head() is None and self.contender is not None and self.contender_blocked:
            self.contender.cancel()

    def _grant(self, waiter: Waiter, fence: int, sent: float) -> bool:
        if waiter.future.done():
            return False
        if waiter.timer is not None:
            waiter.timer.cancel()
            waiter.timer = None
        acquisition = waiter.acquisition
        acquisition.fence = fence
        acquisition.valid_until = sent + acquisition.lease
        self.holder = acquisition
        waiter.future.set_result(True)
        return True

    def _fail_waiters(self, error: BaseException) -> None:
        while (waiter := self._head()) is not None:
            if waiter.timer is not None:
                waiter.timer.cancel()
            waiter.future.set_exception(error)

    async def _contend(self, wait_ms: int | None) -> None:
        """Wait in Redis for the lock on behalf of the local queue, then grant it."""
        ticket = self.ticket
        in_flight = ""  # token of an attempt whose reply may be lost
        in_flight_ms = 0  # and its lease
        done = False
        try:
            while True:
                if wait_ms is not None:
                    if self._head() is None:
                        break
                    block = _POLL if wait_ms <= 0 else min(_POLL, max(wait_ms / 1000, _MIN_BLOCK))
                    self.contender_blocked = True
                    try:
                        await self.repository.blpop_async(self.keys.wake(ticket), block)
                    finally:
                        self.contender_blocked = False
                waiter = self._head()
                if waiter is None:
                    break
                sent = self.loop.time()
                in_flight, in_flight_ms = waiter.acquisition.token, waiter.acquisition.lease_ms
                fence = await self._attempt(waiter.acquisition, ticket)
                in_flight = ""
                if fence > 0:
                    done = True
                    self.contender = None
                    if not self._grant(waiter, fence, sent):
                        # Its task left meanwhile: pass the lock on, or free it.
                        self.handing_off = True
                        await self._hand_off(waiter.acquisition.token, None)
                    return
                wait_ms = -fence
        except CacheException as exc:
            self._fail_waiters(exc)
        finally:
            if self.contender is asyncio.current_task():
                self.contender = None
            if not done:
                if self.ticket == ticket:
                    self._retire_ticket()
                self.runtime.spawn(self._withdraw(in_flight, ticket, in_flight_ms))
                self._kick()

    async def _withdraw(self, token: str, ticket: str, lease_ms: int = 0) -> None:
        """Leave the Redis queue (``ticket``) and undo an acquisition whose answer was lost (``token``)."""
        if not token and not ticket:
            return
        try:
            if not token:
                await self.scripts.withdraw.run((*self.script_key, "", ticket))
                return
            # The acquisition may still reach Redis after this undo (a paused
            # server): it is refused for a lease, and the undo is sent again
            # until Redis answers it.
            prepared = (*self.script_key, token, ticket, lease_ms)
            await self.runtime.until_answered(
                lambda: self.scripts.withdraw.run(prepared), undo_horizon(lease_ms / 1000)
            )
        except CacheException as exc:
            _log.warning(
                "lock %r: could not undo an acquisition whose answer was lost (%s); if it reached Redis, "
                "the lock stays taken until its lease runs out",
                self.key,
                exc,
            )

    # -- releasing -------------------------------------------------------------------

    def release(self, acquisition: Acquisition) -> Awaitable[bool]:
        if self.holder is acquisition:
            self.holder = None
        self.handing_off = True
        if self.queue:
            return self._hand_off(acquisition.token, None)
        return self._free(acquisition.token)

    async def _free(self, token: str) -> bool:
        """:meth:`_hand_off` when nobody waits here: the common, shortest case."""
        try:
            status = int(await self.scripts.release.run((*self.script_key, token)))
        except asyncio.CancelledError:
            self.runtime.spawn(self._hand_off(token, None))
            raise
        except BaseException:
            self.handing_off = False
            self._kick()
            raise
        self.handing_off = False
        self._kick()  # tasks that queued here during the round trip get a contender
        return status != 0

    async def _release_quietly(self, acquisition: Acquisition) -> None:
        acquisition.released = True
        try:
            await self.release(acquisition)
        except CacheException as exc:
            _log.warning("lock %r: release after a cancellation failed (%s); the lease will expire", self.key, exc)

    async def _hand_off(self, token: str, nxt: Waiter | None, may_have_queued: bool = False) -> bool:
        """Give the lock held by ``token`` to the next local waiter, or free it.

        Returns whether ``token`` still held the lock (the first release's
        answer). Cancelled half-way, it finishes in the background: the
        release script answers the same when run again.
        """
        first = -2
        queued = False  # freed with this process put in the Redis queue behind another
        try:
            while True:
                if nxt is None and self.queue:
                    nxt = self._head()
                sent = self.loop.time()
                if nxt is None:
                    prepared: tuple[Any, ...] = (*self.script_key, token)
                else:
                    prepared = (*self.script_key, token, nxt.acquisition.token, nxt.acquisition.lease_ms, self.ticket)
                    may_have_queued = True
                # 0: the token did not hold the lock; -1: freed; > 0: handed over
                # to the next waiter, with that fencing token.
                status = int(await self.scripts.release.run(prepared))
                if first < -1:
                    first = status
                if status > 0 and nxt is not None:
                    may_have_queued = False  # a hand-over leaves the Redis queue
                    if self._grant(nxt, status, sent):
                        break
                    token, nxt = nxt.acquisition.token, None  # that waiter left: once more
                    continue
                queued = status == -1 and nxt is not None
                break
        except asyncio.CancelledError:
            self.runtime.spawn(self._hand_off(token, nxt, may_have_queued))
            raise
        except BaseException:
            self.handing_off = False
            self._kick()
            self._leave_queue_if_unused(may_have_queued)
            raise
        self.handing_off = False
        # When queued behind another process, wait for the wake-up at once.
        self._kick(-2 if queued else None)
        self._leave_queue_if_unused(may_have_queued)
        return first != 0

    def _leave_queue_if_unused(self, may_have_queued: bool) -> None:
        """A release queued this process for its waiters, who have all left since: leave."""
        if may_have_queued and self.contender is None and self.holder is None:
            self.runtime.spawn(self._withdraw("", self._retire_ticket()))
