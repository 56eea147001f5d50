"""Live figures of a repository's connection pool, readable plain or awaited."""

from __future__ import annotations

from typing import Protocol

from ..observability.awaitable import AwaitableInt
from ..transport.contract import PoolStats


class _HasPool(Protocol):
    def _pool_stats(self) -> PoolStats: ...

__all__ = ["ConnectionPoolInfo"]


class ConnectionPoolInfo:
    """Live figures of the repository's connection pool.

    Each figure is an ``int`` that can also be awaited, as the framework's
    page does with ``await redis.connection_pool.created_connections``.
    """

    __slots__ = ("_stats",)

    def __init__(self, repository: _HasPool) -> None:
        self._stats = repository._pool_stats

    @property
    def created_connections(self) -> AwaitableInt:
        """Connections currently open (idle or in use)."""
        return AwaitableInt(self._stats().created_connections)

    @property
    def in_use_connections(self) -> AwaitableInt:
        """Connections lent to a running command."""
        return AwaitableInt(self._stats().in_use_connections)

    @property
    def available_connections(self) -> AwaitableInt:
        """Idle connections ready for the next command."""
        return AwaitableInt(self._stats().available_connections)

    @property
    def max_connections(self) -> AwaitableInt:
        """The pool's bound."""
        return AwaitableInt(self._stats().max_connections)

    def __repr__(self) -> str:
        s = self._stats()
        return (
            f"ConnectionPoolInfo(created={s.created_connections}, in_use={s.in_use_connections}, "
            f"max={s.max_connections})"
        )
