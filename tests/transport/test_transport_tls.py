"""TLS on the multiplexed transport, on both loops (uvloop has its own TLS implementation).

The repository-level TLS tests (tests/security/test_tls.py) run on the
default transport and asyncio's loop; these check the transport itself,
concurrent callers over one TLS connection, and the readable refusals on
uvloop too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import trustme

from neuroglia.data.redis import CacheTLSError, Delivery
from neuroglia.data.redis.testing import RedisServer, free_port

if TYPE_CHECKING:
    from tests.support.transports import MakeTransport

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60), pytest.mark.both_loops]


@dataclass(frozen=True)
class Pki:
    ca: Path
    other_ca: Path
    client_cert: Path
    client_key: Path


@dataclass(frozen=True)
class TlsEndpoint:
    port: int
    pki: Pki

    @property
    def url(self) -> str:
        return f"rediss://127.0.0.1:{self.port}/0"


@pytest.fixture(scope="module")
def pki_and_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Pki, Path, Path]:
    folder = tmp_path_factory.mktemp("transport-pki")
    ca, other = trustme.CA(), trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    client = ca.issue_cert("client.app.test")
    paths = {}
    for name, blob in (
        ("ca.pem", ca.cert_pem),
        ("other.pem", other.cert_pem),
        ("server.crt", server.cert_chain_pems[0]),
        ("server.key", server.private_key_pem),
        ("client.crt", client.cert_chain_pems[0]),
        ("client.key", client.private_key_pem),
    ):
        paths[name] = folder / name
        blob.write_to_path(str(paths[name]))
    pki = Pki(paths["ca.pem"], paths["other.pem"], paths["client.crt"], paths["client.key"])
    return pki, paths["server.crt"], paths["server.key"]


@pytest.fixture(scope="module")
def mtls(pki_and_files: tuple[Pki, Path, Path]) -> Iterator[TlsEndpoint]:
    """A server that requires a client certificate signed by the test CA."""
    pki, cert, key = pki_and_files
    port = free_port()
    args = ["--tls-port", str(port), "--tls-cert-file", str(cert), "--tls-key-file", str(key)]
    args += ["--tls-ca-cert-file", str(pki.ca), "--tls-auth-clients", "yes"]
    with RedisServer(args=args):
        yield TlsEndpoint(port, pki)


async def test_mutual_tls_carries_concurrent_callers_on_one_connection(
    mtls: TlsEndpoint, make_transport: MakeTransport
) -> None:
    pki = mtls.pki
    transport = make_transport(
        mtls.url, ssl_ca_certs=str(pki.ca), ssl_certfile=str(pki.client_cert), ssl_keyfile=str(pki.client_key)
    )
    payloads = [f"over-tls:{i}".encode() * 20 for i in range(300)]
    assert await asyncio.gather(*(transport.execute(("ECHO", p)) for p in payloads)) == payloads
    assert transport.pool_stats().created_connections == 1
    assert await transport.execute_blocking(("BLPOP", "nothing", 0.05), 0.05) is None


async def test_a_server_certificate_from_an_unknown_ca_is_refused_readably(
    mtls: TlsEndpoint, make_transport: MakeTransport
) -> None:
    pki = mtls.pki
    transport = make_transport(
        mtls.url, ssl_ca_certs=str(pki.other_ca), ssl_certfile=str(pki.client_cert), ssl_keyfile=str(pki.client_key)
    )
    with pytest.raises(CacheTLSError, match="certificate verification failed") as info:
        await transport.execute(("PING",))
    assert info.value.delivery is Delivery.NOT_SENT


async def test_a_missing_client_certificate_is_reported_as_such(
    mtls: TlsEndpoint, make_transport: MakeTransport
) -> None:
    transport = make_transport(mtls.url, ssl_ca_certs=str(mtls.pki.ca))
    with pytest.raises(CacheTLSError, match="client certificate") as info:
        await transport.execute(("PING",))
    assert info.value.delivery is Delivery.NOT_SENT
