"""The transport's settings, read once from a :class:`~neuroglia.data.redis.RedisConfig`."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .handshake import Credentials
from .tls import TlsSettings, client_context

if TYPE_CHECKING:
    from ...config import RedisConfig

__all__ = ["ConnectionSettings"]

DEFAULT_MAX_IN_FLIGHT = 1024


@dataclass(frozen=True, kw_only=True)
class ConnectionSettings:
    """Where the server is, how to connect, and the bounds of the transport.

    ``max_connections`` bounds every connection the transport opens:
    ``multiplexed_connections`` shared ones plus dedicated ones for blocking
    commands. ``max_in_flight`` bounds the commands queued or outstanding on
    one shared connection (callers wait for room, up to ``pool_timeout``).
    ``socket_timeout`` is the stall bound: a shared connection silent that
    long with commands outstanding is closed.
    """

    host: str | None = "localhost"
    port: int | None = 6379
    unix_socket_path: str | None = None
    db: int = 0
    credentials: Credentials = field(default_factory=Credentials)
    client_name: str | None = None
    protocol: int = 2
    tls: ssl.SSLContext | None = None
    client_certificate: bool = False  # a client certificate is configured (mutual TLS)
    server_hostname: str | None = None
    socket_timeout: float | None = 5.0
    socket_connect_timeout: float | None = 5.0
    socket_keepalive: bool = True
    socket_keepalive_options: Mapping[int, int | bytes] | None = None
    health_check_interval: float = 30.0
    max_connections: int = 50
    multiplexed_connections: int = 1
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    pool_timeout: float | None = 5.0

    @property
    def address(self) -> str:
        """The server's address for messages (never credentials)."""
        if self.unix_socket_path is not None:
            return f"unix:{self.unix_socket_path}"
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def shared_connections(self) -> int:
        """How many multiplexed connections are opened (never more than ``max_connections``)."""
        return max(1, min(self.multiplexed_connections, self.max_connections))

    @property
    def dedicated_connections(self) -> int:
        """How many dedicated connections may be open at once (0: blocking commands borrow a shared one)."""
        return self.max_connections - self.shared_connections

    @classmethod
    def from_config(cls, config: RedisConfig, **overrides: Any) -> ConnectionSettings:
        """Settings for ``config`` (``redis://``, ``rediss://`` or ``unix://``)."""
        pool = config.pool
        tls = None
        if config.scheme == "rediss":
            tls = client_context(
                TlsSettings(
                    ca_certs=config.ssl_ca_certs,
                    certfile=config.ssl_certfile,
                    keyfile=config.ssl_keyfile,
                    cert_reqs=config.ssl_cert_reqs,
                    check_hostname=config.ssl_check_hostname,
                    insecure_skip_verify=config.ssl_insecure_skip_verify,
                ),
                config.redacted_url,
            )
        values: dict[str, Any] = {
            "host": config.host,
            "port": config.port,
            "unix_socket_path": config.unix_socket_path,
            "db": config.db or 0,
            "credentials": Credentials(config.username, config.password),
            "client_name": config.client_name,
            "protocol": int(getattr(config, "protocol", 2) or 2),
            "tls": tls,
            "client_certificate": bool(config.ssl_certfile),
            "server_hostname": config.host if tls is not None else None,
            "socket_timeout": pool.socket_timeout,
            "socket_connect_timeout": pool.socket_connect_timeout,
            "socket_keepalive": pool.socket_keepalive,
            "socket_keepalive_options": pool.socket_keepalive_options,
            "health_check_interval": float(pool.health_check_interval or 0),
            "max_connections": pool.max_connections,
            "multiplexed_connections": int(getattr(pool, "multiplexed_connections", 1)),
            "max_in_flight": int(getattr(pool, "max_in_flight", DEFAULT_MAX_IN_FLIGHT)),
            "pool_timeout": pool.pool_timeout,
        }
        values.update(overrides)
        return cls(**values)
