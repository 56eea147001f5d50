"""Tag invalidation: every entry carrying a tag, removed without scanning the keyspace.

Each tag has a sorted set of the entries written with it (``cache_set.lua``
keeps it, and keeps it from growing: members leave when their entry is
overwritten without the tag, removed, or has expired). A removal moves the
tag's set aside and deletes its entries in batches (``cache_tag_remove.lua``),
so its cost is the number of entries tagged, and a large tag never blocks
the server for long. See the script for the guarantees under concurrent writes.
"""

from __future__ import annotations

from typing import Final

from .keyspace import KeySpace
from .scripts import CacheScripts

__all__ = ["DEFAULT_TAG_BATCH", "remove_tag"]

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
