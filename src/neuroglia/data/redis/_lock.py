"""DistributedLock: a Redis lease lock with fencing, renewal and fair hand-off.

The lock is the key ``key`` itself (under the repository's key prefix), holding
the random token of one acquisition and set with ``SET NX PX``. Release, extend
and ownership checks are Lua scripts that compare the token first (``lua/``),
so a holder can never delete or extend a lock that another holder took after
its lease expired.

Beside the lock key live a few companion keys:

``key:fencing``
    a counter incremented by every acquisition: the *fencing token*. It is the
    one companion that never expires; see :func:`fenced_set_async`.
``key:waiters``, ``key:alive``
    the fair queue of waiting processes (arrival order, heartbeats).
``key:wake:<id>``
    a list a release pushes to wake the process at the head of the queue, which
    waits for it with ``BLPOP`` (polling only as a fallback).

Inside one process the tasks waiting for the same key of the same repository
form a local first-come-first-served queue, and only the task at its head talks
to Redis: one blocking connection per contended key per process, however many
tasks wait. When a holder releases and another task of the same process waits,
the release script hands the lock straight to that task's token in the same
round trip, unless another process is queued ahead, in which case this process
goes to the back of the queue. Processes take turns; tasks take turns.

Ownership is per acquisition and per task, never per thread: two tasks sharing
one lock object hold separate acquisitions, and neither can release the
other's. See ``docs/locks.md`` for the guarantees and their limits.
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
import itertools
import logging
import math
import os
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from datetime import timedelta
from types import TracebackType
from typing import Any, Final, Self

from ._lua import lua_source as _lua
from ._repository import RedisRepository, Script
from .exceptions import (
    CacheException,
    InvalidArgumentError,
    LockError,
    LockLostError,
    LockNotOwnedError,
    LockTimeoutError,
)
from .metrics import CacheMetrics

__all__ = ["DistributedLock", "OnLost", "fenced_set_async"]

_log = logging.getLogger("neuroglia.data.redis.lock")

Key = str | bytes
Seconds = int | float | timedelta
OnLost = Callable[[LockLostError], object]
"""Called with a :class:`LockLostError` when a held lock is found lost; may be async."""

# A waiting process sleeps at most this long between two attempts: the fallback
# for a wake-up that never comes (a holder that crashed lets its lease expire).
_POLL: Final = 0.5
# (A queued process that has not refreshed its place for 3 s is skipped, so a
# crashed waiter cannot block the queue for longer: GRACE in lua/lock_queue.lua.)
_MIN_BLOCK: Final = 0.005


class _Unset:
    """Marker for "use the lock's own setting"."""


_UNSET: Final = _Unset()


class _Scripts:
    """The lock scripts, registered once per repository."""

    __slots__ = ("acquire", "extend", "fenced_set", "owned", "release", "withdraw")

    def __init__(self, repository: RedisRepository) -> None:
        queue = _lua("lock_queue")
        self.acquire: Script = repository.register_script(queue + _lua("lock_acquire"))
        self.release: Script = repository.register_script(queue + _lua("lock_release"))
        self.withdraw: Script = repository.register_script(queue + _lua("lock_withdraw"))
        self.extend: Script = repository.register_script(_lua("lock_extend"))
        self.owned: Script = repository.register_script(_lua("lock_owned"))
        self.fenced_set: Script = repository.register_script(_lua("fenced_set"))


class _PerRepository:
    """The lock state of one repository: its scripts and its keys' groups."""

    __slots__ = ("groups", "scripts")

    def __init__(self, repository: RedisRepository) -> None:
        self.scripts = _Scripts(repository)
        self.groups: dict[Key, _Group] = {}


def _state(repository: RedisRepository) -> _PerRepository:
    # Kept on the repository itself (not in a module-level mapping, whose
    # entries would keep every repository alive through their scripts).
    state: _PerRepository | None = repository._lock_state
    if state is None:
        state = repository._lock_state = _PerRepository(repository)
    return state


def _scripts(repository: RedisRepository) -> _Scripts:
    return _state(repository).scripts


# Idle groups stay registered (the next lock on the key reuses them) until
# there are this many groups; then the idle ones are dropped.
_MAX_GROUPS: Final = 256


# Fire-and-forget work (clean-ups after a cancellation, async on_lost
# callbacks) is referenced here until it finishes: the event loop itself only
# keeps weak references to tasks.
_background: set[asyncio.Future[Any]] = set()


def _spawn(work: Coroutine[Any, Any, Any] | asyncio.Future[Any]) -> asyncio.Future[Any]:
    future = asyncio.ensure_future(work)
    _background.add(future)
    future.add_done_callback(_background.discard)
    return future


# Tokens need to be unique, not secret (whoever can read the key sees it): a
# random prefix drawn once per process (again in a forked child), then a counter.
_token_prefix = os.urandom(8).hex()
_token_counter = itertools.count(1)


def _new_token_prefix() -> None:
    global _token_prefix
    _token_prefix = os.urandom(8).hex()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_token_prefix)


def _new_token() -> str:
    return f"{_token_prefix}{next(_token_counter):x}"


def _suffixed(key: Key, suffix: str) -> Key:
    return key + suffix.encode() if isinstance(key, bytes) else key + suffix


def _check_key(key: Any) -> Key:
    if not isinstance(key, str | bytes) or not key:
        raise InvalidArgumentError(f"a lock key must be a non-empty str or bytes, got {key!r}")
    return key


def _seconds(value: Any, what: str, *, allow_zero: bool = False, allow_inf: bool = False) -> float:
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise InvalidArgumentError(f"{what} must be a number of seconds or a timedelta, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero) or (math.isinf(value) and not allow_inf):
        raise InvalidArgumentError(f"{what} must be {'>= 0' if allow_zero else '> 0'} seconds, got {value!r}")
    return float(value)


def _milliseconds(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _current_task() -> asyncio.Task[Any]:
    task = asyncio.current_task()
    if task is None:
        raise LockError("a lock must be used from inside an asyncio task")
    return task


class _Acquisition:
    """One successful acquisition: its token, fencing token and lease.

    The fields that most acquisitions never change are class-level defaults,
    so that creating one (on every acquire) sets four attributes, not sixteen.
    """

    fence: int | None = None
    count = 1  # re-entries of a re-entrant lock, across lock objects
    valid_until = 0.0  # loop time after which the lease has run out
    lost = False
    released = False
    exiting = False  # __aexit__ has begun: never cancel the task any more
    cancelled_for_loss = False
    lock: LeaseLock | None = None  # set once acquired: whose watchdog renews it
    renew_at = math.inf  # loop time of the next renewal (inf: none)
    watch_at = math.inf  # when the watchdog's entry for it comes due (Redlock)
    group: _Group | None = None
    acquired_at = 0.0  # loop time when acquired (for the hold-time metric)

    def __init__(self, lease: float, lease_ms: int, task: asyncio.Task[Any]) -> None:
        self.token = _new_token()
        self.lease = lease
        self.lease_ms = lease_ms
        self.task = task


class _Hold:
    """How many times one lock object holds one acquisition for one task."""

    __slots__ = ("acquisition", "count")

    def __init__(self, acquisition: _Acquisition) -> None:
        self.acquisition = acquisition
        self.count = 0


# What each task holds, by resource, so that a second request for a lock the
# task already holds is caught even through another lock object.
_held_by_task: weakref.WeakKeyDictionary[asyncio.Task[Any], dict[Hashable, _Acquisition]] = weakref.WeakKeyDictionary()


class _Watchdog:
    """When the held leases of one event loop are due for renewal, behind one timer.

    It keeps at most one entry per *slot*: a lock key's group (whose current
    holder is the one to renew) or a lone acquisition (Redlock). An entry
    that comes due early looks at the slot again and goes back in the heap
    for the holder's own time, so acquiring and releasing a key over and
    over neither arms a timer nor leaves anything behind per acquisition.
    """

    # No reference to the loop is kept (the registry below is keyed by it,
    # weakly): it is always the running one when the watchdog is used.
    def __init__(self) -> None:
        # Weak references: an entry must not keep a lock's group (and with it
        # its repository and event loop) alive.
        self.heap: list[tuple[float, int, weakref.ref[_Group | _Acquisition]]] = []
        self.sequence = itertools.count()
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = math.inf

    def schedule(self, when: float, acquisition: _Acquisition) -> None:
        acquisition.renew_at = when
        slot: _Group | _Acquisition = acquisition.group or acquisition
        if slot.watch_at <= when:
            return  # the slot's entry comes due first and will look again
        self._push(when, slot)

    def _push(self, when: float, slot: _Group | _Acquisition) -> None:
        slot.watch_at = when
        heapq.heappush(self.heap, (when, next(self.sequence), weakref.ref(slot)))
        if when < self.timer_at:
            if self.timer is not None:
                self.timer.cancel()
            self.timer = asyncio.get_running_loop().call_at(when, self._fire)
            self.timer_at = when

    def _fire(self) -> None:
        self.timer, self.timer_at = None, math.inf
        heap = self.heap
        loop = asyncio.get_running_loop()
        now = loop.time()
        while heap and heap[0][0] <= now:
            when, _, ref = heapq.heappop(heap)
            slot = ref()
            if slot is None or slot.watch_at != when:
                continue  # gone, or superseded by an earlier entry
            slot.watch_at = math.inf
            acquisition = slot.holder if isinstance(slot, _Group) else slot
            if acquisition is None or acquisition.released or acquisition.lost or acquisition.lock is None:
                continue
            if acquisition.renew_at > now:
                if not math.isinf(acquisition.renew_at):
                    self._push(acquisition.renew_at, slot)
                continue
            try:
                acquisition.lock._renewal_due(acquisition)
            except Exception:  # one lock's failure must not stop the others' renewals
                _log.exception("lock %r: starting a renewal failed", acquisition.lock.key)
        if heap and self.timer is None:
            self.timer = loop.call_at(heap[0][0], self._fire)
            self.timer_at = heap[0][0]


_watchdogs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Watchdog] = weakref.WeakKeyDictionary()


def _watchdog() -> _Watchdog:
    loop = asyncio.get_running_loop()
    watchdog = _watchdogs.get(loop)
    if watchdog is None:
        watchdog = _watchdogs[loop] = _Watchdog()
    return watchdog


class LeaseLock:
    """What every lease lock of the library shares.

    Subclasses say how to acquire, release, extend and check one acquisition;
    this class does the rest: ownership per task, re-entry, the watchdog that
    renews the lease, loss detection and the ``async with`` protocol.
    """

    def __init__(
        self,
        key: Key,
        timeout: Seconds,
        *,
        wait_timeout: Seconds | None,
        auto_renew: bool,
        on_lost: OnLost | None,
        cancel_on_lost: bool,
        reentrant: bool,
    ) -> None:
        self._key = _check_key(key)
        self._lease = _seconds(timeout, "timeout")
        self._lease_ms = _milliseconds(self._lease)
        self._wait = (
            self._lease
            if wait_timeout is None
            else _seconds(wait_timeout, "wait_timeout", allow_zero=True, allow_inf=True)
        )
        if on_lost is not None and not callable(on_lost):
            raise InvalidArgumentError(f"on_lost must be callable, got {on_lost!r}")
        self._auto_renew = bool(auto_renew)
        self._on_lost = on_lost
        self._cancel_on_lost = bool(cancel_on_lost)
        self._reentrant = bool(reentrant)
        self._holds: dict[asyncio.Task[Any], _Hold] = {}

    # -- what subclasses provide -------------------------------------------------

    def _resource(self) -> Hashable:
        raise NotImplementedError

    # (Plain methods returning an awaitable, so that an implementation can
    # hand back its helper's coroutine without one more frame on a hot path.)
    def _do_acquire(self, acquisition: _Acquisition, blocking: bool, deadline: float) -> Awaitable[bool]:
        """Acquire by ``deadline`` (loop time); ``False`` when not acquired."""
        raise NotImplementedError

    def _do_release(self, acquisition: _Acquisition) -> Awaitable[bool]:
        """Release; ``False`` when the acquisition no longer held the lock."""
        raise NotImplementedError

    async def _do_extend(self, acquisition: _Acquisition, ms: int, mode: str) -> float:
        """Extend the lease; returns the seconds it is now valid for (0 when not owned)."""
        raise NotImplementedError

    async def _do_owned(self, acquisition: _Acquisition) -> float:
        """Seconds the lease is still valid for, 0 when not owned (-1: no expiry)."""
        raise NotImplementedError

    # -- settings ----------------------------------------------------------------

    @property
    def key(self) -> Key:
        """The lock key, relative to the repository's key prefix."""
        return self._key

    @property
    def timeout(self) -> float:
        """The lease in seconds."""
        return self._lease

    @property
    def wait_timeout(self) -> float:
        """How long :meth:`acquire` waits by default, in seconds."""
        return self._wait

    @property
    def auto_renew(self) -> bool:
        """Whether a watchdog renews the lease while the lock is held."""
        return self._auto_renew

    @property
    def reentrant(self) -> bool:
        """Whether a task may acquire the lock again while holding it (counted)."""
        return self._reentrant

    # -- state of the current task ---------------------------------------------

    def _current(self) -> _Acquisition | None:
        task = asyncio.current_task()
        hold = self._holds.get(task) if task is not None else None
        return hold.acquisition if hold is not None else None

    @property
    def held(self) -> bool:
        """Whether the current task holds this lock, as far as this process knows.

        No round trip: use :meth:`is_owned` to ask Redis.
        """
        acquisition = self._current()
        return acquisition is not None and not acquisition.lost

    @property
    def fencing_token(self) -> int | None:
        """The fencing token of the current task's acquisition, or ``None``.

        Strictly increasing per lock key: pass it to the store you protect (or
        use :meth:`fenced_set_async`) so that it refuses a stale holder's writes.
        """
        acquisition = self._current()
        return acquisition.fence if acquisition is not None else None

    @property
    def token(self) -> str | None:
        """The random token of the current task's acquisition, or ``None``."""
        acquisition = self._current()
        return acquisition.token if acquisition is not None else None

    @property
    def valid_for(self) -> float | None:
        """Seconds left of the current task's lease by this process' clock, or ``None``."""
        acquisition = self._current()
        if acquisition is None:
            return None
        return max(0.0, acquisition.valid_until - asyncio.get_running_loop().time())

    # -- acquire and release ---------------------------------------------------

    async def acquire(self, blocking: bool = True, wait_timeout: Seconds | _Unset | None = _UNSET) -> bool:
        """Acquire the lock for the current task.

        Waits up to ``wait_timeout`` seconds (the lock's own by default; ``None``
        means the lease; ``float("inf")`` waits for ever) and raises
        :class:`LockTimeoutError` when the lock did not come in time. With
        ``blocking=False`` it makes one attempt and returns ``False`` when the
        lock is taken. Returns ``True`` once held.

        A task asking again for a lock it holds gets :class:`LockError` at
        once, unless the lock is ``reentrant`` (then the holds are counted and
        the last release frees it).
        """
        task = asyncio.current_task()
        if task is None:
            raise LockError("a lock must be used from inside an asyncio task")
        existing = self._held_by(task)
        if existing is not None:
            if not self._reentrant:
                raise LockError(
                    f"lock {self._key!r} is already held by this task; re-acquiring it would deadlock "
                    "(pass reentrant=True to count re-entries)"
                )
            existing.count += 1
            self._add_hold(task, existing)
            return True
        if isinstance(wait_timeout, _Unset):
            wait = self._wait
        elif wait_timeout is None:
            wait = self._lease
        else:
            wait = _seconds(wait_timeout, "wait_timeout", allow_zero=True, allow_inf=True)
        loop = asyncio.get_running_loop()
        acquisition = _Acquisition(self._lease, self._lease_ms, task)
        started = loop.time()
        ok = await self._do_acquire(acquisition, blocking and wait > 0, started + wait)
        acquisition.acquired_at = loop.time()
        metrics = self._lock_metrics()
        if metrics is not None:
            metrics.record_lock_wait(acquisition.acquired_at - started, acquired=ok)
        if not ok:
            if blocking:
                raise LockTimeoutError(f"lock {self._key!r} was not acquired within {wait:g} s")
            return False
        acquisition.lock = self
        self._note_held(task, acquisition)
        self._add_hold(task, acquisition)
        if self._auto_renew:
            self._schedule_renewal(acquisition, acquisition.acquired_at + acquisition.lease / 3)
        return True

    def _held_by(self, task: asyncio.Task[Any]) -> _Acquisition | None:
        """The acquisition through which ``task`` holds this lock's resource, if any."""
        held = _held_by_task.get(task)
        return held.get(self._resource()) if held is not None else None

    def _note_held(self, task: asyncio.Task[Any], acquisition: _Acquisition) -> None:
        _held_by_task.setdefault(task, {})[self._resource()] = acquisition

    def _note_released(self, acquisition: _Acquisition) -> None:
        held = _held_by_task.get(acquisition.task)
        resource = self._resource()
        if held is not None and held.get(resource) is acquisition:
            del held[resource]

    def _add_hold(self, task: asyncio.Task[Any], acquisition: _Acquisition) -> None:
        hold = self._holds.get(task)
        if hold is None:
            hold = self._holds[task] = _Hold(acquisition)
        hold.count += 1

    def _take_hold(self, task: asyncio.Task[Any]) -> _Acquisition | None:
        """Drop one hold of the task; returns the acquisition when that freed it."""
        hold = self._holds.get(task)
        if hold is None:
            return None
        hold.count -= 1
        if hold.count == 0:
            del self._holds[task]
        acquisition = hold.acquisition
        acquisition.count -= 1
        return acquisition

    async def release(self) -> None:
        """Release the current task's hold.

        Raises :class:`LockNotOwnedError` when the task does not hold the lock,
        or when its lease had expired (or the key was taken) before the release.
        Redis being unreachable raises a
        :class:`~neuroglia.data.redis.CacheUnavailableError`.
        """
        task = _current_task()
        if task not in self._holds:
            raise LockNotOwnedError(f"lock {self._key!r} is not held by this task")
        acquisition = self._take_hold(task)
        if acquisition is None or acquisition.count > 0:
            return
        if not await self._begin_release(acquisition):
            self._released_unowned(acquisition)
            raise LockNotOwnedError(f"lock {self._key!r} had been lost before it was released")

    def _lock_metrics(self) -> CacheMetrics | None:
        """Where lock waits and hold times are recorded (``None``: nowhere)."""
        return None

    async def _release(self, acquisition: _Acquisition) -> bool:
        owned = await self._begin_release(acquisition)
        if not owned:
            self._released_unowned(acquisition)
        return owned

    def _begin_release(self, acquisition: _Acquisition) -> Awaitable[bool]:
        """Mark the acquisition released and send the release (awaited by the caller)."""
        acquisition.released = True
        metrics = self._lock_metrics()
        if metrics is not None:
            metrics.record_lock_hold(asyncio.get_running_loop().time() - acquisition.acquired_at)
        self._stop_watchdog(acquisition)
        self._note_released(acquisition)
        return self._do_release(acquisition)

    def _released_unowned(self, acquisition: _Acquisition) -> None:
        self._lost(acquisition, "its lease had expired, or the key was deleted or taken, before the release")

    async def extend(self, seconds: Seconds | None = None, *, replace_ttl: bool = False) -> float:
        """Lengthen the current task's lease; returns the seconds it now has left.

        Adds ``seconds`` (the lease by default) to the time left, or with
        ``replace_ttl=True`` sets the time left to ``seconds``. Raises
        :class:`LockNotOwnedError` when the lock is no longer held.
        """
        acquisition = self._current()
        if acquisition is None:
            raise LockNotOwnedError(f"lock {self._key!r} is not held by this task")
        if acquisition.lost:
            raise LockNotOwnedError(f"lock {self._key!r} was lost")
        ms = acquisition.lease_ms if seconds is None else _milliseconds(_seconds(seconds, "seconds"))
        loop = asyncio.get_running_loop()
        sent = loop.time()
        left = await self._do_extend(acquisition, ms, "set" if replace_ttl else "add")
        if left <= 0:
            self._lost(acquisition, "its lease had expired, or the key was deleted or taken")
            raise LockNotOwnedError(f"lock {self._key!r} is no longer held: it cannot be extended")
        acquisition.valid_until = sent + left
        return left

    async def is_owned(self) -> bool:
        """Ask Redis whether the current task still holds the lock."""
        acquisition = self._current()
        if acquisition is None or acquisition.lost:
            return False
        sent = asyncio.get_running_loop().time()
        left = await self._do_owned(acquisition)
        if left == 0:
            self._lost(acquisition, "its lease had expired, or the key was deleted or taken")
            return False
        if left > 0:
            acquisition.valid_until = sent + left
        return True

    async def __aenter__(self) -> Self:
        await self.acquire()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        task = _current_task()
        if task not in self._holds:
            return  # released inside the block
        acquisition = self._holds[task].acquisition
        acquisition.exiting = True
        cancelled = exc_type is not None and issubclass(exc_type, asyncio.CancelledError)
        if acquisition.cancelled_for_loss and not cancelled:
            # The cancellation requested on loss has not reached the block (it
            # was about to end): take it here rather than inside the release.
            try:
                await asyncio.sleep(0)
            except asyncio.CancelledError:
                cancelled = True
        cause = exc
        freed = self._take_hold(task)
        if freed is not None and freed.count == 0:
            try:
                owned = await self._release(freed)
            except CacheException as release_error:
                if acquisition.lost:
                    # Lost first (Redis unreachable past the lease): that is the news.
                    owned = False
                    cause = cause or release_error
                elif not cancelled:
                    raise
                else:
                    # Cancelled and Redis unreachable: the lease will expire on its own.
                    _log.warning("lock %r: release failed during cancellation (%s)", self._key, release_error)
                    owned = True
            lost = acquisition.lost or not owned
        else:
            lost = acquisition.lost
        message = f"lock {self._key!r} (fencing token {acquisition.fence}) was lost while held"
        if acquisition.cancelled_for_loss:
            acquisition.cancelled_for_loss = False
            if task.uncancel() > 0 and cancelled:
                return  # also cancelled from elsewhere: let that cancellation go on
            raise LockLostError(message) from cause
        if lost and not cancelled:
            raise LockLostError(message) from cause

    # -- watchdog and loss ---------------------------------------------------------

    def _schedule_renewal(self, acquisition: _Acquisition, when: float) -> None:
        group = acquisition.group
        if group is not None:
            watchdog = group.watchdog
            if watchdog is None:
                watchdog = group.watchdog = _watchdog()
        else:
            watchdog = _watchdog()
        watchdog.schedule(when, acquisition)

    def _stop_watchdog(self, acquisition: _Acquisition) -> None:
        acquisition.renew_at = math.inf  # its watchdog entry, if any, will find nothing to do

    def _renewal_due(self, acquisition: _Acquisition) -> None:
        if acquisition.released or acquisition.lost:
            return
        if acquisition.task.done():
            _spawn(self._abandoned(acquisition))
            return
        _spawn(self._renew(acquisition))

    async def _renew(self, acquisition: _Acquisition) -> None:
        loop = asyncio.get_running_loop()
        sent = loop.time()
        try:
            left = await self._do_extend(acquisition, acquisition.lease_ms, "renew")
        except CacheException as exc:
            if acquisition.released or acquisition.lost:
                return
            now = loop.time()
            if now >= acquisition.valid_until:
                self._lost(acquisition, f"Redis could not renew the lease before it ran out ({exc})")
            else:
                self._schedule_renewal(
                    acquisition, min(now + max(acquisition.lease / 10, 0.01), acquisition.valid_until)
                )
            return
        if acquisition.released or acquisition.lost:
            return
        if left <= 0:
            self._lost(acquisition, "its lease expired (or the key was deleted or taken) while it was held")
            return
        if left > 0:
            acquisition.valid_until = sent + left
        self._schedule_renewal(acquisition, sent + acquisition.lease / 3)

    async def _abandoned(self, acquisition: _Acquisition) -> None:
        """The task that acquired the lock ended without releasing it: release it."""
        _log.warning("lock %r: the task holding it ended without releasing it; releasing", self._key)
        self._holds.pop(acquisition.task, None)
        acquisition.count = 0
        try:
            await self._release(acquisition)
        except CacheException as exc:
            _log.warning("lock %r: could not release an abandoned lock (%s); its lease will expire", self._key, exc)

    def _lost(self, acquisition: _Acquisition, reason: str) -> None:
        """Record that the acquisition no longer holds the lock, and tell the holder."""
        if acquisition.lost:
            return
        acquisition.lost = True
        self._stop_watchdog(acquisition)
        error = LockLostError(f"lock {self._key!r} (fencing token {acquisition.fence}) was lost: {reason}")
        _log.warning("%s", error)
        if self._on_lost is not None:
            try:
                outcome = self._on_lost(error)
            except Exception:
                _log.exception("lock %r: the on_lost callback failed", self._key)
            else:
                if inspect.isawaitable(outcome):
                    _spawn(self._await_callback(outcome))
        task = acquisition.task
        if self._cancel_on_lost and not acquisition.released and not acquisition.exiting and not task.done():
            acquisition.cancelled_for_loss = True
            task.cancel(f"lock {self._key!r} was lost")

    async def _await_callback(self, outcome: Any) -> None:
        try:
            await outcome
        except Exception:
            _log.exception("lock %r: the on_lost callback failed", self._key)


class _Waiter:
    """A task of this process waiting for the lock; its future says how it ended."""

    __slots__ = ("acquisition", "future", "timer")

    def __init__(self, acquisition: _Acquisition, future: asyncio.Future[bool]) -> None:
        self.acquisition = acquisition
        self.future = future  # True: granted; False: timed out; an exception: Redis failed
        self.timer: asyncio.TimerHandle | None = None

    def granted(self) -> bool:
        f = self.future
        return f.done() and not f.cancelled() and f.exception() is None and f.result()


class _Group:
    """What this process knows and does about one lock key of one repository.

    At most one of these is active at a time: a task of this process holds
    the lock (``holder``); a first attempt is in flight (``attempting``); a
    release or hand-off is in flight (``handing_off``); or the lock is held
    elsewhere and the contender task waits for it on behalf of the local
    queue (``contender``).
    """

    def __init__(self, repository: RedisRepository, key: Key, state: _PerRepository) -> None:
        self.repository = repository
        self.key = key
        # Script calls of this key start with (number of keys, the prefixed
        # key; the scripts name the companion keys after it): made once, then
        # each call only adds its arguments.
        self.script_key = (1, repository._key(key))
        self.scripts = state.scripts
        self.loop = asyncio.get_running_loop()
        self.ticket = _new_token()  # this process' id in the Redis queue
        self.holder: _Acquisition | None = None
        self.queue: deque[_Waiter] = deque()
        self.attempting = False
        self.handing_off = False
        self.contender: asyncio.Task[None] | None = None
        self.contender_blocked = False
        self.watch_at = math.inf  # when the watchdog's entry for this key comes due
        self.watchdog: _Watchdog | None = None  # this loop's, once a holder is renewed

    # -- local queue ---------------------------------------------------------------

    def _head(self) -> _Waiter | None:
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
        old, self.ticket = self.ticket, _new_token()
        return old

    # -- acquiring -------------------------------------------------------------------

    def acquire(self, acquisition: _Acquisition, blocking: bool, deadline: float) -> Awaitable[bool]:
        acquisition.group = self
        if self.idle():
            return self._first_attempt(acquisition, blocking, deadline)
        return self._queue(acquisition, blocking, deadline)

    async def _queue(self, acquisition: _Acquisition, blocking: bool, deadline: float) -> bool:
        if not blocking:
            return False  # held or awaited here: a single attempt must not jump the queue
        waiter = _Waiter(acquisition, self.loop.create_future())
        self.queue.append(waiter)
        self._kick()
        return await self._wait(waiter, deadline)

    async def _attempt(self, acquisition: _Acquisition, ticket: str) -> int:
        """One try: the fencing token (> 0) when acquired, else minus the ms the lock may stay taken."""
        prepared: tuple[Any, ...]
        if ticket:
            prepared = (*self.script_key, acquisition.token, acquisition.lease_ms, ticket)
        else:
            prepared = (*self.script_key, acquisition.token, acquisition.lease_ms)
        return int(await self.scripts.acquire._run(prepared))

    async def _first_attempt(self, acquisition: _Acquisition, blocking: bool, deadline: float) -> bool:
        # Without joining the Redis queue: a lock that is free costs the
        # shortest command; when it is busy, the contender joins.
        self.attempting = True
        sent = self.loop.time()
        try:
            fence = int(await self.scripts.acquire._run((*self.script_key, acquisition.token, acquisition.lease_ms)))
        except BaseException:
            # Cancelled or failed with the script maybe run: undo what it may have done.
            self.attempting = False
            _spawn(self._withdraw(acquisition.token, ""))
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
        waiter = _Waiter(acquisition, self.loop.create_future())
        self.queue.appendleft(waiter)  # it came before anyone queued during the attempt
        self._kick()
        return await self._wait(waiter, deadline)

    async def _wait(self, waiter: _Waiter, deadline: float) -> bool:
        if not math.isinf(deadline):
            waiter.timer = self.loop.call_at(deadline, self._expire, waiter)
        try:
            return await waiter.future
        except asyncio.CancelledError:
            if waiter.timer is not None:
                waiter.timer.cancel()
            if waiter.granted():
                # Handed over just as the cancellation landed: pass it on.
                _spawn(self._release_quietly(waiter.acquisition))
            else:
                self._left()
            raise

    def _expire(self, waiter: _Waiter) -> None:
        waiter.timer = None
        if not waiter.future.done():
            waiter.future.set_result(False)
            self._left()

    def _left(self) -> None:
        """A waiter gave up; stop waiting in Redis when it was the last one."""
        if self._head() is None and self.contender is not None and self.contender_blocked:
            self.contender.cancel()

    def _grant(self, waiter: _Waiter, fence: int, sent: float) -> bool:
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
        done = False
        try:
            while True:
                if wait_ms is not None:
                    if self._head() is None:
                        break
                    block = _POLL if wait_ms <= 0 else min(_POLL, max(wait_ms / 1000, _MIN_BLOCK))
                    self.contender_blocked = True
                    try:
                        await self.repository.blpop_async(_suffixed(self.key, ":wake:" + ticket), block)
                    finally:
                        self.contender_blocked = False
                waiter = self._head()
                if waiter is None:
                    break
                sent = self.loop.time()
                in_flight = waiter.acquisition.token
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
                _spawn(self._withdraw(in_flight, ticket))
                self._kick()

    async def _withdraw(self, token: str, ticket: str) -> None:
        if not token and not ticket:
            return
        try:
            await self.scripts.withdraw._run((*self.script_key, token, ticket))
        except CacheException as exc:
            _log.debug("lock %r: clean-up after a cancelled wait failed (%s)", self.key, exc)

    # -- releasing -------------------------------------------------------------------

    def release(self, acquisition: _Acquisition) -> Awaitable[bool]:
        if self.holder is acquisition:
            self.holder = None
        self.handing_off = True
        if self.queue:
            return self._hand_off(acquisition.token, None)
        return self._free(acquisition.token)

    async def _free(self, token: str) -> bool:
        """:meth:`_hand_off` when nobody waits here: the common, shortest case."""
        try:
            status = int(await self.scripts.release._run((*self.script_key, token)))
        except asyncio.CancelledError:
            _spawn(self._hand_off(token, None))
            raise
        except BaseException:
            self.handing_off = False
            self._kick()
            raise
        self.handing_off = False
        self._kick()  # tasks that queued here during the round trip get a contender
        return status != 0

    async def _release_quietly(self, acquisition: _Acquisition) -> None:
        acquisition.released = True
        try:
            await self.release(acquisition)
        except CacheException as exc:
            _log.warning("lock %r: release after a cancellation failed (%s); the lease will expire", self.key, exc)

    async def _hand_off(self, token: str, nxt: _Waiter | None, may_have_queued: bool = False) -> bool:
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
                status = int(await self.scripts.release._run(prepared))
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
            _spawn(self._hand_off(token, nxt, may_have_queued))
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
            _spawn(self._withdraw("", self._retire_ticket()))


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
        self._state = _state(repository)
        self._scripts = self._state.scripts
        self._registry = self._state.groups

    @property
    def repository(self) -> RedisRepository:
        """The repository the lock lives in."""
        return self._repository

    def _resource(self) -> Hashable:
        return ("lock", self._repository, self._key)

    def _group(self) -> _Group:
        """This process' group for the key (one per repository, key and event loop)."""
        loop = asyncio.get_running_loop()
        groups = self._registry
        group = groups.get(self._key)
        if group is None or group.loop is not loop:
            if len(groups) >= _MAX_GROUPS:
                for key in [k for k, g in groups.items() if g.loop.is_closed() or g.idle()]:
                    del groups[key]
            group = groups[self._key] = _Group(self._repository, self._key, self._state)
        return group

    # Who holds the key in this process is the group's business: it sees
    # every lock object of the repository and key.
    def _held_by(self, task: asyncio.Task[Any]) -> _Acquisition | None:
        group = self._registry.get(self._key)
        holder = group.holder if group is not None else None
        return holder if holder is not None and holder.task is task else None

    def _note_held(self, task: asyncio.Task[Any], acquisition: _Acquisition) -> None:
        pass

    def _note_released(self, acquisition: _Acquisition) -> None:
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

    def _do_acquire(self, acquisition: _Acquisition, blocking: bool, deadline: float) -> Awaitable[bool]:
        return self._group().acquire(acquisition, blocking, deadline)

    def _do_release(self, acquisition: _Acquisition) -> Awaitable[bool]:
        return (acquisition.group or self._group()).release(acquisition)

    async def _do_extend(self, acquisition: _Acquisition, ms: int, mode: str) -> float:
        left = await self._scripts.extend(keys=(self._key,), args=(acquisition.token, ms, mode))
        return int(left) / 1000

    async def _do_owned(self, acquisition: _Acquisition) -> float:
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

    The highest token accepted so far is kept at ``<key>:fencing`` (it never
    expires); a write carrying a lower token is refused and returns ``False``,
    so a holder that lost its lock during a pause cannot overwrite the work of
    the holder that came after it. Returns ``True`` when written. Use the
    tokens of one lock key for a given ``key``.
    """
    if isinstance(fencing_token, bool) or not isinstance(fencing_token, int) or fencing_token < 1:
        raise InvalidArgumentError(f"fencing_token must be a positive int, got {fencing_token!r}")
    ms = 0 if expiration is None else _milliseconds(_seconds(expiration, "expiration"))
    reply = await _scripts(repository).fenced_set(
        keys=(_check_key(key), _suffixed(key, ":fencing")), args=(fencing_token, value, ms)
    )
    return int(reply) == 1
