"""The members of a test Sentinel group: a sentinel process, and the TLS settings every member shares."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .server import RedisServer

__all__ = ["SentinelServer", "SentinelTls"]


@dataclass(frozen=True)
class SentinelTls:
    """Certificates for a group that speaks TLS only to its clients and between its members.

    ``cert_file``/``key_file`` are every server's (they must name
    ``127.0.0.1``), ``ca_file`` the CA that signed them. Client certificates
    are not required.
    """

    cert_file: str
    key_file: str
    ca_file: str

    def args(self, port: int) -> list[str]:
        """The server arguments for a TLS port ``port`` (the plain port stays, for the kit's helpers)."""
        return [
            "--tls-port", str(port),
            "--tls-cert-file", self.cert_file,
            "--tls-key-file", self.key_file,
            "--tls-ca-cert-file", self.ca_file,
            "--tls-auth-clients", "no",
            "--tls-replication", "yes",
        ]  # fmt: skip


class SentinelServer(RedisServer):
    """A ``redis-server --sentinel`` process monitoring one primary, from a config file of its own."""

    def __init__(
        self,
        service_name: str,
        primary: tuple[str, int],
        *,
        quorum: int = 2,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 3000,
        auth_pass: str | None = None,
        requirepass: str | None = None,
        args: Sequence[str] = (),
    ) -> None:
        super().__init__(args=args)
        # The sentinel rewrites this file as it learns the topology: it is written once, here.
        self.config_path = Path(self._dir) / "sentinel.conf"
        host, port = primary
        self.config_path.write_text(
            "sentinel resolve-hostnames no\n"
            f"sentinel monitor {service_name} {host} {port} {quorum}\n"
            f"sentinel down-after-milliseconds {service_name} {down_after_ms}\n"
            f"sentinel failover-timeout {service_name} {failover_timeout_ms}\n"
            f"sentinel parallel-syncs {service_name} 1\n"
            + (f"sentinel auth-pass {service_name} {auth_pass}\n" if auth_pass else "")
            + (f"requirepass {requirepass}\n" if requirepass else "")
        )

    def _command(self) -> list[str]:
        return [self.binary, str(self.config_path), "--sentinel", *super()._command()[1:]]

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>`` (a sentinel has no databases)."""
        return f"redis://{self.host}:{self.port}"

    def __repr__(self) -> str:
        return f"SentinelServer(port={self.port}, pid={self.pid})"
