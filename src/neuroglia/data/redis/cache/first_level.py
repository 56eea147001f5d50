"""The first level of one cache: which in-process store, what it keeps, what fail-safe reads from it.

The store is the one given to :class:`~neuroglia.data.redis.RedisCache`
(``local_store=``), else the repository's near cache when it keeps the
cache's reads (a coherent level, read before Redis: see :mod:`.near`), else a
:class:`~.local.BoundedLocalStore` of fail-safe copies, read only while Redis
is unavailable (see :mod:`.local`).

A coherent store keeps every entry the cache reads or writes; another keeps
only entries of calls with fail-safe on, which may be served later.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .entry import StoredEntry
from .local import BoundedLocalStore, LocalStore
from .metrics import CacheInstruments
from .near import NearCacheLocalStore, fail_safe_copy, near_cache_store
from .options import CacheOptions

if TYPE_CHECKING:
    from ._library import NearCache

__all__ = ["FirstLevel"]


class FirstLevel:
    """The in-process level of one cache, and the rules of what it keeps."""

    __slots__ = ("fail_safe_copy", "store")

    def __init__(
        self,
        store: LocalStore | None,
        near: NearCache | None,
        entry_root: str,
        full_prefix: str,
        instruments: CacheInstruments,
        max_entries: int,
        max_bytes: int,
    ) -> None:
        if store is None:
            # The repository's near cache, when it keeps this cache's reads, is the coherent first level.
            store = near_cache_store(near, full_prefix, entry_root, instruments, max_entries, max_bytes)
        self.store: LocalStore = store if store is not None else BoundedLocalStore(max_entries, max_bytes)
        """The store."""
        self.fail_safe_copy: Callable[[str], StoredEntry | None] = fail_safe_copy(self.store)
        """What fail-safe may serve for a key while Redis is unavailable."""

    def keep(self, key: str, entry: StoredEntry, options: CacheOptions) -> None:
        """Keep ``entry``, read or written by a call with ``options``, if this level keeps such entries."""
        if options.fail_safe or self.store.coherent:
            self.store.set(key, entry)

    def expire(self, key: str, now_ms: int) -> None:
        """Mark the copy of ``key`` expired at ``now_ms``, as ``expire_async`` does in Redis."""
        store = self.store
        copy = store.get(key)
        if copy is not None and copy.meta.is_fresh(now_ms):
            if copy.meta.stale_until_ms > copy.meta.expires_ms:  # kept for fail-safe, as in Redis
                store.set(key, copy._replace(meta=copy.meta._replace(expires_ms=now_ms)))
            else:
                store.remove(key)

    def close(self) -> None:
        """The cache is closed: a near-cache level stops listening to the near cache."""
        if isinstance(self.store, NearCacheLocalStore):
            self.store.close()
