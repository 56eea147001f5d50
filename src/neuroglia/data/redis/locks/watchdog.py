"""The watchdog: one timer per event loop that renews the held leases when they are due."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .lease import Acquisition
    from .queue import Group

__all__ = ["Watchdog"]

_log = logging.getLogger("neuroglia.data.redis.lock")


class Watchdog:
    """When the held leases of one event loop are due for renewal, behind one timer.

    It keeps at most one entry per *slot*: a lock key's group (whose current
    holder is the one to renew) or a lone acquisition (Redlock). An entry
    that comes due early looks at the slot again and goes back in the heap
    for the holder's own time, so acquiring and releasing a key over and
    over neither arms a timer nor leaves anything behind per acquisition.
    """

    # No reference to the loop is kept (the runtime keys its watchdogs by the
    # loop, weakly): it is always the running one when the watchdog is used.
    def __init__(self) -> None:
        # Weak references: an entry must not keep a lock's group (and with it
        # its repository and event loop) alive.
        self.heap: list[tuple[float, int, weakref.ref[Group | Acquisition]]] = []
        self.sequence = itertools.count()
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = math.inf

    def schedule(self, when: float, acquisition: Acquisition) -> None:
        acquisition.renew_at = when
        slot: Group | Acquisition = acquisition.group or acquisition
        if slot.watch_at <= when:
            return  # the slot's entry comes due first and will look again
        self._push(when, slot)

    def _push(self, when: float, slot: Group | Acquisition) -> None:
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
            acquisition = slot.renewable()
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
