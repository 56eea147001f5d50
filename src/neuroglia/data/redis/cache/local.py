"""The in-process level behind the cache: a small interface and a bounded LRU.

The cache keeps a copy of the entries it reads and writes with fail-safe on,
so that a stale value can still be served while Redis is unavailable. That copy
is *not coherent*: another process may have changed or removed the entry since,
so the cache consults it only when Redis cannot answer.

:class:`LocalStore` is the seam for a first level that *is* coherent (a near
cache kept in sync by server-assisted invalidation): a store whose
``coherent`` is ``True`` is read before Redis on every call and written on
every read and write, whatever the fail-safe setting. Its implementation must
then guarantee that a copy it returns is never older than Redis' value.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol, runtime_checkable

from ._library import InvalidArgumentError
from .entry import StoredEntry

__all__ = ["BoundedLocalStore", "LocalStore"]


@runtime_checkable
class LocalStore(Protocol):
    """An in-process store of entries, keyed by the cache key (without namespace)."""

    coherent: bool
    """Whether the store is kept coherent with Redis (then it may answer reads first)."""

    def get(self, key: str) -> StoredEntry | None:
        """The entry kept for ``key``, or ``None``."""
        ...

    def set(self, key: str, entry: StoredEntry) -> None:
        """Keep ``entry`` for ``key`` (may evict others)."""
        ...

    def remove(self, key: str) -> None:
        """Forget ``key``."""
        ...

    def remove_by_tag(self, tag: str) -> int:
        """Forget every entry carrying ``tag``; returns how many."""
        ...

    def clear(self) -> None:
        """Forget everything."""
        ...


class BoundedLocalStore:
    """A least-recently-used store bounded by entries and by bytes of encoded values.

    Not coherent (see the module's docstring): the cache reads it only when
    Redis is unavailable.
    """

    coherent = False

    def __init__(self, max_entries: int = 10_000, max_bytes: int = 64 * 1024 * 1024) -> None:
        for name, value in (("max_entries", max_entries), ("max_bytes", max_bytes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(f"{name} must be an integer >= 1, got {value!r}")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, StoredEntry] = OrderedDict()
        self._bytes = 0

    @property
    def size_bytes(self) -> int:
        """Bytes of encoded values kept."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> StoredEntry | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def set(self, key: str, entry: StoredEntry) -> None:
        size = len(entry.data)
        if size > self.max_bytes:
            self.remove(key)  # too large to keep: never keep an older copy instead
            return
        entries = self._entries
        old = entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old.data)
        entries[key] = entry
        self._bytes += size
        while len(entries) > self.max_entries or self._bytes > self.max_bytes:
            _, evicted = entries.popitem(last=False)
            self._bytes -= len(evicted.data)

    def remove(self, key: str) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old.data)

    def remove_by_tag(self, tag: str) -> int:
        doomed = [key for key, entry in self._entries.items() if tag in entry.tags]
        for key in doomed:
            self.remove(key)
        return len(doomed)

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def __repr__(self) -> str:
        entries, size = len(self._entries), self._bytes
        return f"BoundedLocalStore(entries={entries}/{self.max_entries}, bytes={size}/{self.max_bytes})"
