"""The entries of one cache in Redis: reads, writes that hand a lease over, and the lease itself.

A read is one ``HMGET v m t`` through the repository's execute path (see
:func:`~._library.read_entry`). A write (``cache_set.lua``) stores the entry,
its tags and its TTL in one step, releases the writer's lease if it holds
one and wakes the processes waiting for the key (see :mod:`.lease`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from ._library import CacheException, read_entry
from .entry import StoredEntry
from .keyspace import KeySpace
from .lease import DistributedLease
from .scripts import CacheScripts

if TYPE_CHECKING:
    from ._library import RedisRepository

__all__ = ["EntryStore"]

_log = logging.getLogger("neuroglia.data.redis.cache")
_RELEASE_TIMEOUT: Final = 1.0


class EntryStore:
    """Reads and writes of one cache's entries, and the leases of the keys it computes."""

    __slots__ = ("_full_prefix", "_keys", "_namespace", "_now_ms", "_repository", "_scripts", "_tokens", "lease")

    def __init__(
        self, repository: RedisRepository, scripts: CacheScripts, keys: KeySpace, now_ms: Callable[[], int]
    ) -> None:
        self._repository = repository
        self._full_prefix = keys.full_prefix
        self._scripts = scripts
        self._keys = keys
        self._namespace = keys.namespace
        self._now_ms = now_ms
        # Unique per cache object (and per process after a fork): names this
        # cache as a waiter and prefixes its lease tokens.
        waiter_id = os.urandom(8).hex()
        self._tokens = (f"{waiter_id}:{n:x}" for n in itertools.count(1))
        self.lease = DistributedLease(repository, scripts, keys, waiter_id)
        """The distributed lease of the keys this cache computes."""

    def new_token(self) -> str:
        """A lease token for one attempt, unique to this cache."""
        return next(self._tokens)

    async def read(self, entry_key: str) -> StoredEntry | None:
        """The entry named ``entry_key`` (see :meth:`KeySpace.entry`), or ``None``."""
        v, m, t = await read_entry(self._repository, self._full_prefix + entry_key)
        return StoredEntry.from_fields(v, m, t)

    async def write(self, key: str, entry: StoredEntry, token: str = "") -> bool:
        """Write ``entry`` (releasing ``token``'s lease, waking waiters); ``False`` if it is already dead."""
        ttl_ms = entry.meta.stale_until_ms - self._now_ms()
        if ttl_ms <= 0:
            if token:
                await self.lease.release(key, token)
            return False
        keys = self._keys
        await self._scripts.set(
            keys=(keys.entry(key), keys.lease(key), keys.waiters(key)),
            args=(entry.data, entry.meta.encode(), ttl_ms, keys.tag_prefix, keys.wake_prefix(key), token, *entry.tags),
        )
        return True

    async def release(self, key: str, token: str | None) -> None:
        """Give a lease up, best effort: if Redis cannot be told, the lease runs out by itself."""
        if not token:
            return
        try:
            # Bounded: a release must not hold up a failing call or close() during an outage.
            async with asyncio.timeout(_RELEASE_TIMEOUT):
                await self.lease.release(key, token)
        except (CacheException, TimeoutError) as exc:
            _log.debug("cache %s: could not release the lease of %r: %r", self._namespace, key, exc)
