"""Numbers that can also be awaited.

The framework's page reads the same figures both ways:
``self.metrics.get_counter("cache_hit")`` in arithmetic and
``await self.metrics.get_counter(...)`` or
``await redis.connection_pool.created_connections`` elsewhere. These
subclasses of ``int`` and ``float`` support both without a coroutine that
could be forgotten un-awaited.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

__all__ = ["AwaitableFloat", "AwaitableInt"]


class AwaitableInt(int):
    """An ``int`` that ``await`` returns unchanged (as a plain ``int``)."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, int]:
        return int(self)
        yield  # pragma: no cover - makes this a generator; never reached


class AwaitableFloat(float):
    """A ``float`` that ``await`` returns unchanged (as a plain ``float``)."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, float]:
        return float(self)
        yield  # pragma: no cover - makes this a generator; never reached
