"""NearCacheStore: the entries of the near cache, their bounds, and which reads may be stored.

Entries are raw replies keyed by the command that read them
(``("GET", "app:menu")``, ``("HGET", "app:order:7", "status")``), indexed by
the Redis key they depend on, so that an invalidation of a key drops every
entry read from it. They are bounded by count and by bytes (least recently
used first) and each has a deadline: the read's time plus the key's time to
live in Redis, or ``max_age``, whichever comes first.

Which reads may be stored: a read *begins* before its command is sent and
*ends* when its reply is in. Each Redis key held or being read has a state
object; invalidating the key (a message from Redis, a write by this
process) or flushing the store replaces that object. A read stores its reply
only if the state it began with is still the key's state: any invalidation
or flush while it was in flight, even one that arrived before the reply,
leaves its reply unstored. That is the equivalent of a per-key version,
without keeping a counter for every key ever read.

Not thread-safe: one event loop uses it, as it uses the repository.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

__all__ = ["ENTRY_OVERHEAD", "MAX_KEY_LENGTH", "MISS", "Entry", "NearCacheStore", "ReadTicket", "key_of", "size_of"]


class _Miss:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISS"


MISS: Final = _Miss()
"""Returned by :meth:`NearCacheStore.get` when nothing may be served (``None`` is a cached reply: a missing key)."""

ENTRY_OVERHEAD: Final = 160
"""Bytes counted per entry on top of its reply and its command (objects, dict slots)."""

MAX_KEY_LENGTH: Final = 1024
"""Keys longer than this are never cached (writes are checked for keys up to this length)."""


def key_of(key: Any) -> Any:
    """The form a Redis key is indexed under: ``str`` when it is UTF-8 text, else its ``bytes``.

    Commands name a key as ``str`` or ``bytes`` and Redis' messages as
    ``bytes``; both must find the same entries.
    """
    if key.__class__ is bytes:
        try:
            return key.decode()
        except UnicodeDecodeError:
            return key
    return key


def size_of(reply: Any) -> int:
    """Bytes a raw reply holds (payloads; 8 per number, nil or list slot)."""
    cls = reply.__class__
    if cls is bytes or cls is str:
        return len(reply)
    if cls is list:
        return sum(size_of(item) for item in reply) + 8 * len(reply)
    return 8


class Entry:
    """One cached reply."""

    __slots__ = ("args", "expires", "key", "reply", "size")

    def __init__(self, args: tuple[Any, ...], key: Any, reply: Any, size: int, expires: float) -> None:
        self.args = args
        self.key = key  # indexed form (key_of)
        self.reply = reply
        self.size = size
        self.expires = expires

    def __repr__(self) -> str:
        return f"Entry({self.args!r}, size={self.size})"


class _KeyState:
    """A key's entries and its reads in flight; replaced when the key is invalidated."""

    __slots__ = ("entries", "readers")

    def __init__(self) -> None:
        self.entries: dict[tuple[Any, ...], Entry] = {}
        self.readers = 0


class ReadTicket:
    """Reads in flight of some keys: what :meth:`NearCacheStore.store` checks."""

    __slots__ = ("keys", "states")

    def __init__(self, keys: list[Any], states: list[_KeyState]) -> None:
        self.keys = keys
        self.states = states


RemovalListener = Callable[[list[Entry], str], None]
"""Told of entries removed, with why: ``invalidated``, ``written``, ``evicted``, ``expired``, ``flushed``."""


class NearCacheStore:
    """The entries of a near cache; see the module docstring.

    ``max_age`` (seconds, ``None``: no limit) bounds every entry's life;
    ``clock`` is monotonic seconds; ``on_remove`` is told of removals (not
    of replacements by a newer read of the same command).
    """

    def __init__(
        self,
        max_entries: int,
        max_bytes: int,
        max_age: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_remove: RemovalListener | None = None,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.clock = clock
        self.on_remove = on_remove
        self._entries: OrderedDict[tuple[Any, ...], Entry] = OrderedDict()
        self._keys: dict[Any, _KeyState] = {}
        self._bytes = 0

    # -- figures ---------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """Bytes counted for the entries held."""
        return self._bytes

    @property
    def table(self) -> OrderedDict[tuple[Any, ...], Entry]:
        """The entries by command, least recently used first (read-only use: the near cache's hit path)."""
        return self._entries

    def entries(self) -> Iterator[Entry]:
        """The entries held, least recently used first (a snapshot: safe to remove while iterating)."""
        return iter(list(self._entries.values()))

    def keys_being_read(self) -> list[Any]:
        """The keys (indexed form) with reads in flight."""
        return [key for key, state in self._keys.items() if state.readers]

    def tracked_keys(self) -> int:
        """Keys with entries or reads in flight."""
        return len(self._keys)

    # -- reads -------------------------------------------------------------------------

    def get(self, args: tuple[Any, ...]) -> Any:
        """The reply cached for ``args``, or :data:`MISS` (an expired entry is dropped)."""
        entry = self._entries.get(args)
        if entry is None:
            return MISS
        if self.clock() >= entry.expires:
            self._drop([entry], "expired")
            return MISS
        self._entries.move_to_end(args)
        return entry.reply

    def begin(self, keys: Iterable[Any]) -> ReadTicket:
        """A read of ``keys`` starts (before its command is sent); pair with :meth:`end`."""
        indexed: list[Any] = []
        states: list[_KeyState] = []
        known = self._keys
        for key in keys:
            name = key_of(key)
            state = known.get(name)
            if state is None:
                state = known[name] = _KeyState()
            state.readers += 1
            indexed.append(name)
            states.append(state)
        return ReadTicket(indexed, states)

    def end(self, ticket: ReadTicket) -> None:
        """The read is over (stored, failed or cancelled)."""
        known = self._keys
        for name, state in zip(ticket.keys, ticket.states, strict=True):
            state.readers -= 1
            if not state.readers and not state.entries and known.get(name) is state:
                del known[name]
        ticket.states = []
        ticket.keys = []

    def valid(self, ticket: ReadTicket, index: int) -> bool:
        """Whether nothing invalidated key ``index`` of ``ticket`` since the read began."""
        return self._keys.get(ticket.keys[index]) is ticket.states[index]

    def store(self, ticket: ReadTicket, index: int, args: tuple[Any, ...], reply: Any, ttl: float | None) -> bool:
        """Keep ``reply`` for ``args`` if key ``index`` of ``ticket`` was not invalidated meanwhile.

        ``ttl`` is the key's remaining time to live in seconds counted from
        when the read began (``None``: none). Returns whether it was kept.
        """
        state = ticket.states[index]
        if self._keys.get(ticket.keys[index]) is not state:
            return False
        now = self.clock()
        life = self.max_age
        if ttl is not None:
            life = ttl if life is None else min(life, ttl)
        if life is not None and life <= 0:
            return False
        size = ENTRY_OVERHEAD + size_of(reply) + sum(size_of(arg) for arg in args)
        if size > self.max_bytes:
            return False
        entry = Entry(args, ticket.keys[index], reply, size, now + life if life is not None else float("inf"))
        entries = self._entries
        old = entries.pop(args, None)
        if old is not None:
            self._bytes -= old.size
            old_state = self._keys.get(old.key)
            if old_state is not None:
                old_state.entries.pop(args, None)
        entries[args] = entry
        state.entries[args] = entry
        self._bytes += size
        if len(entries) > self.max_entries or self._bytes > self.max_bytes:
            self._shrink()
        return True

    def _shrink(self) -> None:
        entries = self._entries
        evicted: list[Entry] = []
        while entries and (len(entries) > self.max_entries or self._bytes > self.max_bytes):
            _, entry = entries.popitem(last=False)
            self._bytes -= entry.size
            self._forget(entry)
            evicted.append(entry)
        if evicted and self.on_remove is not None:
            self.on_remove(evicted, "evicted")

    # -- removals ----------------------------------------------------------------------

    def _forget(self, entry: Entry) -> None:
        """Unlink ``entry`` from its key's state (already out of the LRU)."""
        state = self._keys.get(entry.key)
        if state is None:
            return
        state.entries.pop(entry.args, None)
        if not state.entries and not state.readers:
            del self._keys[entry.key]

    def _drop(self, dropped: list[Entry], reason: str) -> None:
        entries = self._entries
        for entry in dropped:
            if entries.pop(entry.args, None) is entry:
                self._bytes -= entry.size
            self._forget(entry)
        if dropped and self.on_remove is not None:
            self.on_remove(dropped, reason)

    def invalidate(self, keys: Iterable[Any], reason: str = "invalidated") -> int:
        """Forget ``keys``: their entries, and any read of them in flight may no longer store.

        Returns how many entries were dropped.
        """
        known = self._keys
        if not known:
            return 0
        entries = self._entries
        dropped: list[Entry] = []
        for key in keys:
            if len(key) > MAX_KEY_LENGTH:
                continue
            state = known.pop(key_of(key), None)
            if state is None:
                continue
            for args, entry in state.entries.items():
                if entries.pop(args, None) is entry:
                    self._bytes -= entry.size
                    dropped.append(entry)
        if dropped and self.on_remove is not None:
            self.on_remove(dropped, reason)
        return len(dropped)

    def invalidate_where(self, keep: Callable[[Any], bool], reason: str = "invalidated") -> int:
        """Forget every key (held or being read) for which ``keep(key)`` is false; returns entries dropped."""
        doomed = [key for key in self._keys if not keep(key)]
        return self.invalidate(doomed, reason) if doomed else 0

    def flush(self) -> int:
        """Forget everything; reads in flight may no longer store. Returns how many entries were dropped."""
        dropped = list(self._entries.values())
        self._entries.clear()  # the same object: the near cache's hit path holds it
        self._keys = {}
        self._bytes = 0
        if dropped and self.on_remove is not None:
            self.on_remove(dropped, "flushed")
        return len(dropped)

    def __repr__(self) -> str:
        return (
            f"NearCacheStore(entries={len(self._entries)}/{self.max_entries}, "
            f"bytes={self._bytes}/{self.max_bytes}, keys={len(self._keys)})"
        )
