"""Tag invalidation: every entry carrying a tag, removed without scanning the keyspace.

Each tag has a sorted set of the entries written with it (``cache_set.lua``
keeps it, and keeps it from growing: members leave when their entry is
overwritten without the tag, removed, or has expired). A removal moves the
tag's set aside and deletes its entries in batches (``cache_tag_remove.lua``),
so its cost is the number of entries tagged, and a large tag never blocks
the server for long. See the script for the guarantees under concurrent writes.
"""

from __future__ import annotations

from typing import Any, Final

from .flight import SingleFlight
from .keyspace import KeySpace
from .local import LocalStore
from .metrics import CacheInstruments
from .options import check_tags
from .scripts import CacheScripts

__all__ = ["DEFAULT_TAG_BATCH", "TagRemoval", "remove_tag"]

DEFAULT_TAG_BATCH: Final = 500
"""Entries deleted per script call: bounds how long one call holds the server."""


async def remove_tag(scripts: CacheScripts, keys: KeySpace, tag: str, batch: int = DEFAULT_TAG_BATCH) -> int:
    """Delete every entry that carried ``tag`` when the call began; returns how many this call deleted.

    When several removals of one tag overlap they share the work: each returns
    once every entry is deleted, but counts only the ones it deleted itself.
    """
    deleted = 0
    first = "1"
    script_keys = (keys.tag(tag), keys.tag_pending(tag))
    while True:
        done, left = await scripts.tag_remove(keys=script_keys, args=(tag, batch, keys.tag_prefix, first))
        first = "0"
        deleted += int(done)
        if int(left) == 0:
            return deleted


class TagRemoval:
    """Removals by tag of one cache: in Redis, in the first level, and from what running flights may store."""

    __slots__ = ("_batch", "_instruments", "_keys", "_local", "_running", "_scripts")

    def __init__(
        self,
        scripts: CacheScripts,
        keys: KeySpace,
        local: LocalStore,
        running: tuple[SingleFlight[Any], ...],
        instruments: CacheInstruments,
        batch: int,
    ) -> None:
        self._scripts = scripts
        self._keys = keys
        self._local = local
        self._running = running
        self._instruments = instruments
        self._batch = batch

    def _forget(self, tag: str) -> None:
        self._local.remove_by_tag(tag)
        for flights in self._running:
            flights.tag_removed(tag)

    async def remove(self, tag: str) -> int:
        """Remove every entry tagged ``tag``; how many this call deleted."""
        (tag,) = check_tags([tag], "tag")
        self._forget(tag)
        deleted = await remove_tag(self._scripts, self._keys, tag, self._batch)
        # Again: a read that crossed the removal may have kept an entry it deleted.
        self._forget(tag)
        self._instruments.tag_invalidation(deleted)
        return deleted
