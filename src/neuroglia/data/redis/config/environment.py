"""``RedisConfig.from_env``: every setting from ``REDIS_*`` environment variables.

One table, :data:`VARIABLES`: the variable (after the prefix), where its
value goes (a ``RedisConfig`` field, or a field of one of its nested
settings: ``connection_pool``, ``retry_policy``, ``circuit_breaker``,
``fallback``, ``near_cache``), and how it is parsed. ``docs/usage.md`` shows the same table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from .checks import REDACTED, fail, parse_bool

__all__ = ["VARIABLES", "settings_from_env"]


def _seconds_or_none(raw: str) -> float | None:
    """Seconds, or ``none``/``off`` for no bound."""
    return None if raw.strip().lower() in ("none", "off") else float(raw)


def _comma_list(raw: str) -> tuple[str, ...]:
    """Comma-separated names (``"menu:,orders:"``)."""
    return tuple(part.strip() for part in raw.split(",") if part.strip())


# variable -> (where: "field" or "group.field", parser)
VARIABLES: Final[dict[str, tuple[str, Callable[[str], Any]]]] = {
    "URL": ("url", str),
    "HOST": ("host", str),
    "PORT": ("port", int),
    "DB": ("db", int),
    "USERNAME": ("username", str),
    "PASSWORD": ("password", str),
    "REQUIRE_SERVER": ("require_server", parse_bool),
    "KEY_PREFIX": ("key_prefix", str),
    "SERIALIZER": ("serializer", str),
    "DECODE_RESPONSES": ("decode_responses", parse_bool),
    "ENABLE_METRICS": ("enable_metrics", parse_bool),
    "METRICS_PREFIX": ("metrics_prefix", str),
    "CLIENT_NAME": ("client_name", str),
    "SSL_CA_CERTS": ("ssl_ca_certs", str),
    "SSL_CERTFILE": ("ssl_certfile", str),
    "SSL_KEYFILE": ("ssl_keyfile", str),
    "SSL_CERT_REQS": ("ssl_cert_reqs", str),
    "CLUSTER_NODES": ("cluster_nodes", str),
    "SENTINELS": ("sentinels", str),
    "SERVICE_NAME": ("service_name", str),
    "SENTINEL_USERNAME": ("sentinel_username", str),
    "SENTINEL_PASSWORD": ("sentinel_password", str),
    "READ_FROM": ("read_from", str),
    "TRANSPORT": ("transport", str),
    "PROTOCOL": ("protocol", int),
    "OPERATION_TIMEOUT": ("operation_timeout", _seconds_or_none),
    "POOL_SIZE": ("connection_pool_size", int),
    "HEALTH_CHECK_INTERVAL": ("health_check_interval", float),
    "MULTIPLEXED_CONNECTIONS": ("connection_pool.multiplexed_connections", int),
    "MAX_IN_FLIGHT": ("connection_pool.max_in_flight", int),
    "POOL_TIMEOUT": ("connection_pool.pool_timeout", _seconds_or_none),
    "SOCKET_TIMEOUT": ("connection_pool.socket_timeout", _seconds_or_none),
    "SOCKET_CONNECT_TIMEOUT": ("connection_pool.socket_connect_timeout", _seconds_or_none),
    "RETRIES": ("retry_policy.retries", int),
    "RETRY_DELAY": ("retry_policy.retry_delay", float),
    "RETRY_BACKOFF_FACTOR": ("retry_policy.backoff_factor", float),
    "RETRY_MAX_DELAY": ("retry_policy.max_retry_delay", float),
    "RETRY_JITTER": ("retry_policy.jitter", parse_bool),
    "CIRCUIT_BREAKER": ("circuit_breaker", parse_bool),
    "BREAKER_FAILURE_THRESHOLD": ("circuit_breaker.failure_threshold", int),
    "BREAKER_RECOVERY_TIMEOUT": ("circuit_breaker.recovery_timeout", float),
    "BREAKER_SUCCESS_THRESHOLD": ("circuit_breaker.success_threshold", int),
    "FALLBACK": ("fallback", parse_bool),
    "FALLBACK_MAX_ENTRIES": ("fallback.max_entries", int),
    "FALLBACK_MAX_STALENESS": ("fallback.max_staleness", float),
    "MAX_VALUE_BYTES": ("envelope.max_value_bytes", int),
    "MAX_VALUE_RATIO": ("envelope.max_ratio", int),
    "COMPRESSION": ("envelope.compression", str),
    "NEAR_CACHE": ("near_cache", parse_bool),
    "NEAR_CACHE_MAX_ENTRIES": ("near_cache.max_entries", int),
    "NEAR_CACHE_MAX_BYTES": ("near_cache.max_bytes", int),
    "NEAR_CACHE_MAX_AGE": ("near_cache.max_age", _seconds_or_none),
    "NEAR_CACHE_MODE": ("near_cache.mode", str),
    "NEAR_CACHE_PREFIXES": ("near_cache.prefixes", _comma_list),
    "NEAR_CACHE_COMMANDS": ("near_cache.commands", _comma_list),
    "NEAR_CACHE_HEARTBEAT": ("near_cache.heartbeat_interval", _seconds_or_none),
}


def settings_from_env(environ: Mapping[str, str], prefix: str = "REDIS_") -> dict[str, Any]:
    """The ``RedisConfig`` keyword arguments the variables of ``environ`` set."""
    values: dict[str, Any] = {}
    groups: dict[str, dict[str, Any]] = {}
    for suffix, (where, parse) in VARIABLES.items():
        raw = environ.get(prefix + suffix)
        if raw is None or raw == "":
            continue
        try:
            value = parse(raw)
        except ValueError:
            shown = REDACTED if suffix.endswith("PASSWORD") else repr(raw)
            raise fail(prefix + suffix, f"cannot parse {shown}") from None
        group, _, name = where.rpartition(".")
        if group:
            groups.setdefault(group, {})[name] = value
        else:
            values[where] = value
    for group, fields in groups.items():
        switch = values.get(group)
        if switch is False:
            raise fail(prefix + group.upper(), f"is off while {sorted(fields)} of it are set")
        values[group] = fields
    return values
