"""The cache's coherent first level on the repository's near cache.

When the repository has a near cache (``RedisConfig(near_cache=...)``) and
it keeps ``HMGET`` replies of the cache's keys, a
:class:`~neuroglia.data.redis.RedisCache` built without ``local_store=``
uses :class:`NearCacheLocalStore`: the cache's own read of an entry (one
``HMGET v m t``, see :mod:`.entry`) is kept by the near cache like any read,
kept coherent by Redis' invalidations, and the cache answers from it before
Redis on every call.

Only what was *read* is kept coherently: a value this process writes is not
tracked by Redis until it is read back (in the default tracking mode Redis
reports changes of keys a connection has read), so the write drops the
entry and the next call reads it once. Fail-safe copies (entries written
with fail-safe on) are kept apart in a :class:`~.local.BoundedLocalStore`,
served only when Redis is unavailable, since the near cache itself is
emptied when its connection is lost.

Removals by tag drop the entries held with the tag and every read of the
cache's keys in flight, before and after the removal runs in Redis: an
entry the removal deletes may not be kept by a read that crossed it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._library import MISS, Entry, NearCache
from .entry import StoredEntry, split_tags
from .local import BoundedLocalStore
from .metrics import CacheInstruments

__all__ = ["NearCacheLocalStore", "near_cache_store"]

_FIELDS = ("v", "m", "t")


def near_cache_store(
    near: NearCache | None,
    full_prefix: str,
    entry_root: str,
    instruments: CacheInstruments,
    max_entries: int,
    max_bytes: int,
) -> NearCacheLocalStore | None:
    """The coherent first level for a cache whose entries are named ``full_prefix + entry_root + key``.

    ``None`` when there is no near cache, or when it does not keep the
    cache's reads (``HMGET`` not among its commands, or the cache's keys
    outside its prefixes).
    """
    if near is None or "HMGET" not in near.options.commands:
        return None
    root = full_prefix + entry_root
    if not near.cacheable(root + "_"):
        return None
    return NearCacheLocalStore(near, root, instruments, max_entries, max_bytes)


class NearCacheLocalStore:
    """A :class:`~.local.LocalStore` whose entries are the near cache's, kept coherent by Redis."""

    coherent = True

    def __init__(
        self, near: NearCache, root: str, instruments: CacheInstruments, max_entries: int, max_bytes: int
    ) -> None:
        self._near = near
        self._root = root
        self._instruments = instruments
        self._copies = BoundedLocalStore(max_entries, max_bytes)
        near.add_listener(self._removed)

    @property
    def near_cache(self) -> NearCache:
        """The repository's near cache."""
        return self._near

    def _args(self, key: str) -> tuple[str, ...]:
        return ("HMGET", self._root + key, *_FIELDS)

    def get(self, key: str) -> StoredEntry | None:
        """The entry as Redis last told this process, or ``None`` (not held, or held as missing)."""
        reply = self._near.peek(self._args(key))
        if reply is MISS:
            return None
        entry = StoredEntry.from_fields(*reply)
        if entry is not None:
            self._instruments.near_hit()
        return entry

    def get_fail_safe(self, key: str) -> StoredEntry | None:
        """What fail-safe may serve while Redis is unavailable: the coherent entry, else the kept copy."""
        return self.get(key) or self._copies.get(key)

    def set(self, key: str, entry: StoredEntry) -> None:
        """Keep a fail-safe copy of ``entry`` (the coherent level keeps only what Redis reported)."""
        if entry.meta.stale_until_ms > entry.meta.expires_ms:
            self._copies.set(key, entry)
        else:
            self._copies.remove(key)  # no older copy may outlive this value

    def remove(self, key: str) -> None:
        """Forget ``key`` (a read of it in flight is not kept either)."""
        self._near.invalidate([self._root + key])
        self._copies.remove(key)

    def remove_by_tag(self, tag: str) -> int:
        """Forget every entry held with ``tag``, and every read of this cache's keys in flight."""
        root = self._root
        doomed: list[Any] = []
        for entry in self._near.entries():
            key = entry.key
            if entry.args[0] == "HMGET" and isinstance(key, str) and key.startswith(root):
                reply = entry.reply
                if isinstance(reply, list) and len(reply) == 3 and tag in split_tags(reply[2]):
                    doomed.append(key)
        doomed += [key for key in self._near.keys_being_read() if isinstance(key, str) and key.startswith(root)]
        dropped = self._near.invalidate(doomed) if doomed else 0
        return dropped + self._copies.remove_by_tag(tag)

    def clear(self) -> None:
        """Forget every entry of this cache."""
        root = self._root
        self._near.invalidate_where(lambda key: not (isinstance(key, str) and key.startswith(root)))
        self._copies.clear()

    def close(self) -> None:
        """Stop counting this cache's removals (the cache is closed)."""
        self._near.remove_listener(self._removed)

    def _removed(self, entries: list[Entry], reason: str) -> None:
        root = self._root
        mine = sum(1 for entry in entries if isinstance(entry.key, str) and entry.key.startswith(root))
        if mine:
            self._instruments.near_removed(reason, mine)

    def __repr__(self) -> str:
        return f"NearCacheLocalStore(root={self._root!r}, {self._near!r})"


def fail_safe_copy(store: Any) -> Callable[[str], StoredEntry | None]:
    """How fail-safe reads ``store`` while Redis is unavailable."""
    if isinstance(store, NearCacheLocalStore):
        return store.get_fail_safe
    getter: Callable[[str], StoredEntry | None] = store.get
    return getter
