"""What health checks and exporters read from a repository, as protocols.

They observe a repository through these few properties and methods rather
than importing it, so observability stays below the repository in the
layers and works with anything that offers them.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from ..resilience.breaker import CircuitBreakerPolicy
from .metrics import CacheMetrics

__all__ = ["Observed", "ObservedConfig", "PoolFigures"]


class PoolFigures(Protocol):
    """Connection pool figures (``ConnectionPoolInfo``)."""

    @property
    def created_connections(self) -> int: ...
    @property
    def in_use_connections(self) -> int: ...
    @property
    def available_connections(self) -> int: ...
    @property
    def max_connections(self) -> int: ...


class ObservedConfig(Protocol):
    """The settings an observer shows."""

    @property
    def redacted_url(self) -> str: ...
    @property
    def metrics_prefix(self) -> str: ...
    @property
    def scheme(self) -> str: ...


@runtime_checkable
class Observed(Protocol):
    """A repository as health checks and exporters see it."""

    @property
    def config(self) -> ObservedConfig: ...
    @property
    def metrics(self) -> CacheMetrics | None: ...
    @property
    def circuit_breaker(self) -> CircuitBreakerPolicy | None: ...
    @property
    def connection_pool(self) -> PoolFigures: ...
    async def ping(self) -> bool: ...
    async def info(self, section: str | None = None) -> dict[str, Any]: ...
