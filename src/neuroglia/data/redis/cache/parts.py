"""What one :class:`~neuroglia.data.redis.RedisCache` is made of, wired together.

The facade (:mod:`.facade`) checks and resolves each public call and hands
it to one of these parts:

``getorset``      the get-or-set path: hits, joining the key's flight, fail-safe, soft and hard timeouts
``compute``       computing a missing key: the distributed lease, the factory run, storing its result
``refresh``       early refresh in the background (threshold or XFetch)
``plain``         plain ``get``/``set``/``remove``/``expire``/``clear``
``tags``          removals by tag

which share the cache's lower parts: its first level (:mod:`.first_level`),
its entries and leases in Redis (:mod:`.store`), its clock (:mod:`.timing`),
the results it returns (:mod:`.results`), and its running computations and
background tasks (:mod:`.flight`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._library import CacheMetrics, InvalidArgumentError
from .compute import Computation
from .errors import CacheClosedError
from .first_level import FirstLevel
from .flight import SingleFlight, TaskTracker
from .getorset import GetOrSet
from .keyspace import KeySpace
from .local import LocalStore
from .metrics import CacheInstruments
from .plain import PlainAccess
from .refresh import EarlyRefresh
from .results import Outcome, Results
from .scripts import CacheScripts
from .store import EntryStore
from .tags import TagRemoval
from .timing import EntryClock

if TYPE_CHECKING:
    from ._library import RedisRepository

__all__ = ["CacheParts"]


class CacheParts:
    """The parts of one cache; see the module's docstring."""

    __slots__ = ("first", "get_or_set", "instruments", "keys", "plain", "tags", "tasks", "timing")

    def __init__(
        self,
        repository: RedisRepository,
        namespace: str,
        clock: Callable[[], float] | None,
        local_store: LocalStore | None,
        local_max_entries: int,
        local_max_bytes: int,
        metrics: CacheMetrics | None,
        tag_batch_size: int,
    ) -> None:
        if isinstance(tag_batch_size, bool) or not isinstance(tag_batch_size, int) or tag_batch_size < 1:
            raise InvalidArgumentError(f"tag_batch_size must be an integer >= 1, got {tag_batch_size!r}")
        self.keys = keys = KeySpace(
            namespace, repository.config.key_prefix, one_slot=repository.config.topology == "cluster"
        )
        scripts = CacheScripts(repository)
        codec = repository.codec
        owned = metrics if metrics is not None else repository.metrics
        self.instruments = ins = CacheInstruments(owned if owned is not None else CacheMetrics("rediscache"), namespace)
        near = getattr(repository, "near_cache", None)
        self.first = first = FirstLevel(
            local_store, near, keys.entry_root, keys.full_prefix, ins, local_max_entries, local_max_bytes
        )
        self.timing = timing = EntryClock(clock or time.time)
        self.tasks = tasks = TaskTracker()
        flights: SingleFlight[Outcome] = SingleFlight(tasks)
        refreshes: SingleFlight[None] = SingleFlight(tasks)
        store = EntryStore(repository, scripts, keys, timing.now_ms)
        results = Results(codec, ins)
        computation = Computation(store, first, timing, codec, ins, namespace)
        refresh = EarlyRefresh(refreshes, flights, computation, store, timing, ins, namespace)
        self.get_or_set = GetOrSet(
            keys, timing, store, first, flights, computation, refresh, results, codec, ins, tasks, self.check_open
        )
        self.plain = PlainAccess(repository, keys, scripts, store, first, timing, flights, refreshes, results, ins)
        self.tags = TagRemoval(scripts, keys, first.store, (flights, refreshes), ins, tag_batch_size)

    async def close(self) -> None:
        """Stop the first level's listening, then cancel the background work (the cache is closed from then on)."""
        self.first.close()
        await self.tasks.close()  # (marks the cache closed before it cancels anything)

    def check_open(self) -> None:
        """Refuse a call once the cache is closed."""
        if self.tasks.closed:
            raise CacheClosedError(f"the cache {self.keys.namespace!r} is closed")
