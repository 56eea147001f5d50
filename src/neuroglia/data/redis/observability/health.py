"""Health: is Redis answering, how fast, and in what state is the client side?

:func:`check_health` pings through the repository's own execute path (so a
breaker that fails fast is reported as such), reads the server's version, and
adds what only the client knows: the breaker's state and the pool's usage.
The result is a :class:`HealthReport`, which the framework's observability
endpoints accept as a health check result (``status``, ``message``,
``latency_ms``) and which :func:`format_report` prints for an operator
(the ``check`` command of the command line).
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from time import perf_counter
from typing import Any, Literal

from ..exceptions import CacheException, CacheUnavailableError, CircuitOpenError
from ..resilience.breaker import CircuitState
from .source import Observed

__all__ = [
    "DEFAULT_POOL_BUSY_RATIO",
    "DEFAULT_SLOW_MS",
    "DEFAULT_TIMEOUT",
    "HealthReport",
    "HealthStatus",
    "check_health",
    "format_report",
]

HealthStatus = Literal["healthy", "degraded", "unhealthy"]

DEFAULT_TIMEOUT = 2.0
DEFAULT_SLOW_MS = 250.0
DEFAULT_POOL_BUSY_RATIO = 0.9


@dataclass(frozen=True, slots=True)
class HealthReport:
    """The outcome of one health check.

    ``status`` is ``"healthy"``, ``"degraded"`` (answering, but slow, nearly
    out of pool connections, or with the breaker half-open) or
    ``"unhealthy"`` (not answering, breaker open, or refused). ``message``
    says why when not healthy. ``reachable`` is ``False`` when the server
    was not reached (no connection, no reply in time, or the breaker open),
    as opposed to reached and refusing (a wrong password, say).
    """

    status: HealthStatus
    target: str
    latency_ms: float | None = None
    server_version: str | None = None
    breaker_state: str | None = None
    pool_in_use: int = 0
    pool_created: int = 0
    pool_max: int = 0
    message: str | None = None
    reachable: bool = True
    process_local: bool = False

    @property
    def healthy(self) -> bool:
        """Whether Redis can serve (``healthy`` or ``degraded``)."""
        return self.status != "unhealthy"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return asdict(self)


async def check_health(
    repository: Observed,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    slow_ms: float = DEFAULT_SLOW_MS,
    pool_busy_ratio: float = DEFAULT_POOL_BUSY_RATIO,
) -> HealthReport:
    """Check ``repository``'s Redis: ``PING`` (timed) and ``INFO server``, within ``timeout`` seconds.

    Never raises for an unhealthy Redis: the report says so. A ping slower
    than ``slow_ms``, a pool with at least ``pool_busy_ratio`` of its
    connections in use, or a half-open breaker make it ``degraded``.
    """
    target = repository.config.redacted_url
    status: HealthStatus = "healthy"
    problems: list[str] = []
    latency_ms: float | None = None
    version: str | None = None
    reachable = True
    try:
        async with asyncio.timeout(timeout):
            breaker = repository.circuit_breaker
            cold = int(repository.connection_pool.created_connections) == 0
            if cold and (breaker is None or breaker.state is CircuitState.CLOSED):
                # Open a connection first: the latency reported is the round
                # trip, not the connect and handshake of a cold repository
                # (not while the breaker counts trial calls).
                await repository.ping()
            started = perf_counter()
            await repository.ping()
            latency_ms = (perf_counter() - started) * 1000
            try:
                info = await repository.info("server")
            except CacheException as exc:  # e.g. an ACL that denies INFO: still healthy
                problems.append(f"server version unknown ({type(exc).__name__})")
            else:
                raw_version = info.get("redis_version")
                version = None if raw_version is None else str(raw_version)
    except TimeoutError:
        status, reachable = "unhealthy", False
        problems.append(f"no reply within {timeout:g}s")
    except CircuitOpenError as exc:  # not even tried: recent calls failed
        status, reachable = "unhealthy", False
        problems.append(f"circuit breaker open: {exc}")
    except CacheUnavailableError as exc:
        status, reachable = "unhealthy", False
        problems.append(f"{type(exc).__name__}: {exc}")
    except CacheException as exc:
        status = "unhealthy"
        problems.append(f"{type(exc).__name__}: {exc}")

    breaker = repository.circuit_breaker
    breaker_state = breaker.state if breaker is not None else None
    pool = repository.connection_pool
    in_use, created, maximum = int(pool.in_use_connections), int(pool.created_connections), int(pool.max_connections)
    if status == "healthy":
        if breaker_state is CircuitState.HALF_OPEN:
            status = "degraded"
            problems.append("circuit breaker half-open (recovering)")
        if latency_ms is not None and latency_ms > slow_ms:
            status = "degraded"
            problems.append(f"slow ping: {latency_ms:.1f} ms > {slow_ms:g} ms")
        if maximum and in_use >= pool_busy_ratio * maximum:
            status = "degraded"
            problems.append(f"connection pool nearly exhausted: {in_use}/{maximum} in use")
    if repository.config.scheme == "memory":
        # Serving, but from this process only: every process has its own store.
        problems.append("the target is process-local (memory://): other processes do not share its data or locks")
    return HealthReport(
        status=status,
        target=target,
        latency_ms=latency_ms,
        server_version=version,
        breaker_state=breaker_state.value if breaker_state is not None else None,
        pool_in_use=in_use,
        pool_created=created,
        pool_max=maximum,
        message="; ".join(problems) or None,
        reachable=reachable,
        process_local=repository.config.scheme == "memory",
    )


def format_report(report: HealthReport) -> str:
    """The report as aligned lines for a terminal."""
    latency = f"{report.latency_ms:.2f} ms" if report.latency_ms is not None else "-"
    rows = [
        ("target", report.target),
        ("ping", latency),
        ("server version", report.server_version or "-"),
        ("circuit breaker", report.breaker_state or "off"),
        ("pool", f"{report.pool_in_use} in use / {report.pool_created} open / {report.pool_max} max"),
    ]
    if report.message:
        rows.append(("problem", report.message))
    lines = [f"Redis: {report.status.upper()}"]
    lines += [f"  {name:<16}{value}" for name, value in rows]
    return "\n".join(lines)
