"""The cache's clock and the lifetime of an entry it writes.

Times are milliseconds of the cache's clock (wall-clock seconds, :func:`time.time`
by default): an entry stores when it expires and until when fail-safe may
serve it stale (see :mod:`.entry`). TTL jitter and XFetch's draws (see
:mod:`.refresh`) come from a generator of the cache's own, so that they never
disturb the application's global random state.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from .entry import EntryMeta
from .options import CacheOptions

__all__ = ["EntryClock"]


class EntryClock:
    """The time of one cache, and the metadata of the entries it writes."""

    __slots__ = ("clock", "random")

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        """Wall-clock seconds: decides logical expiration."""
        self.random: Callable[[], float] = random.Random().random
        """Uniform draws in [0, 1) for jitter and XFetch."""

    def now_ms(self) -> int:
        """Now, in milliseconds of the cache's clock."""
        return int(self.clock() * 1000)

    def meta(self, now_ms: int, expiration_s: float, options: CacheOptions, duration_ms: int = 0) -> EntryMeta:
        """The metadata of an entry written at ``now_ms``: fresh for ``expiration_s`` (jittered), then stale."""
        fresh_ms = expiration_s * 1000
        if options.jitter:
            fresh_ms *= 1 + self.random() * options.jitter
        expires = now_ms + max(1, round(fresh_ms))
        stale_until = expires
        if options.keeps_stale:
            assert options.max_staleness_s is not None
            stale_until += round(options.max_staleness_s * 1000)
        return EntryMeta(expires, stale_until, now_ms, duration_ms)
