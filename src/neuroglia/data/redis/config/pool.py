"""ConnectionPoolConfig: connection pool and socket settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .checks import fail, field_default, known_fields, positive

__all__ = ["ConnectionPoolConfig"]

_POOL_CLASS_KWARGS: Final[tuple[str, ...]] = (
    "max_connections",
    "max_connections_per_pool",
    "retry_on_timeout",
    "socket_keepalive",
    "socket_keepalive_options",
)


@dataclass(frozen=True, kw_only=True, slots=True)
class ConnectionPoolConfig:
    """Connection pool and socket settings.

    The pool is bounded: when all ``max_connections`` are busy a command waits
    up to ``pool_timeout`` seconds for one to be released, then fails with
    :class:`~neuroglia.data.redis.CacheUnavailableError`.

    With the multiplexed transport (the default), ``max_connections`` bounds
    all its connections: ``multiplexed_connections`` shared by every caller
    plus dedicated ones for blocking commands; ``max_in_flight`` bounds the
    commands outstanding on one shared connection (callers wait for room up
    to ``pool_timeout``). See ``docs/transport.md``.
    """

    max_connections: int = 50
    retry_on_timeout: bool = True
    health_check_interval: float = 30
    socket_timeout: float | None = 5.0
    socket_connect_timeout: float | None = 2.0
    socket_keepalive: bool = True
    socket_keepalive_options: Mapping[int, int | bytes] | None = None
    pool_timeout: float | None = 2.0
    connection_pool_class_kwargs: Mapping[str, Any] = field(default_factory=dict)
    skip_full_coverage_check: bool = False
    decode_responses: bool = True
    multiplexed_connections: int = 1
    max_in_flight: int = 1024

    def __post_init__(self) -> None:
        extra = dict(self.connection_pool_class_kwargs)
        unknown = sorted(set(extra) - set(_POOL_CLASS_KWARGS))
        if unknown:
            raise fail(
                "connection_pool.connection_pool_class_kwargs",
                f"unknown keys {unknown}; allowed: {list(_POOL_CLASS_KWARGS)}",
            )
        # The page passes pool settings twice (top level and in the kwargs dict):
        # fold the dict into the fields, refusing values that disagree.
        folded: dict[str, Any] = {}
        for key, value in extra.items():
            name = "max_connections" if key == "max_connections_per_pool" else key
            default = field_default(ConnectionPoolConfig, name)
            current = getattr(self, name)
            if current != default and current != value:
                raise fail(
                    f"connection_pool.{name}",
                    f"{current!r} contradicts connection_pool_class_kwargs[{key!r}]={value!r}",
                )
            folded[name] = value
        for name, value in folded.items():
            object.__setattr__(self, name, value)
        max_conn = self.max_connections
        if isinstance(max_conn, bool) or not isinstance(max_conn, int) or max_conn < 1:
            raise fail("connection_pool.max_connections", f"must be an integer >= 1, got {max_conn!r}")
        for name in ("multiplexed_connections", "max_in_flight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise fail(f"connection_pool.{name}", f"must be an integer >= 1, got {value!r}")
        positive("connection_pool.health_check_interval", self.health_check_interval, allow_zero=True)
        positive("connection_pool.socket_timeout", self.socket_timeout)
        positive("connection_pool.socket_connect_timeout", self.socket_connect_timeout)
        positive("connection_pool.pool_timeout", self.pool_timeout)
        for flag in ("retry_on_timeout", "socket_keepalive", "skip_full_coverage_check", "decode_responses"):
            if not isinstance(getattr(self, flag), bool):
                raise fail(f"connection_pool.{flag}", f"expected True or False, got {getattr(self, flag)!r}")

    @classmethod
    def coerce(cls, value: ConnectionPoolConfig | Mapping[str, Any] | None) -> ConnectionPoolConfig:
        """Accept a config, a dict of its fields, or ``None`` for the defaults."""
        if value is None:
            return cls()
        if isinstance(value, ConnectionPoolConfig):
            return value
        if isinstance(value, Mapping):
            return cls(**known_fields(cls, value, "connection_pool"))
        raise fail("connection_pool", f"expected a ConnectionPoolConfig or a dict, got {type(value).__name__}")
