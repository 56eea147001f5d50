"""Early refresh: recompute a key that is still fresh, in the background, before callers miss it.

A hit starts a refresh past the eager-refresh threshold (a fraction of the
entry's fresh time) or when XFetch's draw says so: the closer the expiry and
the longer the factory took, the likelier. Callers keep getting the fresh
value meanwhile. One refresh runs per key in a process, none while the key
is being computed anyway, and across processes the lease decides, without
waiting: a process that does not get it leaves the refresh to the holder.
A failed refresh leaves the entry as it was.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from ._library import CacheUnavailableError
from .compute import Computation
from .entry import EntryMeta, StoredEntry
from .flight import Flight, SingleFlight
from .lease import LeaseState
from .metrics import CacheInstruments
from .options import CacheOptions
from .results import Outcome
from .shape import ValueShape
from .store import EntryStore
from .timing import EntryClock

__all__ = ["EarlyRefresh"]

_log = logging.getLogger("neuroglia.data.redis.cache")


class EarlyRefresh:
    """The background refreshes of one cache."""

    __slots__ = ("_computation", "_flights", "_instruments", "_namespace", "_refreshes", "_store", "_timing")

    def __init__(
        self,
        refreshes: SingleFlight[None],
        flights: SingleFlight[Outcome],
        computation: Computation,
        store: EntryStore,
        timing: EntryClock,
        instruments: CacheInstruments,
        namespace: str,
    ) -> None:
        self._refreshes = refreshes
        self._flights = flights
        self._computation = computation
        self._store = store
        self._timing = timing
        self._instruments = instruments
        self._namespace = namespace

    def due(self, meta: EntryMeta, options: CacheOptions, now_ms: int) -> bool:
        """Whether a hit on a fresh entry with ``meta`` should start a refresh."""
        if meta.is_failsafe_copy:
            return False  # the fail-safe throttle keeps the factory quiet until it ends
        if options.eager is not None:
            start = meta.created_ms + (meta.expires_ms - meta.created_ms) * options.eager
            if now_ms >= start:
                return True
        if options.xfetch_beta and meta.duration_ms:
            # XFetch: refresh when now - delta * beta * ln(U) >= expiry, U uniform in (0, 1].
            draw = -meta.duration_ms * options.xfetch_beta * math.log(1.0 - self._timing.random())
            return now_ms + draw >= meta.expires_ms
        return False

    def start(
        self, key: str, factory: Callable[..., Any], opts: CacheOptions, shape: ValueShape[Any], entry: StoredEntry
    ) -> None:
        """Refresh ``key`` (whose fresh entry is ``entry``) in the background, unless it is already."""
        if self._refreshes.get(key) is not None or self._flights.get(key) is not None:
            return  # one refresh at a time per key, and none while the key is being computed anyway

        def make(flight: Flight[None]) -> Any:
            return self._refresh(flight, key, factory, opts, shape, entry)

        self._refreshes.start(key, make, f"rediscache-refresh:{self._namespace}:{key}")

    async def _refresh(
        self,
        flight: Flight[None],
        key: str,
        factory: Callable[..., Any],
        opts: CacheOptions,
        shape: ValueShape[Any],
        entry: StoredEntry,
    ) -> None:
        """Recompute a key that is still fresh, in the background, unless another process already does."""
        instruments = self._instruments
        token: str | None = None
        try:
            if opts.lease_s is not None:
                token = self._store.new_token()
                expires = entry.meta.expires_ms
                got = await self._store.lease.acquire(
                    key, token, max(1, round(opts.lease_s * 1000)), lambda: expires, wait=False
                )
                if got.state is not LeaseState.ACQUIRED:
                    instruments.eager_refresh("skipped")  # refreshed meanwhile, or being refreshed elsewhere
                    return
            # No stale value: a failed refresh must not turn the fresh entry into a fail-safe copy.
            await self._computation.compute(flight, key, factory, opts, shape, None, token, False)
            instruments.eager_refresh("ok")
        except CacheUnavailableError as exc:
            instruments.eager_refresh("skipped")
            _log.debug("cache %s: eager refresh of %r skipped, Redis is unavailable: %s", self._namespace, key, exc)
        except Exception as exc:
            instruments.eager_refresh("error")
            _log.warning("cache %s: eager refresh of %r failed: %r", self._namespace, key, exc)
