"""The kitchen: one queue of orders, worked through by the one instance that leads.

Every instance of the service places orders into :class:`KitchenQueue` (a
sorted set by time of order); only the leader cooks them. The leader is
elected by the framework's ``LeaderElection`` on the library's
:class:`~neuroglia.data.redis.integration.LeaseCoordinationBackend`, and
:class:`KitchenLeader` acts only while
:meth:`Leadership.is_leader() <neuroglia.data.redis.integration.Leadership.is_leader>`
says the lease is still held (by this process's own clock, without a round
trip). Before touching an order it writes the order's id to
``kitchen:current-order`` with its lease's fencing token: once a newer leader
has written there, an older one that was paused past its lease is refused,
and stops. The order itself is versioned (optimistic concurrency), so two
cooks never both mark it ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from neuroglia.coordination import LeaderElection, LeaderElectionConfig

from ...exceptions import CacheException, LockNotOwnedError
from ...integration import Leadership, LeaseCoordinationBackend
from ...repository import RedisRepository

__all__ = ["CookOrder", "KitchenLeader", "KitchenQueue"]

_log = logging.getLogger("neuroglia.data.redis.demo.app")

CookOrder = Callable[[str, str, int], Awaitable[bool]]
"""Cooks one order: ``(order_id, cook identity, fencing token) -> done`` (``False``: keep it queued)."""

QUEUE_KEY = "kitchen:queue"
CURRENT_ORDER_KEY = "kitchen:current-order"
LEASE_NAME = "kitchen"


class KitchenQueue:
    """The orders waiting for the kitchen, oldest first (a sorted set scored by the time of order)."""

    def __init__(self, redis: RedisRepository, key: str = QUEUE_KEY) -> None:
        self.redis = redis
        self.key = key

    async def push_async(self, order_id: str) -> None:
        await self.redis.zadd_async(self.key, {order_id: time.time()})

    async def next_async(self) -> str | None:
        """The oldest order, left in the queue until it is cooked (a leader that dies leaves it to the next)."""
        oldest = await self.redis.zrange_async(self.key, 0, 0)
        return str(oldest[0]) if oldest else None

    async def remove_async(self, order_id: str) -> None:
        await self.redis.zrem_async(self.key, order_id)

    async def length_async(self) -> int:
        return int(await self.redis.zcard_async(self.key))


class KitchenLeader:
    """A hosted service: takes part in the kitchen's leader election, and cooks while it leads."""

    def __init__(
        self,
        backend: LeaseCoordinationBackend,
        queue: KitchenQueue,
        cook: CookOrder,
        *,
        identity: str,
        lease_seconds: int = 5,
        bake_seconds: float = 0.5,
        poll_seconds: float = 0.2,
    ) -> None:
        if lease_seconds < 1:
            raise ValueError(
                f"lease_seconds must be at least 1 (the framework counts whole seconds), got {lease_seconds}"
            )
        self.backend = backend
        self.queue = queue
        self.identity = identity
        self.bake_seconds = bake_seconds
        self.poll_seconds = poll_seconds
        self.cooked = 0
        self._cook = cook
        self._config = LeaderElectionConfig(
            lease_name=LEASE_NAME,
            identity=identity,
            lease_duration=timedelta(seconds=lease_seconds),
            renew_interval=timedelta(seconds=lease_seconds / 3),
            retry_period=timedelta(seconds=min(0.5, lease_seconds / 5)),
        )
        self._election: LeaderElection | None = None
        self._leadership: Leadership | None = None
        self._election_task: asyncio.Task[None] | None = None
        self._kitchen_task: asyncio.Task[None] | None = None

    # -- what the status endpoint reads --------------------------------------------------

    def is_leader(self) -> bool:
        """Whether this instance leads now: elected, and its lease not run out by its own clock."""
        return self._leadership is not None and self._leadership.is_leader()

    @property
    def fencing_token(self) -> int | None:
        """The fencing token of this instance's lease while it leads."""
        return self._leadership.fencing_token if self.is_leader() and self._leadership is not None else None

    # -- the hosted service ---------------------------------------------------------------

    async def start_async(self) -> None:
        """Join the election (in the background)."""
        if self._election_task is not None:
            return
        election = self._election = LeaderElection(self.backend, self._config)
        self._leadership = self.backend.leadership(election)
        # (run() is annotated with plain callables; it awaits coroutine functions)
        started: Any = self._started_leading
        stopped: Any = self._stopped_leading
        self._election_task = asyncio.get_running_loop().create_task(
            election.run(started, stopped), name=f"kitchen-election:{self.identity}"
        )

    async def stop_async(self) -> None:
        """Stop cooking, leave the election and give the lease up (the next instance takes over at once)."""
        election, task = self._election, self._election_task
        self._election_task = None
        if election is None or task is None:
            return
        await election.stop()
        task.cancel()  # the election sleeps between renewals; its cleanup releases the lease
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await self._stop_cooking()

    async def _started_leading(self) -> None:
        _log.info("%s leads the kitchen (fencing token %s)", self.identity, self.fencing_token)
        # A task of its own: the election must go on renewing the lease while the kitchen works.
        self._kitchen_task = asyncio.get_running_loop().create_task(self._work(), name=f"kitchen:{self.identity}")

    async def _stopped_leading(self) -> None:
        _log.info("%s no longer leads the kitchen", self.identity)
        await self._stop_cooking()

    async def _stop_cooking(self) -> None:
        task, self._kitchen_task = self._kitchen_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- the kitchen's work -----------------------------------------------------------------

    async def _work(self) -> None:
        leadership = self._leadership
        assert leadership is not None
        while leadership.is_leader():
            try:
                order_id = await self.queue.next_async()
                if order_id is None:
                    await asyncio.sleep(self.poll_seconds)
                    continue
                # Fenced before anything else: refused once a newer leader has written here.
                if not await leadership.fenced_set_async(CURRENT_ORDER_KEY, order_id):
                    _log.warning("%s: a newer kitchen leader has taken over; stopping", self.identity)
                    return
                token = leadership.fencing_token
                if token is None:
                    return  # the lease ran out meanwhile
                if self.bake_seconds:
                    await asyncio.sleep(self.bake_seconds)
                if await self._cook(order_id, self.identity, token):
                    await self.queue.remove_async(order_id)
                    self.cooked += 1
            except LockNotOwnedError:
                return  # not leading any more
            except CacheException as exc:
                _log.warning("%s: the kitchen waits for Redis: %s", self.identity, exc)
                await asyncio.sleep(self.poll_seconds)
            except Exception:
                _log.exception("%s: an order could not be cooked; it stays queued", self.identity)
                await asyncio.sleep(self.poll_seconds)
