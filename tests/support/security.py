"""Shared pieces of the security suite: passwords, the test PKI, server launchers.

The servers of ``conftest.py``:

* ``tls`` - plain port (for readiness only) plus a TLS port whose certificate
  names only the IP ``127.0.0.1`` (so ``localhost`` is a *wrong host name*),
  signed by a test CA; client certificates are optional.
* ``mtls`` - the same, but a client certificate signed by the CA is required.
* ``self_signed`` - a TLS port presenting a self-signed certificate.
* ``acl`` - the default user holds a password (the suite's admin); the user
  ``app`` may only touch ``app:*`` keys and may not run KEYS, FLUSHALL,
  FLUSHDB, CONFIG or DEBUG; the user ``strict`` may only touch ``app:*`` keys
  and run no ``@dangerous`` command but INFO. Passwords are given to the
  server as SHA-256 hashes, so they never appear on its command line.
* ``plain`` - a plain server for the envelope, key, limit and property tests.

Certificates are made by ``trustme`` in a temporary folder.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from neuroglia.data.redis import RedisRepository
from neuroglia.data.redis.testing import RedisServer, free_port

RepoFactory = Callable[..., Awaitable[RedisRepository]]

# Long random passwords: a test that finds one of them in a log found a real leak.
ADMIN_PASSWORD = "adm-" + secrets.token_urlsafe(24)
APP_PASSWORD = "app-" + secrets.token_urlsafe(24)
APP_USER = "app"
STRICT_USER = "strict"


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the test PKI."""

    ca: Path
    other_ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_client_cert: Path
    rogue_client_key: Path
    self_signed_cert: Path
    self_signed_key: Path


@dataclass(frozen=True)
class TlsServer:
    """A running TLS server."""

    server: RedisServer
    tls_port: int
    files: TlsFiles

    def url(self, host: str = "127.0.0.1", *, query: str = "") -> str:
        return f"rediss://{host}:{self.tls_port}/0" + (f"?{query}" if query else "")


@dataclass(frozen=True)
class AclServer:
    """A running server with the ``app`` ACL user."""

    server: RedisServer

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    def url(self, user: str, password: str) -> str:
        return f"redis://{user}:{password}@{self.server.host}:{self.server.port}/0"

    @property
    def admin_url(self) -> str:
        return self.url("default", ADMIN_PASSWORD)

    @property
    def app_url(self) -> str:
        return self.url(APP_USER, APP_PASSWORD)


def start_tls_server(files: TlsFiles, auth_clients: str, cert: Path, key: Path) -> tuple[RedisServer, int]:
    tls_port = free_port()
    server = RedisServer(
        args=[
            "--tls-port", str(tls_port),
            "--tls-cert-file", str(cert),
            "--tls-key-file", str(key),
            "--tls-ca-cert-file", str(files.ca),
            "--tls-auth-clients", auth_clients,
        ]
    )  # fmt: skip
    server.start()
    return server, tls_port


def sha256_password(password: str) -> str:
    return "#" + hashlib.sha256(password.encode()).hexdigest()


def acl_server_args() -> list[str]:
    """The ACL of the ``acl`` server: an admin default user and the restricted ``app`` and ``strict`` users."""
    return [
        "--enable-debug-command", "local",  # so that DEBUG is refused by the ACL, not by the server
        "--user", "default", "on", sha256_password(ADMIN_PASSWORD), "~*", "&*", "+@all",
        "--user", APP_USER, "on", sha256_password(APP_PASSWORD), "resetchannels", "~app:*",
        "+@all", "-keys", "-flushall", "-flushdb", "-config", "-debug",
        # The least-privilege rule docs/security.md recommends: no @dangerous command but INFO.
        "--user", STRICT_USER, "on", sha256_password(APP_PASSWORD), "resetchannels", "~app:*",
        "+@all", "-@dangerous", "+info",
    ]  # fmt: skip
