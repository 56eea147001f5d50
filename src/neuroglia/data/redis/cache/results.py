"""What a call returns: values and :class:`~.entry.CacheResult` objects built from entries and computations.

Building a result also counts it (a hit, a fail-safe copy served again, a
stale value and why): every value the cache serves is counted in one place.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .entry import CacheResult, StoredEntry, ValueSource
from .metrics import CacheInstruments
from .shape import ValueShape

if TYPE_CHECKING:
    from ._library import EnvelopeSerializer

__all__ = ["Outcome", "Results"]


class Outcome:
    """What a flight produced: the factory's own value and/or the stored entry."""

    __slots__ = ("entry", "has_value", "source", "value")

    def __init__(self, source: ValueSource, entry: StoredEntry | None, value: Any = None, has_value: bool = False):
        self.source = source
        self.entry = entry
        self.value = value
        self.has_value = has_value


class Results:
    """The results of one cache's calls, decoded with its codec and counted in its instruments."""

    __slots__ = ("_codec", "_instruments")

    def __init__(self, codec: EnvelopeSerializer, instruments: CacheInstruments) -> None:
        self._codec = codec
        self._instruments = instruments

    def of(self, entry: StoredEntry, shape: ValueShape[Any], source: ValueSource) -> CacheResult[Any]:
        """The result serving ``entry`` (not counted)."""
        return _with_meta(shape.load(self._codec.loads(entry.data)), source, entry)

    def count_hit(self, entry: StoredEntry, *, local: bool = False) -> None:
        """Count a fresh ``entry`` served."""
        if entry.meta.is_failsafe_copy:
            self._instruments.stale("throttle")  # a stale value, re-served during the fail-safe throttle
        else:
            self._instruments.hit(local=local)

    def stale(
        self,
        entry: StoredEntry,
        shape: ValueShape[Any],
        source: ValueSource,
        reason: str,
        error: BaseException | None,
    ) -> CacheResult[Any]:
        """The result serving ``entry`` stale for ``reason`` (counted)."""
        self._instruments.stale(reason)
        return replace(self.of(entry, shape, source), is_stale=True, error=error)

    def of_outcome(self, outcome: Outcome, shape: ValueShape[Any]) -> CacheResult[Any]:
        """The result of a flight: the factory's own value when the shape keeps it, else the stored entry's."""
        entry = outcome.entry
        if outcome.has_value and (entry is None or shape.keeps(outcome.value)):
            if entry is None:
                return CacheResult(outcome.value, outcome.source)
            return _with_meta(outcome.value, outcome.source, entry)
        assert entry is not None
        return self.of(entry, shape, outcome.source)


def _with_meta(value: Any, source: ValueSource, entry: StoredEntry) -> CacheResult[Any]:
    meta = entry.meta
    return CacheResult(
        value, source, meta.is_failsafe_copy, None, meta.expires_ms / 1000, meta.created_ms / 1000, entry.tags
    )
