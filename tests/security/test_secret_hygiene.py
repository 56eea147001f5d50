"""Secrets never show: not in logs at any level, exceptions, reprs, metrics or printed URLs.

One long scenario against a private ACL server of its own (it gets killed and
restarted): every logger (the library's, redis-py's, asyncio's) records at
DEBUG into a list, every exception is kept with its whole chain and traceback,
and every repr, str, URL, metric and report the library produces is gathered.
Then none of the passwords or the signing secret, raw or percent-encoded, may
appear in any of it.
"""

from __future__ import annotations

import asyncio
import io
import logging
import traceback
import warnings
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import prometheus_client
import pytest

from neuroglia.data.redis import (
    CacheException,
    CircuitBreakerPolicy,
    ConfigurationError,
    PickleSerializer,
    RedisConfig,
    RedisHashRepository,
    RedisRepository,
    register_prometheus,
)
from neuroglia.data.redis.demo import run_demo
from neuroglia.data.redis.testing import RedisServer
from tests.support.security import ADMIN_PASSWORD, APP_PASSWORD, APP_USER, acl_server_args, sha256_password

if TYPE_CHECKING:
    from tests.support.security import TlsServer

# A password that needs percent-encoding in a URL: '@', '/', ':', '#', '?', '%' and a space.
SPECIAL_USER = "special"
SPECIAL_PASSWORD = "p@ss/w:rd#?% " + "z" * 20
WRONG_PASSWORD = "wrong-" + "q" * 30
PICKLE_SECRET = "pickle-signing-secret-" + "s" * 30
SECRETS = [ADMIN_PASSWORD, APP_PASSWORD, SPECIAL_PASSWORD, WRONG_PASSWORD, PICKLE_SECRET]


class Collector(logging.Handler):
    """Keeps every record, formatted with its exception and stack, at every level."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.lines: list[str] = []
        self.loggers: set[tuple[str, int]] = set()

    def emit(self, record: logging.LogRecord) -> None:
        self.loggers.add((record.name, record.levelno))
        self.lines.append(self.format(record))
        self.lines.append(repr(record.args))


@pytest.fixture
def every_log() -> Iterator[Collector]:
    collector = Collector()
    root = logging.getLogger()
    named = [logging.getLogger(name) for name in ("neuroglia", "redis", "asyncio", "fakeredis")]
    saved = [(logger, logger.level, logger.disabled) for logger in [root, *named]]
    root.addHandler(collector)
    for logger, _, _ in saved:
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
    try:
        yield collector
    finally:
        root.removeHandler(collector)
        for logger, level, disabled in saved:
            logger.setLevel(level)
            logger.disabled = disabled


class Evidence:
    """Everything the library showed during the scenario."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.errors: list[BaseException] = []

    def see(self, *things: Any) -> None:
        for thing in things:
            self.texts += [repr(thing), str(thing)]

    async def expect_error(self, call: Callable[[], Awaitable[Any]]) -> BaseException:
        try:
            await call()
        except CacheException as exc:
            self.errors.append(exc)
            return exc
        raise AssertionError("the call was expected to fail")

    def all_text(self) -> str:
        parts = list(self.texts)
        for error in self.errors:
            parts += traceback.format_exception(error)  # the whole chain, causes included
            chained: BaseException | None = error
            while chained is not None:
                parts += [repr(chained), str(chained), repr(chained.args)]
                chained = chained.__cause__ or chained.__context__
        return "\n".join(parts)


def special_acl_args() -> list[str]:
    return [*acl_server_args(), "--user", SPECIAL_USER, "on", sha256_password(SPECIAL_PASSWORD), "~*", "+@all"]


async def test_no_secret_shows_anywhere(every_log: Collector, tls_server: TlsServer) -> None:
    evidence = Evidence()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        server = RedisServer(args=special_acl_args())
        server.start()
        try:
            await _scenario(server, tls_server, evidence)
        finally:
            server.close()
    evidence.texts += [str(w.message) for w in caught]

    logged = "\n".join(every_log.lines)
    everything = evidence.all_text() + "\n" + logged
    # The capture really saw the failures: the breaker's warning when the outage opened it, the errors.
    assert ("neuroglia.data.redis.breaker", logging.WARNING) in every_log.loggers, every_log.loggers
    assert len(evidence.errors) >= 10
    for secret in SECRETS:
        for form in {secret, quote(secret, safe=""), quote(secret), secret.encode().hex()}:
            assert form not in everything, f"a secret leaked ({len(form)} characters)"


async def _scenario(server: RedisServer, tls_server: TlsServer, evidence: Evidence) -> None:
    host, port = server.host, server.port
    signer = PickleSerializer(PICKLE_SECRET, accepted_secrets=[PICKLE_SECRET + "-old"])
    breaker = CircuitBreakerPolicy(failure_threshold=2, recovery_timeout=0.2, success_threshold=1)
    app_config = RedisConfig(
        url=f"redis://{APP_USER}:{APP_PASSWORD}@{host}:{port}/0",
        key_prefix="app:",
        serializer=signer,
        enable_metrics=True,
        circuit_breaker=breaker,
        retry_policy={"retries": 1, "retry_delay": 0.01},
        connection_pool={"socket_timeout": 1.0, "socket_connect_timeout": 1.0},
        client_name="secret-hygiene",
    )
    field_config = RedisConfig(host=host, port=port, username=SPECIAL_USER, password=SPECIAL_PASSWORD)
    url_config = RedisConfig(url=f"redis://{SPECIAL_USER}:{quote(SPECIAL_PASSWORD, safe='')}@{host}:{port}/0")
    assert url_config.password == SPECIAL_PASSWORD
    for config in (app_config, field_config, url_config):
        evidence.see(config, config.redacted_url, config.pool, config.retry)

    app = RedisRepository(app_config)
    special = RedisRepository(field_config)
    collector = register_prometheus(app, prometheus_client.CollectorRegistry())
    try:
        # Normal work, then refusals, through the restricted user.
        await app.connect()
        await special.connect()
        await app.set_object_async("order", {"id": 1})
        await app.get_object_async("order")
        hashes = RedisHashRepository[dict](app, dict, key_prefix="h")  # type: ignore[type-arg]
        await hashes.add_async({"id": "1", "n": 1})
        await app.set_async("raw", b"NGPK" + b"\x01" * 60)
        await evidence.expect_error(lambda: app.get_object_async("raw"))
        await evidence.expect_error(app.flushdb)
        await evidence.expect_error(lambda: app.eval_async("return redis.call('GET', 'elsewhere')"))
        evidence.see(app, special, app.connection_pool, app.codec, signer, breaker, collector)

        # Wrong passwords, wrong users, no credentials, in URL and field form.
        for config in (
            RedisConfig(url=f"redis://{APP_USER}:{WRONG_PASSWORD}@{host}:{port}/0"),
            RedisConfig(host=host, port=port, username=SPECIAL_USER, password=WRONG_PASSWORD),
            RedisConfig(host=host, port=port, password=WRONG_PASSWORD),
            RedisConfig(url=f"redis://{host}:{port}/0"),
        ):
            wrong = RedisRepository(config)
            evidence.see(wrong, config)
            await evidence.expect_error(wrong.connect)
            await evidence.expect_error(lambda w=wrong: w.set_async("k", "v"))  # type: ignore[misc]
            await wrong.disconnect()

        # An outage: the server dies, calls fail, the breaker opens; it comes back; reconnection.
        server.kill()
        for _ in range(4):
            await evidence.expect_error(lambda: app.get_async("k"))
        server.start()
        await asyncio.sleep(0.25)
        for _ in range(50):
            try:
                await app.ping()
                break
            except CacheException as exc:
                evidence.errors.append(exc)
                await asyncio.sleep(0.05)
        assert await app.ping() is True
        await special.ping()

        # TLS failures with credentials in the URL.
        tls_host_mismatch = RedisRepository(
            RedisConfig(
                url=f"rediss://{APP_USER}:{APP_PASSWORD}@localhost:{tls_server.tls_port}/0",
                ssl_ca_certs=str(tls_server.files.ca),
            )
        )
        await evidence.expect_error(tls_host_mismatch.connect)
        await tls_host_mismatch.disconnect()
        auth_on_open_server = RedisRepository(
            RedisConfig(
                url=f"rediss://{APP_USER}:{APP_PASSWORD}@127.0.0.1:{tls_server.tls_port}/0",
                ssl_ca_certs=str(tls_server.files.ca),
            )
        )
        await evidence.expect_error(auth_on_open_server.connect)
        await auth_on_open_server.disconnect()

        # Metrics, in every form the library exports them.
        metrics = app.metrics
        assert metrics is not None
        evidence.see(metrics.snapshot(), list(metrics.samples()))
        registry = prometheus_client.CollectorRegistry()
        register_prometheus(app, registry)
        evidence.texts.append(prometheus_client.generate_latest(registry).decode())

        # The demo's printed report, with the admin's credentials in the URL.
        out = io.StringIO()
        result = await run_demo(f"redis://default:{quote(ADMIN_PASSWORD)}@{host}:{port}/0", out=out, timeout=5.0)
        assert result.failure is None, result.failure
        evidence.texts += [out.getvalue(), repr(result)]
    finally:
        await app.disconnect()
        await special.disconnect()

    # Configuration errors about URLs that hold credentials.
    for bad in (
        lambda: RedisConfig(url=f"redis://{APP_USER}:{APP_PASSWORD}@{host}:notaport/0"),
        lambda: RedisConfig(url=f"redis://{APP_USER}:pa/{APP_PASSWORD}@{host}:{port}/0"),
        lambda: RedisConfig(url=f"redis://{APP_USER}:pa?{APP_PASSWORD}@{host}:{port}/0"),
        lambda: RedisConfig(url=f"redis://{APP_USER}:{APP_PASSWORD}@{host}:{port}/x{APP_PASSWORD}"),
        lambda: RedisConfig(url=f"redis://:{APP_PASSWORD}@{host}/0", password=ADMIN_PASSWORD),
        lambda: RedisConfig.from_env(environ={"REDIS_URL": f"redis://u:{APP_PASSWORD}@h:1/0", "REDIS_PORT": "x"}),
        lambda: RedisConfig.from_env(environ={"REDIS_PASSWORD": APP_PASSWORD, "REDIS_DB": "nope"}),
        lambda: PickleSerializer(PICKLE_SECRET[:20]),
    ):
        try:
            bad()
        except ConfigurationError as exc:
            evidence.errors.append(exc)
        else:
            raise AssertionError("a bad configuration was accepted")
