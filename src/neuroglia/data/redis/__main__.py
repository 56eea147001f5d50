"""The command line: ``python -m neuroglia.data.redis COMMAND [options]``.

Commands:

``demo``
    Run the Mario's Pizzeria services of the framework's page end to end
    (locks, a simulated outage and a metrics summary included) and print a
    report; ``memory://`` (no server) by default, a real server with ``--url``.
``check``
    Check a Redis: ping latency, server version, breaker state, pool usage.
``app``
    Serve Mario's Pizzeria, the example Neuroglia service (orders, a cached
    menu, a kitchen leader, health and metrics) over HTTP until interrupted;
    ``memory://`` by default, a real server with ``--url``. Needs the
    ``neuroglia`` extra.

Each command is one ``_add_<name>_command`` function that adds its
sub-parser and sets ``handler`` (``Namespace -> exit code``); list it in
:data:`COMMANDS`. Library errors reaching :func:`main` become a one-line
message and an exit code, never a traceback.

The commands share the connection options (``--url``, ``--timeout``) and
the exit codes: 0 success (for ``check``: healthy or degraded), 1 the
command failed (a check, an unhealthy Redis, or a library error while
running), 2 bad usage or configuration, 3 Redis unreachable, 130
interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .config import RedisConfig
from .exceptions import CacheException, CacheUnavailableError, ConfigurationError
from .observability.health import DEFAULT_TIMEOUT, HealthReport, check_health, format_report
from .repository import RedisRepository

__all__ = [
    "COMMANDS",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "build_parser",
    "check_config",
    "main",
]

PROG = "python -m neuroglia.data.redis"
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130

Handler = Callable[[argparse.Namespace], int]


def _positive_seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {raw!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {raw!r}")
    return value


def _add_connection_options(parser: argparse.ArgumentParser, *, default_url: str, default_timeout: float) -> None:
    """The options every command that talks to Redis shares."""
    parser.add_argument(
        "--url",
        default=default_url,
        metavar="URL",
        help="where Redis is: redis://host:6379/0, rediss://..., unix:///path?db=0, or memory:// "
        f"(the embedded backend, no server); default: {default_url}",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=default_timeout,
        metavar="SECONDS",
        help=f"connect and read timeout (default: {default_timeout:g})",
    )


# -- demo ----------------------------------------------------------------------


def _add_demo_command(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "demo",
        help="run the Mario's Pizzeria services of the documentation end to end",
        description="Run the services of the Redis Cache Repository page (menu cache, customer "
        "sessions, kitchen queue, order processing and inventory under distributed locks, "
        "kitchen stations, fencing tokens, analytics, segmentation, custom serialization, "
        "the resilient menu service through a simulated outage, metrics) and print a report "
        "ending with a metrics summary. Every key is written under a fresh 'demo:<random>:' "
        "prefix and only those keys are deleted at the end; the database is never flushed, "
        "and the outage is simulated inside the process (the server is never stopped).",
    )
    _add_connection_options(parser, default_url="memory://", default_timeout=5.0)
    parser.set_defaults(handler=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from .demo import ServerRefused, ServerUnreachable, run_demo  # the demo is big: load it only to run it

    try:
        result = asyncio.run(run_demo(args.url, out=sys.stdout, timeout=args.timeout))
    except ServerUnreachable as exc:
        _error(f"{exc}\nStart a server there, or run without --url to use the embedded memory:// backend.")
        return EXIT_UNREACHABLE
    except ServerRefused as exc:
        _error(f"{exc}\nPut the password in the URL: redis://:PASSWORD@host:port/db")
        return EXIT_FAILED
    return EXIT_OK if result.ok else EXIT_FAILED


# -- check -----------------------------------------------------------------------


def _add_check_command(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "check",
        help="check a Redis: ping latency, server version, breaker state, pool usage",
        description="Ping the server, read its version, report breaker state and pool usage.",
        epilog="exit codes: 0 healthy or degraded, 1 unhealthy, 2 bad usage or configuration, 3 unreachable",
    )
    default_url = os.environ.get("REDIS_URL") or "redis://localhost:6379/0"
    _add_connection_options(parser, default_url=default_url, default_timeout=DEFAULT_TIMEOUT)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=_run_check)


def check_config(url: str, timeout: float) -> RedisConfig:
    """The config ``check`` uses: one attempt, no breaker, ``timeout`` everywhere."""
    return RedisConfig(
        url=url,
        retry_policy={"retries": 0},
        circuit_breaker=False,
        operation_timeout=timeout,
        connection_pool={"socket_timeout": timeout, "socket_connect_timeout": timeout, "max_connections": 2},
        client_name="neuroglia-redis-check",
    )


def exit_code(report: HealthReport) -> int:
    """The ``check`` command's exit code for ``report``: 0 when Redis can serve, 3 unreachable, else 1."""
    if report.healthy:
        return EXIT_OK
    return EXIT_UNREACHABLE if not report.reachable else EXIT_FAILED


async def _check(url: str, timeout: float, as_json: bool) -> int:
    repository = RedisRepository(check_config(url, timeout))
    try:
        report = await check_health(repository, timeout=timeout)
    finally:
        await repository.disconnect()
    print(json.dumps(report.as_dict(), indent=2) if as_json else format_report(report))
    return exit_code(report)


def _run_check(args: argparse.Namespace) -> int:
    return asyncio.run(_check(args.url, args.timeout, args.json))


# -- app -----------------------------------------------------------------------------


def _add_app_command(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "app",
        help="serve Mario's Pizzeria, the example Neuroglia service, over HTTP",
        description="Serve the example service (neuroglia.data.redis.demo.app): orders as aggregates, the "
        "menu query answered from the cache, a kitchen leader elected on a lease, /health and /metrics, "
        "under the API /api/menu, /api/orders, /api/kitchen. Its keys live under the prefix "
        "'mario-pizzeria:'. Stop it with Ctrl-C.",
    )
    _add_connection_options(parser, default_url="memory://mario-pizzeria", default_timeout=5.0)
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="the port to listen on (default: 8080)")
    parser.set_defaults(handler=_run_app)


def _run_app(args: argparse.Namespace) -> int:
    try:
        from .demo.app import serve  # the framework is needed only here
    except ImportError as exc:
        _error(f"the example service needs the framework: pip install 'neuroglia-redis[neuroglia]' ({exc})")
        return EXIT_USAGE
    if not args.url.startswith("memory://"):
        report = asyncio.run(_probe(args.url, args.timeout))
        if not report.reachable:
            _error(f"Redis unreachable at {report.target}: {report.message}")
            return EXIT_UNREACHABLE
    serve(args.url, host=args.host, port=args.port, timeout=args.timeout)
    return EXIT_OK


async def _probe(url: str, timeout: float) -> HealthReport:
    repository = RedisRepository(check_config(url, timeout))
    try:
        return await check_health(repository, timeout=timeout)
    finally:
        await repository.disconnect()


# -- the command table -----------------------------------------------------------

COMMANDS: tuple[Callable[[Any], None], ...] = (_add_demo_command, _add_check_command, _add_app_command)
"""Adds each command's sub-parser, in the order ``--help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="neuroglia-redis: the Redis Cache Repository of the Neuroglia framework.",
        epilog="exit codes: 0 ok, 1 failed, 2 bad usage or configuration, 3 Redis unreachable",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(commands)
    return parser


def _error(message: str) -> None:
    sys.stdout.flush()
    print(f"{PROG}: error: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (``sys.argv[1:]`` when ``None``), run the command, return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigurationError as exc:
        _error(f"invalid configuration: {exc}")
        return EXIT_USAGE
    except CacheUnavailableError as exc:
        _error(f"Redis unavailable: {exc}")
        return EXIT_UNREACHABLE
    except CacheException as exc:
        _error(f"{type(exc).__name__}: {exc}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
