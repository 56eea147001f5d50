"""The lease lock: what every lock of the library shares, whatever holds the lease.

:class:`LeaseLock` does ownership per task and per acquisition, re-entry,
the ``async with`` protocol, renewal by the watchdog and loss detection;
subclasses (:class:`~neuroglia.data.redis.DistributedLock`,
:class:`~neuroglia.data.redis.Redlock`) say how one acquisition is taken,
released, extended and checked on Redis.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
from collections.abc import Awaitable, Callable, Hashable
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

from ..exceptions import (
    CacheException,
    CacheUnavailableError,
    InvalidArgumentError,
    LockError,
    LockLostError,
    LockNotOwnedError,
    LockOutageError,
    LockTimeoutError,
)
from ..observability.metrics import CacheMetrics
from .keyspace import check_lock_name

if TYPE_CHECKING:
    from .queue import Group
    from .runtime import LockRuntime

__all__ = [
    "Acquisition",
    "Key",
    "LeaseLock",
    "OnLost",
    "Seconds",
    "check_key",
    "to_milliseconds",
    "to_seconds",
    "undo_horizon",
]

_log = logging.getLogger("neuroglia.data.redis.lock")

Key = str | bytes
Seconds = int | float | timedelta
OnLost = Callable[[LockLostError], object]
"""Called with a :class:`LockLostError` when a held lock is found lost; may be async."""


class _Unset:
    """Marker for "use the lock's own setting"."""


_UNSET: Final = _Unset()


def check_key(key: Any) -> Key:
    if not isinstance(key, str | bytes) or not key:
        raise InvalidArgumentError(f"a lock key must be a non-empty str or bytes, got {key!r}")
    check_lock_name(key)
    return key


def to_seconds(value: Any, what: str, *, allow_zero: bool = False, allow_inf: bool = False) -> float:
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise InvalidArgumentError(f"{what} must be a number of seconds or a timedelta, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero) or (math.isinf(value) and not allow_inf):
        raise InvalidArgumentError(f"{what} must be {'>= 0' if allow_zero else '> 0'} seconds, got {value!r}")
    return float(value)


def to_milliseconds(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def undo_horizon(lease: float) -> float:
    """How long to keep sending the undo of an acquisition whose answer was lost (seconds).

    Two leases, and at least ten seconds: long enough to outlast the pauses
    and restarts a lease is meant to ride out.
    """
    return max(2 * lease, 10.0)


def _current_task() -> asyncio.Task[Any]:
    task = asyncio.current_task()
    if task is None:
        raise LockError("a lock must be used from inside an asyncio task")
    return task


class Acquisition:
    """One successful acquisition: its token, fencing token and lease.

    The fields that most acquisitions never change are class-level defaults,
    so that creating one (on every acquire) sets four attributes, not sixteen.
    """

    fence: int | None = None
    count = 1  # re-entries of a re-entrant lock, across lock objects
    valid_until = 0.0  # loop time after which the lease has run out
    lost = False
    outage: CacheUnavailableError | None = None  # the outage that cost the lease, if one did
    released = False
    exiting = False  # __aexit__ has begun: never cancel the task any more
    cancelled_for_loss = False
    lock: LeaseLock | None = None  # set once acquired: whose watchdog renews it
    renew_at = math.inf  # loop time of the next renewal (inf: none)
    watch_at = math.inf  # when the watchdog's entry for it comes due (Redlock)
    group: Group | None = None
    acquired_at = 0.0  # loop time when acquired (for the hold-time metric)

    def __init__(self, lease: float, lease_ms: int, task: asyncio.Task[Any], token: str) -> None:
        self.token = token
        self.lease = lease
        self.lease_ms = lease_ms
        self.task = task

    def renewable(self) -> Acquisition | None:
        """What the watchdog renews for this slot (a lone acquisition: itself)."""
        return self


class _Hold:
    """How many times one lock object holds one acquisition for one task."""

    __slots__ = ("acquisition", "count")

    def __init__(self, acquisition: Acquisition) -> None:
        self.acquisition = acquisition
        self.count = 0


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
        self._key = check_key(key)
        self._lease = to_seconds(timeout, "timeout")
        self._lease_ms = to_milliseconds(self._lease)
        self._wait = (
            self._lease
            if wait_timeout is None
            else to_seconds(wait_timeout, "wait_timeout", allow_zero=True, allow_inf=True)
        )
        if on_lost is not None and not callable(on_lost):
            raise InvalidArgumentError(f"on_lost must be callable, got {on_lost!r}")
        self._auto_renew = bool(auto_renew)
        self._on_lost = on_lost
        self._cancel_on_lost = bool(cancel_on_lost)
        self._reentrant = bool(reentrant)
        self._holds: dict[asyncio.Task[Any], _Hold] = {}

    # -- what subclasses provide -------------------------------------------------

    @property
    def _runtime(self) -> LockRuntime:
        """The runtime (tokens, watchdogs, background work) of the repository the lock lives in."""
        raise NotImplementedError

    def _resource(self) -> Hashable:
        raise NotImplementedError

    # (Plain methods returning an awaitable, so that an implementation can
    # hand back its helper's coroutine without one more frame on a hot path.)
    def _do_acquire(self, acquisition: Acquisition, blocking: bool, deadline: float) -> Awaitable[bool]:
        """Acquire by ``deadline`` (loop time); ``False`` when not acquired."""
        raise NotImplementedError

    def _do_release(self, acquisition: Acquisition) -> Awaitable[bool]:
        """Release; ``False`` when the acquisition no longer held the lock."""
        raise NotImplementedError

    async def _do_extend(self, acquisition: Acquisition, ms: int, mode: str) -> float:
        """Extend the lease; returns the seconds it is now valid for (0 when not owned)."""
        raise NotImplementedError

    async def _do_owned(self, acquisition: Acquisition) -> float:
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

    def _current(self) -> Acquisition | None:
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
            wait = to_seconds(wait_timeout, "wait_timeout", allow_zero=True, allow_inf=True)
        loop = asyncio.get_running_loop()
        acquisition = Acquisition(self._lease, self._lease_ms, task, self._runtime.new_token())
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

    def _held_by(self, task: asyncio.Task[Any]) -> Acquisition | None:
        """The acquisition through which ``task`` holds this lock's resource, if any."""
        held = self._runtime.held_by_task.get(task)
        return held.get(self._resource()) if held is not None else None

    def _note_held(self, task: asyncio.Task[Any], acquisition: Acquisition) -> None:
        self._runtime.held_by_task.setdefault(task, {})[self._resource()] = acquisition

    def _note_released(self, acquisition: Acquisition) -> None:
        held = self._runtime.held_by_task.get(acquisition.task)
        resource = self._resource()
        if held is not None and held.get(resource) is acquisition:
            del held[resource]

    def _add_hold(self, task: asyncio.Task[Any], acquisition: Acquisition) -> None:
        hold = self._holds.get(task)
        if hold is None:
            hold = self._holds[task] = _Hold(acquisition)
        hold.count += 1

    def _take_hold(self, task: asyncio.Task[Any]) -> Acquisition | None:
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

    async def _release(self, acquisition: Acquisition) -> bool:
        owned = await self._begin_release(acquisition)
        if not owned:
            self._released_unowned(acquisition)
        return owned

    def _begin_release(self, acquisition: Acquisition) -> Awaitable[bool]:
        """Mark the acquisition released and send the release (awaited by the caller)."""
        acquisition.released = True
        metrics = self._lock_metrics()
        if metrics is not None:
            metrics.record_lock_hold(asyncio.get_running_loop().time() - acquisition.acquired_at)
        self._stop_watchdog(acquisition)
        self._note_released(acquisition)
        return self._do_release(acquisition)

    def _released_unowned(self, acquisition: Acquisition) -> None:
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
        ms = acquisition.lease_ms if seconds is None else to_milliseconds(to_seconds(seconds, "seconds"))
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
        if acquisition.cancelled_for_loss:
            acquisition.cancelled_for_loss = False
            if task.uncancel() > 0 and cancelled:
                return  # also cancelled from elsewhere: let that cancellation go on
            raise self._lost_error(acquisition, exc, cause) from cause
        if lost and not cancelled:
            raise self._lost_error(acquisition, exc, cause) from cause

    def _lost_error(
        self, acquisition: Acquisition, raised: BaseException | None, cause: BaseException | None
    ) -> LockLostError:
        """The error a block that lost its lock ends with.

        A :class:`LockOutageError` (also a ``CacheUnavailableError``) when an
        outage is involved: it cost the lease, the block itself ended with
        one, or the release at the end met one. A handler for outages around
        the block then sees it.
        """
        message = f"lock {self._key!r} (fencing token {acquisition.fence}) was lost while held"
        outage = acquisition.outage
        for candidate in (raised, cause):
            if outage is None and isinstance(candidate, CacheUnavailableError):
                outage = candidate
        if outage is None:
            return LockLostError(message)
        return LockOutageError(f"{message}: Redis was unavailable ({outage})", outage=outage)

    # -- watchdog and loss ---------------------------------------------------------

    def _schedule_renewal(self, acquisition: Acquisition, when: float) -> None:
        group = acquisition.group
        if group is not None:
            watchdog = group.watchdog
            if watchdog is None:
                watchdog = group.watchdog = self._runtime.watchdog()
        else:
            watchdog = self._runtime.watchdog()
        watchdog.schedule(when, acquisition)

    def _stop_watchdog(self, acquisition: Acquisition) -> None:
        acquisition.renew_at = math.inf  # its watchdog entry, if any, will find nothing to do

    def _renewal_due(self, acquisition: Acquisition) -> None:
        if acquisition.released or acquisition.lost:
            return
        if acquisition.task.done():
            self._runtime.spawn(self._abandoned(acquisition))
            return
        self._runtime.spawn(self._renew(acquisition))

    async def _renew(self, acquisition: Acquisition) -> None:
        loop = asyncio.get_running_loop()
        sent = loop.time()
        try:
            left = await self._do_extend(acquisition, acquisition.lease_ms, "renew")
        except CacheException as exc:
            if acquisition.released or acquisition.lost:
                return
            now = loop.time()
            if now >= acquisition.valid_until:
                if isinstance(exc, CacheUnavailableError):
                    acquisition.outage = exc
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

    async def _abandoned(self, acquisition: Acquisition) -> None:
        """The task that acquired the lock ended without releasing it: release it."""
        _log.warning("lock %r: the task holding it ended without releasing it; releasing", self._key)
        self._holds.pop(acquisition.task, None)
        acquisition.count = 0
        try:
            await self._release(acquisition)
        except CacheException as exc:
            _log.warning("lock %r: could not release an abandoned lock (%s); its lease will expire", self._key, exc)

    def _lost(self, acquisition: Acquisition, reason: str) -> None:
        """Record that the acquisition no longer holds the lock, and tell the holder."""
        if acquisition.lost:
            return
        acquisition.lost = True
        self._stop_watchdog(acquisition)
        message = f"lock {self._key!r} (fencing token {acquisition.fence}) was lost: {reason}"
        outage = acquisition.outage
        error = LockLostError(message) if outage is None else LockOutageError(message, outage=outage)
        _log.warning("%s", error)
        if self._on_lost is not None:
            try:
                outcome = self._on_lost(error)
            except Exception:
                _log.exception("lock %r: the on_lost callback failed", self._key)
            else:
                if inspect.isawaitable(outcome):
                    self._runtime.spawn(self._await_callback(outcome))
        task = acquisition.task
        if self._cancel_on_lost and not acquisition.released and not acquisition.exiting and not task.done():
            acquisition.cancelled_for_loss = True
            task.cancel(f"lock {self._key!r} was lost")

    async def _await_callback(self, outcome: Any) -> None:
        try:
            await outcome
        except Exception:
            _log.exception("lock %r: the on_lost callback failed", self._key)
