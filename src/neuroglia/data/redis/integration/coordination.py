"""LeaseCoordinationBackend: the framework's ``CoordinationBackend`` on the library's lease lock.

``neuroglia.coordination.LeaderElection`` asks its backend to acquire, renew
and release a lease named ``leases:<lease_name>`` for its ``identity``. The
framework's own ``RedisCoordinationBackend`` does that with ``SET NX`` and
``EXPIRE`` on a separate ``redis.asyncio`` client. This backend does it with
:class:`~neuroglia.data.redis.DistributedLock`, so a lease gets what the
library's locks have:

* a random token per acquisition, and renewal and release that are checked
  against it by Lua scripts, sent through the repository's one execute path
  (its circuit breaker, deadline, retry rules and metrics);
* a *fencing token* per acquisition, strictly increasing per lease, that the
  leader reads (:meth:`LeaseCoordinationBackend.fencing_token`) and passes
  to the store it protects (:meth:`LeaseCoordinationBackend.fenced_set_async`);
* loss detection: the lease is renewed every third of its time to live
  (``auto_renew``), a renewal that finds the lease gone marks it lost at once
  (``on_lost`` is called), and a lease whose time has run out by this
  process's monotonic clock is not held any more, whatever the last renewal
  said.

So a leader that was paused past its lease (a stopped process, a long
garbage collection, a blocked event loop) does not go on acting: on waking,
:meth:`LeaseCoordinationBackend.is_held` is false before any round trip, its
next renewal reports the loss, ``LeaderElection`` calls
``on_stopped_leading``, and a write it had already started when it was
paused is refused by the fencing token of the leader that came after it.
:class:`Leadership` gathers those checks for one ``LeaderElection``.

A lease belongs to this backend object (its token is known only here):
renewing or releasing a lease that another process, or another backend
object, acquired for the same identity returns ``False``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

from ..config.topology import has_hash_tag, hash_slot
from ..core import Script
from ..exceptions import CacheException, InvalidArgumentError, LockLostError, LockNotOwnedError
from ..locks import DistributedLock, fenced_set_async
from ..locks.keyspace import slot_tag
from ..repository import RedisRepository
from ._framework import CoordinationBackend
from ._scripts import lua_source

if TYPE_CHECKING:
    from ._framework import LeaderElection

__all__ = ["Leadership", "LeaseCoordinationBackend", "OnLeaseLost"]

_log = logging.getLogger("neuroglia.data.redis.coordination")

OnLeaseLost = Callable[[str, str, LockLostError], object]
"""Called with the lease key, the holder identity and a :class:`LockLostError`; may be async."""

_HOLDER_SUFFIX: Final = ":holder"
# A renewal that Redis could not answer is tried again after this share of
# the time to live (at least 50 ms), until the lease runs out.
_RETRY_SHARE: Final = 0.1

Request = tuple[Literal["renew", "release", "check"], float, asyncio.Future[bool]]


def _check_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError(f"{what} must be a non-empty str, got {value!r}")
    return value


def _check_ttl(ttl_seconds: Any) -> float:
    if isinstance(ttl_seconds, timedelta):
        ttl_seconds = ttl_seconds.total_seconds()
    if (
        isinstance(ttl_seconds, bool)
        or not isinstance(ttl_seconds, int | float)
        or not math.isfinite(ttl_seconds)
        or ttl_seconds <= 0
    ):
        raise InvalidArgumentError(
            f"ttl_seconds must be a positive number of seconds, got {ttl_seconds!r} (LeaderElection passes "
            "int(lease_duration), so a lease_duration under one second gives 0)"
        )
    return float(ttl_seconds)


class _Lease:
    """One lease held (or being acquired) by this backend, and the task that keeps it.

    The lock's acquisition belongs to the task that acquired it (the
    library's locks are owned per task), so one *keeper* task per lease
    acquires, renews and releases it; the backend's methods, called from any
    task, hand it requests and wait for its answers.
    """

    __slots__ = (
        "fence",
        "identity",
        "keeper",
        "key",
        "lock",
        "loop",
        "lost",
        "released",
        "renew_at",
        "requests",
        "started",
        "token",
        "ttl",
        "valid_until",
    )

    def __init__(self, key: str, identity: str, ttl: float, lock: DistributedLock) -> None:
        self.key = key
        self.identity = identity
        self.ttl = ttl
        self.lock = lock
        self.loop = asyncio.get_running_loop()
        self.started: asyncio.Future[bool] = self.loop.create_future()
        self.requests: asyncio.Queue[Request] = asyncio.Queue()
        self.keeper: asyncio.Task[None] | None = None
        self.token: str | None = None
        self.fence: int | None = None
        self.valid_until = 0.0  # loop time after which the lease has run out, by this process' clock
        self.renew_at = math.inf
        self.lost = False
        self.released = False

    def held(self) -> bool:
        return (
            self.started.done()
            and not self.started.cancelled()
            and self.started.exception() is None
            and self.started.result()
            and not self.lost
            and not self.released
            and self.loop.time() < self.valid_until
        )


class LeaseCoordinationBackend(CoordinationBackend):
    """A ``CoordinationBackend`` for ``LeaderElection`` on :class:`~neuroglia.data.redis.DistributedLock`.

    ::

        backend = LeaseCoordinationBackend(redis)
        election = LeaderElection(backend, LeaderElectionConfig(lease_name="kitchen"))
        leadership = backend.leadership(election)

        async def on_started_leading():
            ...
            if leadership.is_leader():              # no round trip: held, and in time
                await leadership.fenced_set_async("kitchen:current-batch", batch_id)

    ``auto_renew`` (default on) renews each held lease every third of its
    time to live, from this backend, whatever the election loop is doing (a
    long ``on_started_leading`` callback blocks the framework's loop, and
    with it the framework's own renewals). ``on_lost(key, identity, error)``
    is called when a held lease is found lost.

    The framework's four methods keep their contract (``True``/``False``,
    ``None`` for no holder); Redis being unreachable raises
    :class:`~neuroglia.data.redis.CacheUnavailableError` from them, which
    ``LeaderElection`` logs and retries.
    """

    def __init__(
        self,
        repository: RedisRepository,
        *,
        auto_renew: bool = True,
        on_lost: OnLeaseLost | None = None,
    ) -> None:
        if not isinstance(repository, RedisRepository):
            raise InvalidArgumentError(f"repository must be a RedisRepository, got {type(repository).__name__}")
        if on_lost is not None and not callable(on_lost):
            raise InvalidArgumentError(f"on_lost must be callable, got {on_lost!r}")
        self._repository = repository
        self._auto_renew = bool(auto_renew)
        self._on_lost = on_lost
        self._leases: dict[tuple[str, str], _Lease] = {}
        self._holder_set: Script = repository.register_script(lua_source("lease_holder_set"))
        self._holder_get: Script = repository.register_script(lua_source("lease_holder_get"))
        # Callbacks' tasks, referenced until they finish (the loop keeps only weak references).
        self._background: set[asyncio.Future[Any]] = set()

    def _holder_key(self, key: str) -> str:
        """Where the holder of lease ``key`` is recorded: beside the lease, in its cluster hash slot.

        The scripts read and write both keys at once, so on a cluster they
        must share a slot: a hash tag solved for the lease key's slot is
        appended, unless the full key hashes by a tag of its own already.
        """
        full = self._repository.config.key_prefix + key
        if has_hash_tag(full):
            return key + _HOLDER_SUFFIX
        return f"{key}{_HOLDER_SUFFIX}{{{slot_tag(hash_slot(full)).decode()}}}"

    @property
    def repository(self) -> RedisRepository:
        """The repository the leases live in."""
        return self._repository

    @property
    def auto_renew(self) -> bool:
        """Whether held leases are renewed by the backend itself."""
        return self._auto_renew

    def __repr__(self) -> str:
        return f"LeaseCoordinationBackend({self._repository!r}, held={len(self._leases)})"

    # -- the framework's interface ----------------------------------------------------

    async def acquire_lease(self, key: str, holder_identity: str, ttl_seconds: int) -> bool:
        """Try once to take the lease; ``True`` when ``holder_identity`` holds it now.

        Asking again for a lease this backend already holds for the same
        identity renews it. Never waits for a lease held by someone else.
        """
        _check_name(key, "key")
        _check_name(holder_identity, "holder_identity")
        ttl = _check_ttl(ttl_seconds)
        lease = self._leases.get((key, holder_identity))
        if lease is not None:
            if not lease.started.done():
                return await self._outcome(lease)  # being acquired by a concurrent call
            if lease.held():
                return await self.renew_lease(key, holder_identity, ttl_seconds)
            await self._retire(lease)
        lock = DistributedLock(self._repository, key, timeout=ttl, wait_timeout=0, auto_renew=False)
        lease = _Lease(key, holder_identity, ttl, lock)
        self._leases[(key, holder_identity)] = lease
        keeper = lease.keeper = lease.loop.create_task(self._keep(lease), name=f"lease keeper {key!r}")
        try:
            return await self._outcome(lease)
        except asyncio.CancelledError:
            # The caller will never learn the answer: do not keep a lease for it.
            keeper.cancel()
            raise

    async def renew_lease(self, key: str, holder_identity: str, ttl_seconds: int) -> bool:
        """Extend the lease to ``ttl_seconds`` from now; ``False`` when it is not held (any more).

        Owner-checked in Redis: a lease taken over by another holder after it
        expired is not extended, and is reported lost.
        """
        ttl = _check_ttl(ttl_seconds)
        lease = self._leases.get((_check_name(key, "key"), _check_name(holder_identity, "holder_identity")))
        if lease is None or not lease.started.done() or not lease.held():
            if lease is not None and lease.started.done() and not lease.lost and not lease.released:
                # Ran out by this process' clock (a pause): say so now, and let
                # the keeper confirm and clean up.
                self._lose(lease, "its time to live ran out before it was renewed")
                self._stop(lease)
            return False
        return await self._ask(lease, "renew", ttl)

    async def release_lease(self, key: str, holder_identity: str) -> bool:
        """Give the lease up; ``True`` when it was still held, ``False`` when it was not."""
        lease = self._leases.get((_check_name(key, "key"), _check_name(holder_identity, "holder_identity")))
        if lease is None:
            return False
        if not lease.started.done():
            try:
                if not await self._outcome(lease):
                    return False
            except CacheException:
                return False
        if lease.released or lease.keeper is None or lease.keeper.done():
            return False
        return await self._ask(lease, "release", 0.0)

    async def get_lease_holder(self, key: str) -> str | None:
        """The identity holding the lease, or ``None`` when nobody does.

        A lease taken by something that records no identity (a plain
        ``DistributedLock`` on the same key) is reported by its lock token.
        """
        _check_name(key, "key")
        holder = await self._holder_get(keys=(key, self._holder_key(key)))
        if holder is None:
            return None
        return holder if isinstance(holder, str) else bytes(holder).decode(errors="replace")

    # -- what a leader may read and do --------------------------------------------------

    def is_held(self, key: str, holder_identity: str) -> bool:
        """Whether this backend holds the lease for ``holder_identity``, by this process' clock.

        No round trip: false once the lease's time to live has passed since
        its last renewal (a pause), or once a renewal found it lost.
        """
        lease = self._leases.get((key, holder_identity))
        return lease is not None and lease.held()

    def fencing_token(self, key: str, holder_identity: str) -> int | None:
        """The fencing token of the held lease (strictly increasing per lease key), or ``None``."""
        lease = self._leases.get((key, holder_identity))
        if lease is None or lease.lost or lease.released:
            return None
        return lease.fence

    def valid_for(self, key: str, holder_identity: str) -> float:
        """Seconds left of the held lease by this process' clock (0 when not held)."""
        lease = self._leases.get((key, holder_identity))
        if lease is None or not lease.held():
            return 0.0
        return max(0.0, lease.valid_until - lease.loop.time())

    async def confirm_async(self, key: str, holder_identity: str) -> bool:
        """Ask Redis whether the lease is still held (one round trip); a lost lease is reported lost."""
        lease = self._leases.get((key, holder_identity))
        if lease is None or not lease.held():
            return False
        return await self._ask(lease, "check", 0.0)

    async def fenced_set_async(
        self,
        key: str,
        holder_identity: str,
        resource_key: str,
        value: Any,
        *,
        expiration: float | timedelta | None = None,
    ) -> bool:
        """Write ``value`` at ``resource_key`` guarded by the lease's fencing token.

        Raises :class:`~neuroglia.data.redis.LockNotOwnedError` (and writes
        nothing) when the lease is not held by this process' reckoning.
        Returns ``False`` (nothing written) when a holder with a newer token
        has written ``resource_key`` already: the lease was lost, and the
        write came too late. See :func:`~neuroglia.data.redis.fenced_set_async`.
        """
        lease = self._leases.get((key, holder_identity))
        if lease is None or not lease.held() or lease.fence is None:
            raise LockNotOwnedError(
                f"lease {key!r} is not held by {holder_identity!r} (never acquired, released, lost, or run out): "
                "nothing was written"
            )
        return await fenced_set_async(self._repository, resource_key, value, lease.fence, expiration=expiration)

    def leadership(self, election: LeaderElection) -> Leadership:
        """The checks and fenced writes of ``election``'s leader (see :class:`Leadership`)."""
        return Leadership(self, election)

    async def close(self) -> None:
        """Release every lease this backend holds (their keepers stop)."""
        leases = list(self._leases.values())
        for lease in leases:
            with contextlib.suppress(CacheException):
                await self.release_lease(lease.key, lease.identity)
        for lease in leases:
            if lease.keeper is not None and not lease.keeper.done():
                lease.keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError, CacheException):
                    await lease.keeper

    # -- the keeper ------------------------------------------------------------------------

    @staticmethod
    async def _outcome(lease: _Lease) -> bool:
        """Whether the lease's acquisition succeeded, once it is decided.

        Only the caller's own cancellation propagates: an acquisition
        cancelled elsewhere (its caller gave up, ``close()``) reads as ``False``.
        """
        started = lease.started
        if not started.done():
            await asyncio.wait({started})
        if started.cancelled():
            return False
        error = started.exception()
        if error is not None:
            raise error
        return started.result()

    async def _ask(self, lease: _Lease, kind: Literal["renew", "release", "check"], ttl: float) -> bool:
        keeper = lease.keeper
        if keeper is None or keeper.done():
            return False
        reply: asyncio.Future[bool] = lease.loop.create_future()
        # The keeper answers every request it takes, and the requests left when
        # it ends are answered False: the caller never waits on a dead keeper.
        lease.requests.put_nowait((kind, ttl, reply))
        return await asyncio.shield(reply)

    async def _keep(self, lease: _Lease) -> None:
        """Acquire the lease, then renew, check and release it on request, in this one task."""
        loop = lease.loop
        lock = lease.lock
        acquired = False
        try:
            sent = loop.time()
            acquired = await lock.acquire(blocking=False)
            if acquired:
                lease.token = lock.token
                lease.fence = lock.fencing_token
                lease.valid_until = loop.time() + (lock.valid_for or 0.0)
                lease.renew_at = sent + lease.ttl / 3
                # Who holds it, for get_lease_holder (the lock key holds only the token).
                recorded = await self._holder_set(
                    keys=(lease.key, self._holder_key(lease.key)), args=(lease.token or "", lease.identity)
                )
                if not int(recorded):
                    _log.warning("lease %r: lost right after it was acquired", lease.key)
                    acquired = False
                    await self._release_quietly(lease)
        except BaseException as exc:
            if acquired:
                await self._release_quietly(lease)
            self._forget(lease)
            if not lease.started.done():
                if isinstance(exc, asyncio.CancelledError):
                    lease.started.cancel()
                else:
                    lease.started.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
                raise
            return
        lease.started.set_result(acquired)
        if not acquired:
            self._forget(lease)
            return
        try:
            await self._serve(lease)
        finally:
            self._forget(lease)
            if not lease.released:
                await self._release_quietly(lease)
            while not lease.requests.empty():
                _, _, reply = lease.requests.get_nowait()
                if not reply.done():
                    reply.set_result(False)

    async def _serve(self, lease: _Lease) -> None:
        while True:
            deadline = lease.renew_at if self._auto_renew else None
            request: Request | None
            try:
                async with asyncio.timeout_at(deadline):
                    request = await lease.requests.get()
            except TimeoutError:
                request = None
            if request is None:
                try:
                    if not await self._renew(lease, lease.ttl):
                        return
                except CacheException as exc:
                    _log.debug("lease %r: renewal failed (%s); trying again", lease.key, exc)
                continue
            kind, ttl, reply = request
            try:
                if kind == "renew":
                    outcome = await self._renew(lease, ttl)
                elif kind == "check":
                    outcome = await self._check(lease)
                else:
                    outcome = await self._release(lease)
            except CacheException as exc:
                if not reply.done():
                    reply.set_exception(exc)
                if kind == "release" or lease.lost:
                    return
                continue
            except BaseException:
                if not reply.done():  # cancelled half-way: the caller learns nothing was confirmed
                    reply.set_result(False)
                raise
            if not reply.done():
                reply.set_result(outcome)
            if kind == "release" or not outcome:
                return

    async def _renew(self, lease: _Lease, ttl: float) -> bool:
        if lease.lost or lease.released:
            return False
        loop = lease.loop
        sent = loop.time()
        if sent >= lease.valid_until:
            # Ran out before this renewal (the process was paused, or Redis
            # unreachable): whatever Redis says now, this holder may have been
            # replaced meanwhile, so it is not the holder any more.
            self._lose(lease, "its time to live ran out before it was renewed")
            return False
        try:
            left = await lease.lock.extend(ttl, replace_ttl=True)
        except LockNotOwnedError:
            self._lose(lease, "a renewal found it expired, deleted or taken by another holder")
            return False
        except CacheException as exc:
            now = loop.time()
            if now >= lease.valid_until:
                self._lose(lease, f"Redis could not renew it before it ran out ({exc})")
                return False
            lease.renew_at = min(now + max(lease.ttl * _RETRY_SHARE, 0.05), lease.valid_until)
            raise
        lease.ttl = ttl
        lease.valid_until = sent + left
        lease.renew_at = sent + ttl / 3
        return True

    async def _check(self, lease: _Lease) -> bool:
        if lease.loop.time() >= lease.valid_until:
            self._lose(lease, "its time to live ran out before it was renewed")
            return False
        if await lease.lock.is_owned():
            return True
        self._lose(lease, "Redis says it is expired, deleted or held by another holder")
        return False

    async def _release(self, lease: _Lease) -> bool:
        lease.released = True
        try:
            await lease.lock.release()
        except LockNotOwnedError:
            return False
        return True

    async def _release_quietly(self, lease: _Lease) -> None:
        """Release the lock object (owner-checked: harmless when the lease was lost)."""
        lease.released = True
        try:
            await lease.lock.release()
        except LockNotOwnedError:
            pass
        except CacheException as exc:
            _log.warning("lease %r: could not be released (%s); it will expire", lease.key, exc)

    async def _retire(self, lease: _Lease) -> None:
        """Let the keeper of a lease that ran out release its lock object before a new acquisition.

        The library's lock lets one acquisition per key and process at a time:
        until the old one is released, a new attempt would be refused here
        without asking Redis.
        """
        keeper = lease.keeper
        if keeper is None or keeper.done():
            return
        if not lease.lost and not lease.released:
            self._lose(lease, "its time to live ran out before it was renewed")
        self._stop(lease)
        await asyncio.wait({keeper}, timeout=max(lease.ttl, 1.0))

    def _stop(self, lease: _Lease) -> None:
        """End the keeper of a lease found lost outside it (it releases the lock object as it ends)."""
        lease.requests.put_nowait(("release", 0.0, lease.loop.create_future()))

    def _forget(self, lease: _Lease) -> None:
        if self._leases.get((lease.key, lease.identity)) is lease:
            del self._leases[(lease.key, lease.identity)]

    def _lose(self, lease: _Lease, reason: str) -> None:
        if lease.lost:
            return
        lease.lost = True
        error = LockLostError(
            f"lease {lease.key!r} of {lease.identity!r} (fencing token {lease.fence}) was lost: {reason}"
        )
        _log.warning("%s", error)
        callback = self._on_lost
        if callback is None:
            return
        try:
            outcome = callback(lease.key, lease.identity, error)
        except Exception:
            _log.exception("lease %r: the on_lost callback failed", lease.key)
            return
        if inspect.isawaitable(outcome):
            task = asyncio.ensure_future(self._await_callback(outcome, lease.key))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    @staticmethod
    async def _await_callback(outcome: Awaitable[Any], key: str) -> None:
        try:
            await outcome
        except Exception:
            _log.exception("lease %r: the on_lost callback failed", key)

    # -- registration --------------------------------------------------------------------

    @staticmethod
    def configure(builder: Any, *, auto_renew: bool = True, replace: bool = False) -> Any:
        """Register the backend (a singleton on the shared repository) in an application builder.

        Resolve it as ``CoordinationBackend`` or ``LeaseCoordinationBackend``;
        registers the shared Redis repository first when there is none (see
        :meth:`RedisEntityRepository.configure`). Returns the builder.
        """
        services = builder.services
        if not any(d.service_type is RedisRepository for d in services):
            RedisRepository.configure(builder)
        # Attached to the framework's ServiceCollection by this package (see registration.py).
        services.add_redis_coordination(auto_renew=auto_renew, replace=replace)
        return builder


class Leadership:
    """What the leader of one ``LeaderElection`` may check and do through its lease.

    The framework's ``election.is_leader()`` stays true from the moment the
    lease is acquired until the election loop next fails to renew it: a
    leader paused past its lease wakes up still believing it leads.
    :meth:`is_leader` also asks the backend, without a round trip, whether
    the lease is still held by this process' clock, and the fenced writes
    refuse what a newer leader has superseded::

        leadership = backend.leadership(election)
        while leadership.is_leader():
            if not await leadership.fenced_set_async("kitchen:batch", next_batch()):
                break    # a newer leader has written: this one lost its lease
    """

    def __init__(self, backend: LeaseCoordinationBackend, election: LeaderElection) -> None:
        if not isinstance(backend, LeaseCoordinationBackend):
            raise InvalidArgumentError(f"backend must be a LeaseCoordinationBackend, got {type(backend).__name__}")
        self._backend = backend
        self._election = election

    @property
    def key(self) -> str:
        """The lease key the election uses (``leases:<lease_name>``, as ``LeaderElection`` names it)."""
        return f"leases:{self._election.config.lease_name}"

    @property
    def identity(self) -> str:
        """The election's identity."""
        return str(self._election.config.identity)

    def is_leader(self) -> bool:
        """Whether this process leads and may act now: elected, and the lease held and in time."""
        return bool(self._election.is_leader()) and self._backend.is_held(self.key, self.identity)

    @property
    def fencing_token(self) -> int | None:
        """The fencing token of the current lease, or ``None``."""
        return self._backend.fencing_token(self.key, self.identity)

    @property
    def valid_for(self) -> float:
        """Seconds left of the lease by this process' clock (0 when not leading)."""
        return self._backend.valid_for(self.key, self.identity)

    async def confirm_async(self) -> bool:
        """Ask Redis whether the lease is still held (one round trip)."""
        return bool(self._election.is_leader()) and await self._backend.confirm_async(self.key, self.identity)

    async def fenced_set_async(
        self, resource_key: str, value: Any, *, expiration: float | timedelta | None = None
    ) -> bool:
        """Write ``value`` at ``resource_key`` with the lease's fencing token.

        :class:`~neuroglia.data.redis.LockNotOwnedError` when this process
        does not lead (nothing written); ``False`` when a newer leader has
        written ``resource_key`` (nothing written); ``True`` when written.
        """
        if not self._election.is_leader():
            raise LockNotOwnedError(f"{self.identity!r} is not the leader of {self.key!r}: nothing was written")
        return await self._backend.fenced_set_async(self.key, self.identity, resource_key, value, expiration=expiration)

    def __repr__(self) -> str:
        return f"Leadership({self.key!r}, identity={self.identity!r}, leading={self.is_leader()})"
