"""Settings: RedisConfig, ConnectionPoolConfig and RetryPolicy.

The framework's page builds a config in two shapes (``host="localhost",
port=6379, db=0`` and ``host="redis://localhost:6379/15"``); both are
accepted, and also ``url=``. Everything is validated once, here, so that a
bad setting fails at construction with a message that names the field, never
at the first command.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random as _random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from ._breaker import CircuitBreakerPolicy
from ._envelope import EnvelopePolicy
from ._fallback import FallbackPolicy
from .exceptions import ConfigurationError
from .serialization import SerializationStrategy, resolve_serializer

__all__ = ["ConnectionPoolConfig", "RedisConfig", "RetryPolicy"]

Scheme = Literal["redis", "rediss", "unix", "memory"]
SCHEMES: Final[tuple[str, ...]] = ("redis", "rediss", "unix", "memory")
TransportName = Literal["multiplexed", "redis-py"]
TRANSPORTS: Final[tuple[str, ...]] = ("multiplexed", "redis-py")
_SSL_CERT_REQS: Final[tuple[str, ...]] = ("required", "optional", "none")
_POOL_CLASS_KWARGS: Final[tuple[str, ...]] = (
    "max_connections",
    "max_connections_per_pool",
    "retry_on_timeout",
    "socket_keepalive",
    "socket_keepalive_options",
)
_REDACTED: Final = "***"


def _fail(field_name: str, problem: str) -> ConfigurationError:
    return ConfigurationError(f"{field_name}: {problem}")


def _positive(name: str, value: float | None, *, allow_zero: bool = False) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise _fail(name, f"expected a number, got {type(value).__name__}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise _fail(name, f"must be {bound}, got {value!r}")


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """How failed commands are retried.

    ``retries`` is the number of extra attempts (``0`` turns retrying off);
    the delay before attempt *n* is ``retry_delay * backoff_factor**(n-1)``,
    capped at ``max_retry_delay`` and spread by full jitter when ``jitter``.
    Only commands that cannot be applied twice are retried after an uncertain
    send; see ``docs/resilience.md``.
    """

    retries: int = 3
    retry_delay: float = 0.1
    backoff_factor: float = 2.0
    max_retry_delay: float = 1.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise _fail("retry_policy.retries", f"must be an integer >= 0, got {self.retries!r}")
        _positive("retry_policy.retry_delay", self.retry_delay, allow_zero=True)
        _positive("retry_policy.max_retry_delay", self.max_retry_delay, allow_zero=True)
        _positive("retry_policy.backoff_factor", self.backoff_factor)
        if self.backoff_factor < 1:
            raise _fail("retry_policy.backoff_factor", f"must be >= 1, got {self.backoff_factor!r}")

    @classmethod
    def coerce(cls, value: RetryPolicy | Mapping[str, Any] | None) -> RetryPolicy:
        """Accept a policy, the page's dict form, or ``None`` for the defaults."""
        if value is None:
            return cls()
        if isinstance(value, RetryPolicy):
            return value
        if isinstance(value, Mapping):
            return cls(**_known_fields(cls, value, "retry_policy"))
        raise _fail("retry_policy", f"expected a RetryPolicy or a dict, got {type(value).__name__}")

    def delay(self, attempt: int, random: Callable[[], float] = _random.random) -> float:
        """The delay before retry number ``attempt`` (1-based).

        Exponential, capped at ``max_retry_delay``; with ``jitter`` a random
        point in its upper half, so that clients that failed together do not
        retry together.
        """
        base = float(min(self.max_retry_delay, self.retry_delay * self.backoff_factor ** (attempt - 1)))
        return base * (0.5 + 0.5 * random()) if self.jitter else base


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
    socket_connect_timeout: float | None = 5.0
    socket_keepalive: bool = True
    socket_keepalive_options: Mapping[int, int | bytes] | None = None
    pool_timeout: float | None = 5.0
    connection_pool_class_kwargs: Mapping[str, Any] = field(default_factory=dict)
    skip_full_coverage_check: bool = False
    decode_responses: bool = True
    multiplexed_connections: int = 1
    max_in_flight: int = 1024

    def __post_init__(self) -> None:
        extra = dict(self.connection_pool_class_kwargs)
        unknown = sorted(set(extra) - set(_POOL_CLASS_KWARGS))
        if unknown:
            raise _fail(
                "connection_pool.connection_pool_class_kwargs",
                f"unknown keys {unknown}; allowed: {list(_POOL_CLASS_KWARGS)}",
            )
        # The page passes pool settings twice (top level and in the kwargs dict):
        # fold the dict into the fields, refusing values that disagree.
        folded: dict[str, Any] = {}
        for key, value in extra.items():
            name = "max_connections" if key == "max_connections_per_pool" else key
            default = _field_default(ConnectionPoolConfig, name)
            current = getattr(self, name)
            if current != default and current != value:
                raise _fail(
                    f"connection_pool.{name}",
                    f"{current!r} contradicts connection_pool_class_kwargs[{key!r}]={value!r}",
                )
            folded[name] = value
        for name, value in folded.items():
            object.__setattr__(self, name, value)
        max_conn = self.max_connections
        if isinstance(max_conn, bool) or not isinstance(max_conn, int) or max_conn < 1:
            raise _fail("connection_pool.max_connections", f"must be an integer >= 1, got {max_conn!r}")
        for name in ("multiplexed_connections", "max_in_flight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise _fail(f"connection_pool.{name}", f"must be an integer >= 1, got {value!r}")
        _positive("connection_pool.health_check_interval", self.health_check_interval, allow_zero=True)
        _positive("connection_pool.socket_timeout", self.socket_timeout)
        _positive("connection_pool.socket_connect_timeout", self.socket_connect_timeout)
        _positive("connection_pool.pool_timeout", self.pool_timeout)
        for flag in ("retry_on_timeout", "socket_keepalive", "skip_full_coverage_check", "decode_responses"):
            if not isinstance(getattr(self, flag), bool):
                raise _fail(f"connection_pool.{flag}", f"expected True or False, got {getattr(self, flag)!r}")

    @classmethod
    def coerce(cls, value: ConnectionPoolConfig | Mapping[str, Any] | None) -> ConnectionPoolConfig:
        """Accept a config, a dict of its fields, or ``None`` for the defaults."""
        if value is None:
            return cls()
        if isinstance(value, ConnectionPoolConfig):
            return value
        if isinstance(value, Mapping):
            return cls(**_known_fields(cls, value, "connection_pool"))
        raise _fail("connection_pool", f"expected a ConnectionPoolConfig or a dict, got {type(value).__name__}")


@dataclass(frozen=True, kw_only=True)
class RedisConfig:
    """Where Redis is and how to talk to it.

    Accepts the page's field-by-field form (``host``, ``port``, ``db``,
    ``password``...) and a URL, given as ``url=`` or in ``host``:
    ``redis://[user[:password]@]host[:port][/db]``, ``rediss://`` (TLS),
    ``unix:///path/to/socket?db=N`` and ``memory://[name]`` (the embedded
    backend, no server; the default when nothing is configured). A value that
    both the URL and a field set must agree, or :class:`ConfigurationError`
    is raised.

    ``transport`` picks the client code for network URLs: ``"multiplexed"``
    (the default: the library's own connections, shared by concurrent
    callers) or ``"redis-py"`` (redis-py's pool, one connection per command
    in flight). ``protocol`` is ``2`` or ``3`` (RESP3, needed for push
    messages on the command connection; multiplexed transport only). Both can
    also be given in the URL (``?transport=redis-py&protocol=3``).

    The password is never shown: ``repr``, ``str`` and :attr:`url` mask it.
    """

    url: str | None = None
    host: str | None = None
    port: int | None = None
    db: int | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    connection_pool_size: int | None = None
    health_check_interval: float | None = None
    connection_pool: ConnectionPoolConfig | Mapping[str, Any] | None = None
    retry_policy: RetryPolicy | Mapping[str, Any] | None = None
    key_prefix: str = ""
    serializer: str | SerializationStrategy = "json"
    decode_responses: bool | None = None
    enable_metrics: bool = False
    metrics_prefix: str = "redis_cache"
    client_name: str | None = None
    ssl: bool | None = None
    ssl_cert_reqs: str | None = None
    ssl_ca_certs: str | None = None
    ssl_keyfile: str | None = None
    ssl_certfile: str | None = None
    ssl_check_hostname: bool = True
    ssl_insecure_skip_verify: bool = False
    circuit_breaker: CircuitBreakerPolicy | Mapping[str, Any] | bool | None = None
    operation_timeout: float | None = 10.0
    fallback: FallbackPolicy | Mapping[str, Any] | bool | None = None
    envelope: EnvelopePolicy | Mapping[str, Any] | None = None
    transport: TransportName = "multiplexed"
    protocol: int = 2

    # Resolved by __post_init__ from the fields above.
    scheme: Scheme = field(init=False, default="memory")
    unix_socket_path: str | None = field(init=False, default=None)
    memory_name: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        url = self.url
        host = self.host
        if host is not None and "://" in host:
            if url is not None:
                raise _fail("host", "holds a URL while url= is also given; pass only one")
            url, host = host, None
        if url is None and host is None and self.port is None and self.ssl is None:
            url = "memory://"
        parts: dict[str, Any] = _parse_url(url) if url is not None else {"scheme": "redis"}
        if parts["scheme"] == "redis" and self.ssl:
            parts["scheme"] = "rediss"
        for name, given in (
            ("host", host),
            ("port", self.port),
            ("db", self.db),
            ("username", self.username),
            ("password", self.password),
        ):
            from_url = parts.get(name)
            if given is not None and from_url is not None and given != from_url:
                shown = _REDACTED if name == "password" else repr(given)
                shown_url = _REDACTED if name == "password" else repr(from_url)
                raise _fail(name, f"{shown} contradicts the URL, which says {shown_url}")
            parts[name] = given if given is not None else from_url
        for name, value in parts.get("query", {}).items():
            set_(self, name, value)

        scheme: Scheme = parts["scheme"]
        set_(self, "scheme", scheme)
        set_(self, "url", None)
        if scheme == "memory":
            set_(self, "memory_name", parts.get("memory_name"))
            set_(self, "host", None)
            set_(self, "port", None)
        elif scheme == "unix":
            set_(self, "unix_socket_path", parts["path"])
            set_(self, "host", None)
            set_(self, "port", None)
        else:
            set_(self, "host", parts["host"] or "localhost")
            port = 6379 if parts["port"] is None else parts["port"]
            if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
                raise _fail("port", f"must be an integer in 1..65535, got {port!r}")
            set_(self, "port", port)
        db = 0 if parts["db"] is None else parts["db"]
        if isinstance(db, bool) or not isinstance(db, int) or db < 0:
            raise _fail("db", f"must be an integer >= 0, got {db!r}")
        set_(self, "db", db)
        set_(self, "username", parts["username"])
        set_(self, "password", parts["password"])
        set_(self, "ssl", scheme == "rediss")
        self._resolve_pool()
        set_(self, "retry_policy", RetryPolicy.coerce(self.retry_policy))
        CircuitBreakerPolicy.coerce(self.circuit_breaker)  # validates; each repository builds its own
        set_(self, "fallback", FallbackPolicy.coerce(self.fallback))
        set_(self, "envelope", EnvelopePolicy.coerce(self.envelope))
        _positive("operation_timeout", self.operation_timeout)
        self._check_transport()
        self._check_ssl()
        if not isinstance(self.key_prefix, str):
            raise _fail("key_prefix", f"expected a str, got {type(self.key_prefix).__name__}")
        if not isinstance(self.metrics_prefix, str) or not self.metrics_prefix.isidentifier():
            raise _fail("metrics_prefix", f"must be an identifier, got {self.metrics_prefix!r}")
        try:
            resolve_serializer(self.serializer)
        except ValueError as exc:
            raise _fail("serializer", str(exc)) from None

    def _resolve_pool(self) -> None:
        pool = ConnectionPoolConfig.coerce(self.connection_pool)
        for name, pool_name, given in (
            ("connection_pool_size", "max_connections", self.connection_pool_size),
            ("health_check_interval", "health_check_interval", self.health_check_interval),
            ("decode_responses", "decode_responses", self.decode_responses),
        ):
            if given is None:
                continue
            in_pool = getattr(pool, pool_name)
            explicit = self.connection_pool is not None and in_pool != _field_default(ConnectionPoolConfig, pool_name)
            if explicit and in_pool != given:
                raise _fail(name, f"{given!r} contradicts connection_pool.{pool_name}={in_pool!r}")
            override: dict[str, Any] = {pool_name: given}
            try:
                pool = dataclasses.replace(pool, **override)
            except ConfigurationError as exc:
                # Name the field the caller set, not the pool field it feeds.
                raise _fail(name, str(exc).partition(": ")[2]) from None
        object.__setattr__(self, "connection_pool", pool)
        object.__setattr__(self, "connection_pool_size", pool.max_connections)
        object.__setattr__(self, "health_check_interval", pool.health_check_interval)
        object.__setattr__(self, "decode_responses", pool.decode_responses)

    def _check_transport(self) -> None:
        if self.transport not in TRANSPORTS:
            raise _fail("transport", f"allowed values: {list(TRANSPORTS)}, got {self.transport!r}")
        protocol = self.protocol
        if isinstance(protocol, str) and protocol.strip() in ("2", "3"):
            protocol = int(protocol)
            object.__setattr__(self, "protocol", protocol)
        if isinstance(protocol, bool) or protocol not in (2, 3):
            raise _fail("protocol", f"must be 2 (RESP2) or 3 (RESP3), got {protocol!r}")
        if protocol == 3 and self.transport == "redis-py" and self.scheme != "memory":
            raise _fail("protocol", "3 (RESP3) needs transport='multiplexed'; the redis-py transport speaks RESP2")

    def _check_ssl(self) -> None:
        # TLS verifies the server's certificate and host name unless the one
        # loudly named switch, ssl_insecure_skip_verify, says otherwise; see
        # docs/security.md. ssl_cert_reqs=None (the page's value) means the
        # default, "required" (redis-py itself would read None as "none").
        insecure = self.ssl_insecure_skip_verify
        if not isinstance(insecure, bool):
            raise _fail("ssl_insecure_skip_verify", f"expected True or False, got {insecure!r}")
        if not isinstance(self.ssl_check_hostname, bool):
            raise _fail("ssl_check_hostname", f"expected True or False, got {self.ssl_check_hostname!r}")
        reqs = self.ssl_cert_reqs
        if reqs is not None and reqs not in _SSL_CERT_REQS:
            hint = (
                "; verification cannot be turned off through ssl_cert_reqs alone (see ssl_insecure_skip_verify)"
                if str(reqs).lower() in ("none", "cert_none")
                else ""
            )
            raise _fail("ssl_cert_reqs", f"allowed values: {list(_SSL_CERT_REQS)} or None, got {reqs!r}{hint}")
        if reqs == "none" and not insecure:
            raise _fail(
                "ssl_cert_reqs",
                "'none' would accept any certificate: verification cannot be turned off through ssl_cert_reqs "
                "alone; set ssl_insecure_skip_verify=True as well if connections anyone can intercept are acceptable",
            )
        if not self.ssl_check_hostname and not insecure:
            raise _fail(
                "ssl_check_hostname",
                "False would accept a certificate issued for any other host; set ssl_insecure_skip_verify=True "
                "to turn verification off explicitly",
            )
        if insecure and self.scheme != "rediss":
            raise _fail("ssl_insecure_skip_verify", "is set but the connection is not TLS: use rediss:// or ssl=True")
        uses_tls_files = any((self.ssl_ca_certs, self.ssl_certfile, self.ssl_keyfile))
        if uses_tls_files and self.scheme != "rediss":
            raise _fail("ssl_ca_certs", "TLS files are set but the connection is not TLS: use rediss:// or ssl=True")
        if bool(self.ssl_certfile) != bool(self.ssl_keyfile):
            raise _fail("ssl_certfile", "a client certificate needs both ssl_certfile and ssl_keyfile")
        for name in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile"):
            path = getattr(self, name)
            if path is not None and not os.path.isfile(path):
                raise _fail(name, f"no such file: {path!r}")

    # -- derived views -------------------------------------------------------

    @property
    def pool(self) -> ConnectionPoolConfig:
        """The resolved connection pool settings."""
        assert isinstance(self.connection_pool, ConnectionPoolConfig)
        return self.connection_pool

    @property
    def envelope_policy(self) -> EnvelopePolicy:
        """The resolved envelope settings of the typed helpers."""
        assert isinstance(self.envelope, EnvelopePolicy)
        return self.envelope

    @property
    def retry(self) -> RetryPolicy:
        """The resolved retry policy."""
        assert isinstance(self.retry_policy, RetryPolicy)
        return self.retry_policy

    @property
    def serialization(self) -> SerializationStrategy:
        """The serialization strategy instance used by the typed helpers."""
        return resolve_serializer(self.serializer)

    @property
    def redacted_url(self) -> str:
        """The connection URL with the password masked, safe to print or log."""
        return self._url(redact=True)

    def _url(self, *, redact: bool) -> str:
        if self.scheme == "memory":
            return f"memory://{self.memory_name or ''}" + (f"/{self.db}" if self.db else "")
        auth = ""
        if self.username or self.password:
            auth = quote(self.username or "", safe="")
            if self.password:
                auth += ":" + (_REDACTED if redact else quote(self.password, safe=""))
            auth += "@"
        if self.scheme == "unix":
            return f"unix://{auth}{self.unix_socket_path}?db={self.db}"
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"{self.scheme}://{auth}{host}:{self.port}/{self.db}"

    def __str__(self) -> str:
        return f"RedisConfig({self.redacted_url})"

    def __repr__(self) -> str:
        shown = []
        for f in dataclasses.fields(self):
            if not f.init or f.name in ("url",):
                continue
            value = getattr(self, f.name)
            if f.name == "password":
                value = _REDACTED if value else None
                shown.append(f"password={value}")
                continue
            shown.append(f"{f.name}={value!r}")
        return f"RedisConfig(url={self.redacted_url!r}, {', '.join(shown)})"

    # -- environment ---------------------------------------------------------

    @classmethod
    def from_env(
        cls, prefix: str = "REDIS_", environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> RedisConfig:
        """Build a config from environment variables.

        Reads ``{prefix}URL``, ``HOST``, ``PORT``, ``DB``, ``USERNAME``,
        ``PASSWORD``, ``KEY_PREFIX``, ``POOL_SIZE``, ``SOCKET_TIMEOUT``,
        ``SOCKET_CONNECT_TIMEOUT``, ``HEALTH_CHECK_INTERVAL``, ``SERIALIZER``,
        ``DECODE_RESPONSES``, ``ENABLE_METRICS``, ``METRICS_PREFIX``,
        ``CLIENT_NAME``, ``SSL_CA_CERTS``, ``SSL_CERTFILE``, ``SSL_KEYFILE``,
        ``SSL_CERT_REQS``, ``TRANSPORT`` and ``PROTOCOL``. Keyword arguments
        override the environment.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        pool: dict[str, Any] = {}

        def get(name: str) -> str | None:
            raw = env.get(prefix + name)
            return raw if raw not in (None, "") else None

        converters: dict[str, tuple[str, Any]] = {
            "URL": ("url", str),
            "HOST": ("host", str),
            "PORT": ("port", int),
            "DB": ("db", int),
            "USERNAME": ("username", str),
            "PASSWORD": ("password", str),
            "KEY_PREFIX": ("key_prefix", str),
            "POOL_SIZE": ("connection_pool_size", int),
            "HEALTH_CHECK_INTERVAL": ("health_check_interval", float),
            "SERIALIZER": ("serializer", str),
            "DECODE_RESPONSES": ("decode_responses", _parse_bool),
            "ENABLE_METRICS": ("enable_metrics", _parse_bool),
            "METRICS_PREFIX": ("metrics_prefix", str),
            "CLIENT_NAME": ("client_name", str),
            "SSL_CA_CERTS": ("ssl_ca_certs", str),
            "SSL_CERTFILE": ("ssl_certfile", str),
            "SSL_KEYFILE": ("ssl_keyfile", str),
            "SSL_CERT_REQS": ("ssl_cert_reqs", str),
            "TRANSPORT": ("transport", str),
            "PROTOCOL": ("protocol", int),
        }
        for env_name, (name, convert) in converters.items():
            raw = get(env_name)
            if raw is None:
                continue
            try:
                values[name] = convert(raw)
            except ValueError:
                shown = _REDACTED if name == "password" else repr(raw)
                raise _fail(prefix + env_name, f"cannot parse {shown}") from None
        for env_name, name in (
            ("SOCKET_TIMEOUT", "socket_timeout"),
            ("SOCKET_CONNECT_TIMEOUT", "socket_connect_timeout"),
        ):
            raw = get(env_name)
            if raw is not None:
                try:
                    pool[name] = float(raw)
                except ValueError:
                    raise _fail(prefix + env_name, f"cannot parse {raw!r} as seconds") from None
        if pool:
            values["connection_pool"] = ConnectionPoolConfig(**pool)
        values.update(overrides)
        return cls(**values)


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def _field_default(cls: type[Any], name: str) -> Any:
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            return f.default
    raise KeyError(name)


def _known_fields(cls: type[Any], values: Mapping[str, Any], where: str) -> dict[str, Any]:
    allowed = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise _fail(where, f"unknown keys {unknown}; allowed: {allowed}")
    return dict(values)


_URL_QUERY: Final[dict[str, Any]] = {
    "db": int,
    "ssl_cert_reqs": str,
    "ssl_ca_certs": str,
    "ssl_certfile": str,
    "ssl_keyfile": str,
    "client_name": str,
    "transport": str,
    "protocol": int,
}


def _parse_url(url: str) -> dict[str, Any]:
    """Split a connection URL into fields; the password is never echoed in errors."""
    if not isinstance(url, str) or "://" not in url:
        raise _fail("url", f"expected '<scheme>://...' with scheme one of {list(SCHEMES)}")
    # A password holding '/', '?' or '#' ends up in the path or the query when
    # it is not percent-encoded: with credentials around, never echo any part.
    has_credentials = "@" in url

    def shown(text: str) -> str:
        return "<hidden: the URL holds credentials>" if has_credentials else text

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _fail("url", f"malformed URL ({shown(str(exc))}); expected e.g. redis://host:6379/0") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise _fail("url", f"unsupported scheme {scheme!r}; allowed: {list(SCHEMES)}")
    result: dict[str, Any] = {
        "scheme": scheme,
        "host": parts.hostname,
        "port": port,
        "db": None,
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
    }
    query: dict[str, Any] = {}
    for key, raw in parse_qsl(parts.query, keep_blank_values=True):
        if key not in _URL_QUERY:
            raise _fail("url", f"unknown query parameter {shown(repr(key))}; allowed: {sorted(_URL_QUERY)}")
        try:
            value = _URL_QUERY[key](raw)
        except ValueError:
            raise _fail("url", f"query parameter {key}={shown(repr(raw))} is not valid") from None
        if key == "db":
            result["db"] = value
        else:
            query[key] = value
    result["query"] = query
    if scheme == "memory":
        if has_credentials:
            # The embedded backend has no users; a name holding '@' would also carry them into the repr.
            raise _fail("url", "memory:// takes no username or password (and a memory server name cannot hold '@')")
        # memory://[name][/db]: a trailing number selects the database, as in redis://.
        name, _, db_part = (parts.netloc + parts.path).strip("/").rpartition("/")
        if not name and not db_part.isdigit():
            name, db_part = db_part, ""
        if db_part and not db_part.isdigit():
            raise _fail("db", f"the URL path must be a database number, got {db_part!r}")
        if db_part:
            if result["db"] is not None and result["db"] != int(db_part):
                raise _fail("db", "the URL path and its ?db= parameter disagree")
            result["db"] = int(db_part)
        result["memory_name"] = name or None
        result["host"] = None
        return result
    if scheme == "unix":
        if not parts.path:
            raise _fail("url", "unix:// needs a socket path, e.g. unix:///run/redis.sock?db=0")
        result["path"] = parts.path
        result["host"] = None
        return result
    if not parts.hostname:
        raise _fail("url", "missing host; expected e.g. redis://localhost:6379/0")
    path = parts.path.strip("/")
    if path:
        if not path.isdigit():
            raise _fail("db", f"the URL path must be a database number, got {shown(repr(path))}")
        if result["db"] is not None and result["db"] != int(path):
            raise _fail("db", "the URL path and its ?db= parameter disagree")
        result["db"] = int(path)
    return result
