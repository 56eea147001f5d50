"""Fixtures of the security suite: private redis-server processes with TLS and ACL users.

Every server here is started by :class:`RedisServer` on free loopback ports,
without persistence, for this suite only, and stopped by pid at the end. The
shared server on 6379 and ``$REDIS_URL`` are never used: these servers need
options (TLS, ACL users) that only a private server can have. What each
server is: see ``securitykit.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from neuroglia.data.redis.testing import RedisServer
from tests.support.security import AclServer, TlsFiles, TlsServer, acl_server_args, start_tls_server


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    folder = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    other_ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")  # an IP SAN only: "localhost" does not match
    client = ca.issue_cert("client.app.test")
    rogue = other_ca.issue_cert("client.app.test")
    lonely = trustme.CA()  # its self-signed certificate is what an impostor would present

    def write(blob: trustme.Blob, name: str) -> Path:
        path = folder / name
        blob.write_to_path(str(path))
        return path

    return TlsFiles(
        ca=write(ca.cert_pem, "ca.pem"),
        other_ca=write(other_ca.cert_pem, "other-ca.pem"),
        server_cert=write(server.cert_chain_pems[0], "server.crt"),
        server_key=write(server.private_key_pem, "server.key"),
        client_cert=write(client.cert_chain_pems[0], "client.crt"),
        client_key=write(client.private_key_pem, "client.key"),
        rogue_client_cert=write(rogue.cert_chain_pems[0], "rogue.crt"),
        rogue_client_key=write(rogue.private_key_pem, "rogue.key"),
        self_signed_cert=write(lonely.cert_pem, "self-signed.crt"),
        self_signed_key=write(lonely.private_key_pem, "self-signed.key"),
    )


def _serve_tls(tls_files: TlsFiles, auth_clients: str, cert: Path, key: Path) -> Iterator[TlsServer]:
    server, port = start_tls_server(tls_files, auth_clients, cert, key)
    try:
        yield TlsServer(server, port, tls_files)
    finally:
        server.close()


@pytest.fixture(scope="session")
def tls_server(tls_files: TlsFiles) -> Iterator[TlsServer]:
    yield from _serve_tls(tls_files, "optional", tls_files.server_cert, tls_files.server_key)


@pytest.fixture(scope="session")
def mtls_server(tls_files: TlsFiles) -> Iterator[TlsServer]:
    yield from _serve_tls(tls_files, "yes", tls_files.server_cert, tls_files.server_key)


@pytest.fixture(scope="session")
def self_signed_server(tls_files: TlsFiles) -> Iterator[TlsServer]:
    """A TLS server whose certificate no configured CA signed."""
    yield from _serve_tls(tls_files, "no", tls_files.self_signed_cert, tls_files.self_signed_key)


@pytest.fixture(scope="session")
def acl_server() -> Iterator[AclServer]:
    server = RedisServer(args=acl_server_args())
    server.start()
    try:
        yield AclServer(server)
    finally:
        server.close()
