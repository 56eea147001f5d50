"""``rediss+sentinel://``: TLS to the sentinels and to the data servers, each verified.

The group's servers present certificates of a test CA naming only
``127.0.0.1``; the repository trusts that CA. A failover moves the TLS
connections to the new primary; a client that does not trust the CA is
refused by the sentinels before any data server is asked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from neuroglia.data.redis import CacheTLSError
from neuroglia.data.redis.testing import SentinelGroup, SentinelTls, redis_server_binary
from tests.sentinel.conftest import SentinelRepositories
from tests.support.cache import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("sentinel-pki")
    ca, other = trustme.CA(), trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    files = {
        "ca": folder / "ca.pem",
        "other_ca": folder / "other-ca.pem",
        "cert": folder / "server.crt",
        "key": folder / "server.key",
    }
    ca.cert_pem.write_to_path(str(files["ca"]))
    other.cert_pem.write_to_path(str(files["other_ca"]))
    server.cert_chain_pems[0].write_to_path(str(files["cert"]))
    server.private_key_pem.write_to_path(str(files["key"]))
    return files


@pytest.fixture(scope="module")
def sentinel_group(pki: dict[str, Path]) -> Iterator[SentinelGroup]:
    """This module's group speaks TLS (shadows the plugin's fixture)."""
    assert redis_server_binary() is not None
    tls = SentinelTls(str(pki["cert"]), str(pki["key"]), str(pki["ca"]))
    with SentinelGroup(tls=tls) as group:
        yield group


async def test_tls_to_the_sentinels_and_the_primary_across_a_failover(
    sentinel_repo: SentinelRepositories, sentinel_group: SentinelGroup, pki: dict[str, Path]
) -> None:
    assert sentinel_group.url.startswith("rediss+sentinel://")
    repo = sentinel_repo(ssl_ca_certs=str(pki["ca"]), circuit_breaker=False)
    await repo.set_async("sealed", "yes")
    transport = sentinel_repo.transport(repo)
    assert transport.settings.tls is not None
    old = transport.primary_address
    new = await asyncio.to_thread(sentinel_group.failover)
    await eventually(lambda: transport.primary_address == new, within=10, what="the TLS subscription's switch")
    assert new != old
    await repo.set_async("after", "failover")
    assert await repo.get_async("sealed") == "yes"


async def test_a_sentinel_certificate_from_an_unknown_ca_is_refused(
    sentinel_repo: SentinelRepositories, pki: dict[str, Path]
) -> None:
    repo = sentinel_repo(ssl_ca_certs=str(pki["other_ca"]), retry_policy={"retries": 0}, circuit_breaker=False)
    with pytest.raises(CacheTLSError, match="certificate verification failed"):
        await asyncio.wait_for(repo.get_async("sealed"), 10)
