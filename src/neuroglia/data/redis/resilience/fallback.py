"""A bounded, in-process store of last-known-good read replies.

When Redis is unavailable (or the breaker is open) a read may be answered
from here with the last value this process saw for the same command,
flagged as stale. Off by default: a stale answer is only right for data that
tolerates it (menus, catalogs), and the caller opts in per repository.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from ..exceptions import ConfigurationError

__all__ = ["FallbackPolicy", "LastKnownGood"]


@dataclass(frozen=True, kw_only=True, slots=True)
class FallbackPolicy:
    """Settings of the stale-read fallback.

    ``max_entries`` bounds memory (least recently used entries go first);
    ``max_staleness`` is how old, in seconds, a remembered reply may be and
    still be served.
    """

    max_entries: int = 1000
    max_staleness: float = 300.0

    def __post_init__(self) -> None:
        if isinstance(self.max_entries, bool) or not isinstance(self.max_entries, int) or self.max_entries < 1:
            raise ConfigurationError(f"fallback.max_entries: must be an integer >= 1, got {self.max_entries!r}")
        if not isinstance(self.max_staleness, int | float) or not self.max_staleness > 0:
            raise ConfigurationError(f"fallback.max_staleness: must be seconds > 0, got {self.max_staleness!r}")

    @classmethod
    def coerce(cls, value: FallbackPolicy | Mapping[str, Any] | bool | None) -> FallbackPolicy | None:
        """Accept a policy, a dict, ``True`` (defaults), or ``None``/``False`` (off)."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, FallbackPolicy):
            return value
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - {"max_entries", "max_staleness"})
            if unknown:
                raise ConfigurationError(f"fallback: unknown keys {unknown}; allowed: ['max_entries', 'max_staleness']")
            return cls(**value)
        raise ConfigurationError(
            f"fallback: expected a FallbackPolicy, a dict, a bool or None, got {type(value).__name__}"
        )


class LastKnownGood:
    """An LRU of raw replies keyed by the command that produced them."""

    def __init__(self, policy: FallbackPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self._policy = policy
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()

    def remember(self, key: Hashable, reply: Any) -> None:
        """Record the latest reply for ``key``."""
        entries = self._entries
        entries[key] = (self._clock(), reply)
        entries.move_to_end(key)
        if len(entries) > self._policy.max_entries:
            entries.popitem(last=False)

    def forget(self, key: Hashable) -> None:
        """Drop what is remembered for ``key``."""
        self._entries.pop(key, None)

    def recall(self, key: Hashable) -> tuple[bool, Any]:
        """``(True, reply)`` if a fresh-enough reply is remembered, else ``(False, None)``."""
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        stored_at, reply = entry
        if self._clock() - stored_at > self._policy.max_staleness:
            del self._entries[key]
            return False, None
        return True, reply

    def __len__(self) -> int:
        return len(self._entries)
