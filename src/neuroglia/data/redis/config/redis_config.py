"""RedisConfig: where Redis is and how to talk to it.

The framework's page builds a config in two shapes (``host="localhost",
port=6379, db=0`` and ``host="redis://localhost:6379/15"``); both are
accepted, and also ``url=``. Everything is validated once, here, so that a
bad setting fails at construction with a message that names the field, never
at the first command.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import quote

from ..exceptions import ConfigurationError
from ..resilience.breaker import CircuitBreakerPolicy
from ..resilience.fallback import FallbackPolicy
from ..resilience.retry import RetryPolicy
from ..serialization import SerializationStrategy, resolve_serializer
from ..serialization.envelope import EnvelopePolicy
from .checks import REDACTED, fail, field_default, positive
from .near_cache import NearCacheOptions
from .pool import ConnectionPoolConfig
from .topology import DEFAULT_PORTS, Node, ReadFrom, Topology, check_read_from, format_nodes, parse_nodes
from .url import parse_url

__all__ = ["RedisConfig"]

Scheme = Literal["redis", "rediss", "unix", "memory"]
TransportName = Literal["multiplexed", "redis-py"]
TRANSPORTS: Final[tuple[str, ...]] = ("multiplexed", "redis-py")
_SSL_CERT_REQS: Final[tuple[str, ...]] = ("required", "optional", "none")


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

    A Redis Cluster is named by seed nodes (``redis+cluster://h1:7000,h2:7001``
    or ``cluster_nodes=["h1:7000", "h2:7001"]``), a Sentinel deployment by
    its sentinels and service name (``redis+sentinel://h1:26379,h2:26379/mymaster/0``
    or ``sentinels=[...], service_name="mymaster"``; ``sentinel_username`` and
    ``sentinel_password`` are the sentinels' own credentials, separate from
    the data connections' ``username``/``password``). ``rediss+cluster://``
    and ``rediss+sentinel://`` (or ``ssl=True``) use TLS on every connection.
    ``read_from`` (``"primary"``, ``"replica"`` or ``"nearest"``) sends reads
    to replicas found through the topology; see ``docs/scale-out.md``.

    ``near_cache`` turns on the in-process level in front of Redis kept
    coherent by server-assisted invalidation: ``True`` for the defaults, a
    :class:`~neuroglia.data.redis.NearCacheOptions` or a dict of its fields.
    On the multiplexed transport it needs RESP3 push messages, so
    ``protocol`` becomes 3; the redis-py transport cannot carry it and is
    refused (``docs/caching.md``).

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
    operation_timeout: float | None = 2.0
    fallback: FallbackPolicy | Mapping[str, Any] | bool | None = None
    envelope: EnvelopePolicy | Mapping[str, Any] | None = None
    require_server: bool = False
    transport: TransportName = "multiplexed"
    protocol: int = 2
    near_cache: NearCacheOptions | Mapping[str, Any] | bool | None = None
    cluster_nodes: str | Sequence[str | Node] | None = None
    sentinels: str | Sequence[str | Node] | None = None
    service_name: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)
    read_from: ReadFrom = "primary"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        url = self.url
        host = self.host
        if host is not None and "://" in host:
            if url is not None:
                raise fail("host", "holds a URL while url= is also given; pass only one")
            url, host = host, None
            # Not kept in the field meanwhile: a failed parse leaves this
            # half-built config in the error's traceback, and its repr shows host.
            set_(self, "host", None)
        # Nothing that names a server: the embedded backend, by default rather than by choice.
        implicit = (
            url is None
            and host is None
            and self.port is None
            and not self.ssl
            and self.cluster_nodes is None
            and self.sentinels is None
        )
        if not isinstance(self.require_server, bool):
            raise fail("require_server", f"expected True or False, got {self.require_server!r}")
        if implicit and self.require_server:
            raise fail(
                "url",
                "no Redis server is configured (require_server is on): set REDIS_URL (or url=/host=); "
                "without one every process would get its own private in-memory store",
            )
        set_(self, "_memory_by_default", implicit)
        if implicit:
            url = "memory://"
        parts: dict[str, Any] = parse_url(url) if url is not None else {"scheme": "redis"}
        if parts["scheme"] == "redis" and self.ssl:
            parts["scheme"] = "rediss"
        self._resolve_topology(parts, host)
        for name, given in (
            ("host", host),
            ("port", self.port),
            ("db", self.db),
            ("username", self.username),
            ("password", self.password),
        ):
            from_url = parts.get(name)
            if given is not None and from_url is not None and given != from_url:
                shown = REDACTED if name == "password" else repr(given)
                shown_url = REDACTED if name == "password" else repr(from_url)
                # The traceback keeps this frame's locals: none may hold the URL's password.
                parts.clear()
                from_url = None
                raise fail(name, f"{shown} contradicts the URL, which says {shown_url}")
            parts[name] = given if given is not None else from_url
        for name, value in parts.get("query", {}).items():
            set_(self, name, value)

        scheme: Scheme = parts["scheme"]
        set_(self, "_scheme", scheme)
        topology: Topology = parts.get("topology", "standalone")
        set_(self, "_topology", topology)
        set_(self, "_memory_name", parts.get("memory_name") if scheme == "memory" else None)
        set_(self, "_unix_socket_path", parts["path"] if scheme == "unix" else None)
        if scheme in ("memory", "unix") or topology == "sentinel":
            set_(self, "host", None)
            set_(self, "port", None)
        else:
            set_(self, "host", parts["host"] or "localhost")
            port = 6379 if parts["port"] is None else parts["port"]
            if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
                raise fail("port", f"must be an integer in 1..65535, got {port!r}")
            set_(self, "port", port)
        db = 0 if parts["db"] is None else parts["db"]
        if isinstance(db, bool) or not isinstance(db, int) or db < 0:
            raise fail("db", f"must be an integer >= 0, got {db!r}")
        if topology == "cluster" and db != 0:
            raise fail("db", f"a Redis Cluster has only database 0, got {db}")
        set_(self, "db", db)
        set_(self, "username", parts["username"])
        set_(self, "password", parts["password"])
        set_(self, "ssl", scheme == "rediss")
        # The URL it resolved to, credentials included (masked wherever it is
        # shown): RedisConfig(url=config.url), dataclasses.replace, copies and
        # RedisConfig(**asdict(config)) all name the same target. None when
        # nothing was configured, so that a copy stays "memory by default".
        set_(self, "url", None if implicit else self._url(redact=False))
        self._resolve_pool()
        set_(self, "retry_policy", RetryPolicy.coerce(self.retry_policy))
        CircuitBreakerPolicy.coerce(self.circuit_breaker)  # validates; each repository builds its own
        set_(self, "fallback", FallbackPolicy.coerce(self.fallback))
        set_(self, "envelope", EnvelopePolicy.coerce(self.envelope))
        positive("operation_timeout", self.operation_timeout)
        set_(self, "read_from", check_read_from(self.read_from, topology))
        self._check_transport()
        self._check_near_cache()
        self._check_ssl()
        if not isinstance(self.key_prefix, str):
            raise fail("key_prefix", f"expected a str, got {type(self.key_prefix).__name__}")
        if not isinstance(self.metrics_prefix, str) or not self.metrics_prefix.isidentifier():
            raise fail("metrics_prefix", f"must be an identifier, got {self.metrics_prefix!r}")
        try:
            resolve_serializer(self.serializer)
        except ValueError as exc:
            raise fail("serializer", str(exc)) from None

    def _resolve_topology(self, parts: dict[str, Any], host: str | None) -> None:
        """Merge the URL's topology with the ``cluster_nodes``/``sentinels``/``service_name`` fields.

        A field may repeat what the URL says (as copies of a config do) but
        not contradict it, and a topology cannot be mixed with a
        single-server ``host``/``port``.
        """
        set_ = object.__setattr__
        topology = parts.get("topology", "standalone")
        for name, kind in (("cluster_nodes", "cluster"), ("sentinels", "sentinel")):
            given = getattr(self, name)
            if given is None:
                continue
            nodes = parse_nodes(name, given, DEFAULT_PORTS[kind])
            if topology == "standalone":
                if parts.get("host") is not None or host is not None or parts["scheme"] in ("unix", "memory"):
                    raise fail(name, "cannot be combined with a single-server url/host; pass only one of them")
                topology = parts["topology"] = kind
                parts["nodes"] = nodes
            elif topology != kind:
                raise fail(name, f"is given with a {topology} URL; pass the {topology}'s nodes only")
            elif parts["nodes"] != nodes:
                said = format_nodes(parts["nodes"])
                raise fail(name, f"{format_nodes(nodes)} contradicts the URL, which says {said}")
        service = self.service_name
        if service is not None and (not isinstance(service, str) or not service or "/" in service):
            raise fail("service_name", f"expected a non-empty name without '/', got {service!r}")
        if service is not None and parts.get("service_name") not in (None, service):
            raise fail("service_name", f"{service!r} contradicts the URL, which says {parts['service_name']!r}")
        if topology == "standalone":
            for name in ("service_name", "sentinel_username", "sentinel_password"):
                if getattr(self, name) is not None:
                    raise fail(name, "is only used with sentinels (redis+sentinel:// or sentinels=...)")
            set_(self, "cluster_nodes", None)
            set_(self, "sentinels", None)
            return
        if topology == "sentinel":
            service = parts.get("service_name") or service
            if service is None:
                raise fail("service_name", "a sentinel configuration needs the primary's service name")
            set_(self, "service_name", service)
        elif service is not None or self.sentinel_username is not None or self.sentinel_password is not None:
            raise fail("service_name" if service is not None else "sentinel_password", "is only used with sentinels")
        if self.transport == "redis-py":
            raise fail(
                "transport",
                f"a {topology} topology needs transport='multiplexed': its transport runs on the library's own "
                "connections, not redis-py's pool",
            )
        nodes = parts["nodes"]
        set_(self, "cluster_nodes", nodes if topology == "cluster" else None)
        set_(self, "sentinels", nodes if topology == "sentinel" else None)
        if topology == "cluster":
            # The first seed stands for the cluster where one address is shown (and copies compare it).
            seed_host, seed_port = nodes[0]
            if host not in (None, seed_host) or self.port not in (None, seed_port):
                raise fail("host", "a cluster is named by cluster_nodes; host/port must not name another server")
            parts["host"], parts["port"] = seed_host, seed_port
        elif host is not None or self.port is not None:
            raise fail("host", "a sentinel configuration finds its primary through the sentinels; drop host/port")

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
            explicit = self.connection_pool is not None and in_pool != field_default(ConnectionPoolConfig, pool_name)
            if explicit and in_pool != given:
                raise fail(name, f"{given!r} contradicts connection_pool.{pool_name}={in_pool!r}")
            override: dict[str, Any] = {pool_name: given}
            try:
                pool = dataclasses.replace(pool, **override)
            except ConfigurationError as exc:
                # Name the field the caller set, not the pool field it feeds.
                raise fail(name, str(exc).partition(": ")[2]) from None
        object.__setattr__(self, "connection_pool", pool)
        object.__setattr__(self, "connection_pool_size", pool.max_connections)
        object.__setattr__(self, "health_check_interval", pool.health_check_interval)
        object.__setattr__(self, "decode_responses", pool.decode_responses)

    def _check_transport(self) -> None:
        if self.transport not in TRANSPORTS:
            raise fail("transport", f"allowed values: {list(TRANSPORTS)}, got {self.transport!r}")
        protocol = self.protocol
        if isinstance(protocol, str) and protocol.strip() in ("2", "3"):
            protocol = int(protocol)
            object.__setattr__(self, "protocol", protocol)
        if isinstance(protocol, bool) or protocol not in (2, 3):
            raise fail("protocol", f"must be 2 (RESP2) or 3 (RESP3), got {protocol!r}")
        if protocol == 3 and self.transport == "redis-py" and self.scheme != "memory":
            raise fail("protocol", "3 (RESP3) needs transport='multiplexed'; the redis-py transport speaks RESP2")

    def _check_near_cache(self) -> None:
        options = NearCacheOptions.coerce(self.near_cache)
        object.__setattr__(self, "near_cache", options)
        if options is None or self.scheme == "memory":
            return  # memory://: the in-process server reports writes itself (docs/caching.md)
        if self.transport == "redis-py":
            raise fail(
                "near_cache",
                "needs the multiplexed transport (transport='multiplexed'): its invalidations arrive as RESP3 "
                "push messages on the tracked connection, which the redis-py transport does not carry",
            )
        if options.mode == "default" and self.pool.multiplexed_connections > 1:
            raise fail(
                "near_cache",
                f"mode 'default' needs one shared connection (connection_pool.multiplexed_connections is "
                f"{self.pool.multiplexed_connections}): Redis sends each invalidation only on the connection that "
                "read the key, and the heartbeat proves one connection; use mode='broadcast' with several",
            )
        # Invalidations are RESP3 push messages; replies keep their RESP2 shapes.
        object.__setattr__(self, "protocol", 3)

    def _check_ssl(self) -> None:
        # TLS verifies the server's certificate and host name unless the one
        # loudly named switch, ssl_insecure_skip_verify, says otherwise; see
        # docs/security.md. ssl_cert_reqs=None (the page's value) means the
        # default, "required" (redis-py itself would read None as "none").
        insecure = self.ssl_insecure_skip_verify
        if not isinstance(insecure, bool):
            raise fail("ssl_insecure_skip_verify", f"expected True or False, got {insecure!r}")
        if not isinstance(self.ssl_check_hostname, bool):
            raise fail("ssl_check_hostname", f"expected True or False, got {self.ssl_check_hostname!r}")
        reqs = self.ssl_cert_reqs
        if reqs is not None and reqs not in _SSL_CERT_REQS:
            hint = (
                "; verification cannot be turned off through ssl_cert_reqs alone (see ssl_insecure_skip_verify)"
                if str(reqs).lower() in ("none", "cert_none")
                else ""
            )
            raise fail("ssl_cert_reqs", f"allowed values: {list(_SSL_CERT_REQS)} or None, got {reqs!r}{hint}")
        if reqs == "none" and not insecure:
            raise fail(
                "ssl_cert_reqs",
                "'none' would accept any certificate: verification cannot be turned off through ssl_cert_reqs "
                "alone; set ssl_insecure_skip_verify=True as well if connections anyone can intercept are acceptable",
            )
        if not self.ssl_check_hostname and not insecure:
            raise fail(
                "ssl_check_hostname",
                "False would accept a certificate issued for any other host; set ssl_insecure_skip_verify=True "
                "to turn verification off explicitly",
            )
        if insecure and self.scheme != "rediss":
            raise fail("ssl_insecure_skip_verify", "is set but the connection is not TLS: use rediss:// or ssl=True")
        uses_tls_files = any((self.ssl_ca_certs, self.ssl_certfile, self.ssl_keyfile))
        if uses_tls_files and self.scheme != "rediss":
            raise fail("ssl_ca_certs", "TLS files are set but the connection is not TLS: use rediss:// or ssl=True")
        if bool(self.ssl_certfile) != bool(self.ssl_keyfile):
            raise fail("ssl_certfile", "a client certificate needs both ssl_certfile and ssl_keyfile")
        for name in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile"):
            path = getattr(self, name)
            if path is not None and not os.path.isfile(path):
                raise fail(name, f"no such file: {path!r}")

    # -- derived views -------------------------------------------------------

    @property
    def scheme(self) -> Scheme:
        """``"redis"``, ``"rediss"``, ``"unix"`` or ``"memory"``."""
        return self._scheme  # type: ignore[attr-defined,no-any-return]

    @property
    def topology(self) -> Topology:
        """``"standalone"`` (one server), ``"cluster"`` or ``"sentinel"``."""
        return self._topology  # type: ignore[attr-defined,no-any-return]

    @property
    def nodes(self) -> tuple[Node, ...]:
        """The cluster's seed nodes or the sentinels, as ``(host, port)`` pairs (empty for one server)."""
        nodes = self.cluster_nodes if self.topology == "cluster" else self.sentinels
        return tuple(nodes or ())  # type: ignore[arg-type]

    @property
    def memory_name(self) -> str | None:
        """The name of the ``memory://`` server (``None``: a private one, or not memory)."""
        return self._memory_name  # type: ignore[attr-defined,no-any-return]

    @property
    def unix_socket_path(self) -> str | None:
        """The socket path of a ``unix://`` config."""
        return self._unix_socket_path  # type: ignore[attr-defined,no-any-return]

    @property
    def memory_by_default(self) -> bool:
        """Whether this is the embedded backend because nothing named a server (not by choice)."""
        return self._memory_by_default  # type: ignore[attr-defined,no-any-return]

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
    def near_cache_options(self) -> NearCacheOptions | None:
        """The resolved near cache settings (``None``: off)."""
        assert self.near_cache is None or isinstance(self.near_cache, NearCacheOptions)
        return self.near_cache

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
                auth += ":" + (REDACTED if redact else quote(self.password, safe=""))
            auth += "@"
        if self.scheme == "unix":
            return f"unix://{auth}{self.unix_socket_path}?db={self.db}"
        if self.topology == "cluster":
            return f"{self.scheme}+cluster://{auth}{format_nodes(self.nodes)}"
        if self.topology == "sentinel":
            return f"{self.scheme}+sentinel://{auth}{format_nodes(self.nodes)}/{self.service_name}/{self.db}"
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
            if f.name in ("password", "sentinel_password"):
                value = REDACTED if value else None
                shown.append(f"{f.name}={value}")
                continue
            shown.append(f"{f.name}={value!r}")
        return f"RedisConfig(url={self.redacted_url!r}, {', '.join(shown)})"

    # -- environment ---------------------------------------------------------

    @classmethod
    def from_env(
        cls, prefix: str = "REDIS_", environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> RedisConfig:
        """Build a config from environment variables (``REDIS_URL``, ``REDIS_OPERATION_TIMEOUT``...).

        Every setting has a variable, the resilience settings included; the
        table is in ``docs/usage.md`` and in :data:`~.environment.VARIABLES`.
        A value that does not parse raises :class:`ConfigurationError` naming
        the variable. Keyword arguments override the environment.
        """
        from .environment import settings_from_env

        return cls(**{**settings_from_env(os.environ if environ is None else environ, prefix), **overrides})
