"""TLS: the certificate and host name are verified by default; turning that off is loud.

Against real redis-server processes with TLS ports and certificates made by
trustme (see conftest.py): a CA-signed server certificate naming only
127.0.0.1, a self-signed one, client certificates from the CA and from
another CA.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pytest

from neuroglia.data.redis import (
    CacheTLSError,
    CacheUnavailableError,
    CircuitState,
    ConfigurationError,
    RedisConfig,
    RedisRepository,
)

if TYPE_CHECKING:
    from tests.support.security import TlsServer


def tls_repo(url: str, **settings: Any) -> RedisRepository:
    settings.setdefault("connection_pool", {"socket_connect_timeout": 3.0, "socket_timeout": 3.0})
    settings.setdefault("retry_policy", {"retries": 3, "retry_delay": 0.05})
    return RedisRepository(RedisConfig(url=url, **settings))


async def round_trip(repo: RedisRepository) -> None:
    async with repo:
        assert await repo.set_async("tls:k", "über \x00 secure") is True
        assert await repo.get_async("tls:k") == "über \x00 secure"
        assert await repo.delete_async("tls:k") == 1


# -- verification on (the default) -------------------------------------------------------


async def test_connects_when_the_ca_is_given(tls_server: TlsServer) -> None:
    await round_trip(tls_repo(tls_server.url(), ssl_ca_certs=str(tls_server.files.ca)))


async def test_the_ca_can_be_given_in_the_url(tls_server: TlsServer) -> None:
    await round_trip(tls_repo(tls_server.url(query=f"ssl_ca_certs={tls_server.files.ca}")))


async def test_the_pages_ssl_cert_reqs_none_means_verification_required(tls_server: TlsServer) -> None:
    """The page sets ssl_cert_reqs=None: that is the default ("required"), never "off"."""
    config = RedisConfig(url=tls_server.url(), ssl_cert_reqs=None, ssl_ca_certs=None, ssl_keyfile=None)
    assert config.ssl_cert_reqs is None
    assert config.ssl_check_hostname is True
    with pytest.raises(CacheTLSError, match="certificate verification failed"):
        await RedisRepository(config).connect()
    # With the CA, the same page settings connect: verification was on, and passed.
    await round_trip(tls_repo(tls_server.url(), ssl_cert_reqs=None, ssl_ca_certs=str(tls_server.files.ca)))


async def test_a_self_signed_certificate_without_its_ca_is_refused(self_signed_server: TlsServer) -> None:
    repo = tls_repo(self_signed_server.url(), ssl_ca_certs=str(self_signed_server.files.ca))
    with pytest.raises(CacheTLSError, match="certificate verification failed") as info:
        await repo.connect()
    assert isinstance(info.value, CacheUnavailableError)
    assert "self-signed" in str(info.value) or "self signed" in str(info.value)
    await repo.disconnect()


async def test_a_server_certificate_without_any_ca_configured_is_refused(tls_server: TlsServer) -> None:
    """No ssl_ca_certs: the system store is used, which does not know the test CA."""
    repo = tls_repo(tls_server.url())
    with pytest.raises(CacheTLSError, match="certificate verification failed"):
        await repo.set_async("tls:k", "v")
    await repo.disconnect()


async def test_a_wrong_host_name_is_refused(tls_server: TlsServer) -> None:
    """The certificate names 127.0.0.1 only; "localhost" reaches the same server but must not verify."""
    repo = tls_repo(tls_server.url("localhost"), ssl_ca_certs=str(tls_server.files.ca))
    with pytest.raises(CacheTLSError, match="certificate verification failed") as info:
        await repo.connect()
    assert "mismatch" in str(info.value).lower()
    await repo.disconnect()


async def test_tls_failures_are_not_retried_and_never_open_the_breaker(tls_server: TlsServer) -> None:
    repo = tls_repo(tls_server.url("localhost"), ssl_ca_certs=str(tls_server.files.ca))
    async with RedisRepository(RedisConfig(url=tls_server.server.url)) as plain:  # the readiness port
        before = int((await plain.info("stats"))["total_connections_received"])
        for _ in range(12):  # more than the breaker's failure threshold
            with pytest.raises(CacheTLSError):
                await repo.get_async("tls:k")
        connections = int((await plain.info("stats"))["total_connections_received"]) - before
    assert connections <= 12  # one handshake per call: never retried (retries=3 is configured)
    breaker = repo.circuit_breaker
    assert breaker is not None
    assert breaker.state is CircuitState.CLOSED
    await repo.disconnect()


# -- mutual TLS --------------------------------------------------------------------------


async def test_mutual_tls_works(mtls_server: TlsServer) -> None:
    files = mtls_server.files
    await round_trip(
        tls_repo(
            mtls_server.url(),
            ssl_ca_certs=str(files.ca),
            ssl_certfile=str(files.client_cert),
            ssl_keyfile=str(files.client_key),
        )
    )


async def test_mutual_tls_fails_without_a_client_certificate(mtls_server: TlsServer) -> None:
    repo = tls_repo(mtls_server.url(), ssl_ca_certs=str(mtls_server.files.ca))
    with pytest.raises(CacheTLSError, match="client certificate"):
        await repo.connect()
    await repo.disconnect()


async def test_mutual_tls_refuses_a_client_certificate_from_another_ca(mtls_server: TlsServer) -> None:
    files = mtls_server.files
    repo = tls_repo(
        mtls_server.url(),
        ssl_ca_certs=str(files.ca),
        ssl_certfile=str(files.rogue_client_cert),
        ssl_keyfile=str(files.rogue_client_key),
    )
    with pytest.raises(CacheTLSError, match="the server refused the client certificate") as info:
        await repo.connect()
    assert "UNKNOWN_CA" in str(info.value)
    await repo.disconnect()


# -- verification off: explicit and loud --------------------------------------------------


async def test_skipping_verification_needs_the_loud_setting_and_logs_a_warning(
    self_signed_server: TlsServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="neuroglia.data.redis"):
        await round_trip(tls_repo(self_signed_server.url(), ssl_insecure_skip_verify=True))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "TLS verification is OFF" in r.message]
    assert warnings, caplog.text
    assert "certificate and host name are not verified" in warnings[0].message


async def test_skipping_only_the_host_name_check(tls_server: TlsServer, caplog: pytest.LogCaptureFixture) -> None:
    """ssl_cert_reqs="required" + the loud switch: the chain is still verified, the host name is not."""
    files = tls_server.files
    with caplog.at_level(logging.WARNING, logger="neuroglia.data.redis"):
        await round_trip(
            tls_repo(
                tls_server.url("localhost"),
                ssl_ca_certs=str(files.ca),
                ssl_cert_reqs="required",
                ssl_insecure_skip_verify=True,
            )
        )
    assert "the host name is not verified" in caplog.text
    chain_checked = tls_repo(
        tls_server.url("localhost"),
        ssl_ca_certs=str(files.other_ca),
        ssl_cert_reqs="required",
        ssl_insecure_skip_verify=True,
    )
    with pytest.raises(CacheTLSError, match="certificate verification failed"):
        await chain_checked.connect()
    await chain_checked.disconnect()


@pytest.mark.parametrize(
    ("settings", "field", "problem"),
    [
        ({"ssl_cert_reqs": "none"}, "ssl_cert_reqs", "cannot be turned off"),
        ({"ssl_cert_reqs": "CERT_NONE"}, "ssl_cert_reqs", "cannot be turned off"),
        ({"ssl_check_hostname": False}, "ssl_check_hostname", "ssl_insecure_skip_verify=True"),
        ({"ssl_insecure_skip_verify": "yes"}, "ssl_insecure_skip_verify", "True or False"),
        ({"ssl_ca_certs": "/nonexistent/ca.pem"}, "ssl_ca_certs", "no such file"),
    ],
)
def test_weakening_tls_without_the_loud_setting_is_refused(settings: dict[str, Any], field: str, problem: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        RedisConfig(url="rediss://cache.example:6380/0", **settings)
    assert str(info.value).startswith(f"{field}:")
    assert problem in str(info.value)


def test_the_loud_setting_is_refused_without_tls() -> None:
    with pytest.raises(ConfigurationError, match="ssl_insecure_skip_verify: is set but the connection is not TLS"):
        RedisConfig(url="redis://cache.example:6379/0", ssl_insecure_skip_verify=True)


def test_the_url_cannot_turn_verification_off() -> None:
    """ssl_insecure_skip_verify is code-only: a URL from the environment cannot carry it."""
    with pytest.raises(ConfigurationError, match="unknown query parameter"):
        RedisConfig(url="rediss://cache.example:6380/0?ssl_insecure_skip_verify=true")
    with pytest.raises(ConfigurationError, match="cannot be turned off"):
        RedisConfig(url="rediss://cache.example:6380/0?ssl_cert_reqs=none")


def test_the_loud_setting_shows_in_the_repr() -> None:
    config = RedisConfig(url="rediss://cache.example:6380/0", ssl_insecure_skip_verify=True)
    assert "ssl_insecure_skip_verify=True" in repr(config)
