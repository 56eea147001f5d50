"""What the demo's sections share: the run (its repositories, the simulated outage) and a section's context.

A section is ``async def my_section(ctx: DemoContext) -> None``: it builds the
page's services (:mod:`.pizzeria`) on ``ctx.services`` (or on
:func:`provider` of another repository of the run), calls them with
:meth:`DemoContext.call` (its result, its time, and what the page's code
printed meanwhile), and reports with ``ctx.table``, ``ctx.note`` and
``ctx.check``.

The page's services print. While the sections run, ``sys.stdout`` is a
router (:func:`capturing_prints`) that hands each line to the
:meth:`DemoContext.call` awaiting it, in the task that printed it, so that
concurrent calls keep their lines apart; what is printed outside a call is
dropped. The report is written to the stream given to the run, never to
``sys.stdout``.

The simulated outage is the testing kit's :class:`~neuroglia.data.redis.testing.Faults`:
the repositories built with ``outage=True`` send through a
:class:`~neuroglia.data.redis.testing.FaultInjectingTransport`, so while
``run.faults.outage`` is true their commands fail as refused connections,
inside the process; the server is never stopped or touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Generic, TextIO, TypeVar, cast

from .. import ConnectionPoolConfig, RedisConfig, RedisRepository
from ..testing import FaultInjectingTransport, Faults
from ..transport import Transport, build_transport
from .pizzeria import ServiceProviderBase
from .report import SectionOutcome, format_table

__all__ = [
    "DEMO_BREAKER",
    "DEMO_RETRY",
    "Call",
    "DemoCheckFailed",
    "DemoContext",
    "DemoRun",
    "Section",
    "SectionFn",
    "ServiceProvider",
    "capturing_prints",
    "demo_config",
    "gathered",
    "provider",
]

T = TypeVar("T")

DEMO_BREAKER: dict[str, Any] = {"failure_threshold": 3, "recovery_timeout": 0.2, "success_threshold": 2}
"""The demo repositories' circuit breaker: a short recovery so the outage demo stays quick."""

DEMO_RETRY: dict[str, Any] = {"retries": 2, "retry_delay": 0.005, "backoff_factor": 2, "max_retry_delay": 0.02}
"""The demo repositories' retries: the page's shape, with delays of milliseconds."""


def demo_config(
    url: str,
    prefix: str,
    timeout: float,
    *,
    decode_responses: bool = True,
    fallback: Mapping[str, Any] | bool | None = None,
    breaker_name: str = "redis",
) -> RedisConfig:
    """The config of a demo repository: ``url``, the run's key prefix, the given timeouts, metrics on."""
    pool = ConnectionPoolConfig(socket_timeout=timeout, socket_connect_timeout=timeout, pool_timeout=timeout)
    return RedisConfig(
        url=url,
        key_prefix=prefix,
        connection_pool=pool,
        decode_responses=decode_responses,
        enable_metrics=True,
        metrics_prefix="mario_pizzeria_redis",
        circuit_breaker={**DEMO_BREAKER, "name": breaker_name},
        retry_policy=DEMO_RETRY,
        fallback=fallback,
    )


class ServiceProvider:
    """The smallest service provider the page's services need: ``get_service(RedisRepository)``."""

    def __init__(self, repository: RedisRepository) -> None:
        self.repository = repository

    def get_service(self, service_type: type[Any]) -> Any:
        """The repository for ``RedisRepository``; ``None`` for any other type, as the framework's provider."""
        return self.repository if service_type is RedisRepository else None


def provider(repository: RedisRepository) -> ServiceProviderBase:
    """A :class:`ServiceProvider` of ``repository``, typed as the page's services take it.

    The page annotates ``service_provider: ServiceProviderBase`` (the
    framework's abstract container) and calls only ``get_service`` on it.
    """
    return cast(ServiceProviderBase, ServiceProvider(repository))


class DemoRun:
    """What the sections of one run share: how to build repositories, and the simulated outage.

    Every repository it builds uses the run's server and key prefix; they are
    all closed by :meth:`close` at the end of the run.
    """

    def __init__(self, url: str, prefix: str, timeout: float) -> None:
        self.url = url
        self.prefix = prefix
        self.timeout = timeout
        self.faults = Faults()
        """The outage of the repositories built with ``outage=True``: set ``faults.outage`` to start it."""
        self.repositories: list[RedisRepository] = []
        """Every repository of the run, in the order built (the demo repository first)."""
        self._instances: list[RedisRepository] = []
        self._transports: list[Transport] = []  # injected: a repository does not close them

    def config(self, **options: Any) -> RedisConfig:
        """:func:`demo_config` for this run's server and prefix."""
        return demo_config(self.url, self.prefix, self.timeout, **options)

    def repository(self, *, outage: bool = False, **options: Any) -> RedisRepository:
        """A new repository of the run; ``outage=True`` sends its commands through :attr:`faults`."""
        config = self.config(**options)
        transport: Transport | None = None
        if outage:
            transport = FaultInjectingTransport(build_transport(config), self.faults)
            self._transports.append(transport)
        repository = RedisRepository(config, transport=transport)
        self.repositories.append(repository)
        return repository

    def instances(self, count: int) -> list[RedisRepository]:
        """The repositories of ``count`` service instances ("instance-1"...), built on first use.

        Each has its own connection pool, as separate processes would, so
        what they share goes through Redis only.
        """
        while len(self._instances) < count:
            self._instances.append(self.repository())
        return self._instances[:count]

    async def close(self) -> None:
        """Close every repository of the run, and the transports given to them."""
        for repository in reversed(self.repositories):
            await repository.disconnect()
        for transport in self._transports:
            await transport.close()


# -- what the page's code prints ------------------------------------------------------

_printed: ContextVar[list[str] | None] = ContextVar("neuroglia_redis_demo_printed", default=None)


class _PrintRouter(io.TextIOBase):
    """``sys.stdout`` during a run: each write goes to the capture of the task that wrote it."""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        capture = _printed.get()
        if capture is not None:
            capture.append(text)
        return len(text)


@contextlib.contextmanager
def capturing_prints() -> Iterator[None]:
    """Route ``print`` to the :meth:`DemoContext.call` awaiting it, for the duration of the block."""
    with contextlib.redirect_stdout(_PrintRouter()):
        yield


async def gathered(*calls: Awaitable[T]) -> list[T]:
    """``asyncio.gather(*calls)``, started only when awaited: inside the :meth:`DemoContext.call` awaiting it.

    ``asyncio.gather`` starts its tasks when it is called, and a task keeps
    the context it was started in; written as ``ctx.call(gathered(...))``,
    the tasks start inside the call's capture, so what they print is kept.
    """
    return list(await asyncio.gather(*calls))


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One awaited call of the page's code: what it returned, how long it took, what it printed."""

    result: T
    seconds: float
    printed: list[str]


# -- a section's context ---------------------------------------------------------------


class DemoCheckFailed(Exception):
    """A demo step returned something other than what the page promises."""


class DemoContext:
    """What a section gets: the repositories, the page's service provider, the report."""

    def __init__(
        self,
        repo: RedisRepository,
        bytes_repo: RedisRepository,
        out: TextIO,
        title: str = "",
        *,
        run: DemoRun,
    ) -> None:
        self.repo = repo
        """The demo repository: text replies are ``str``, metrics on, its commands through the outage."""
        self.bytes_repo = bytes_repo
        """Same server and prefix, ``decode_responses=False``: replies are ``bytes``."""
        self.services = provider(repo)
        """Resolves ``RedisRepository`` to :attr:`repo` for the page's services."""
        self.run = run
        """What the sections of the run share: more repositories, the outage."""
        self.out = out
        self.outcome = SectionOutcome(title)
        """The section's checks and time, filled in as it runs."""

    def check(self, condition: bool, what: str) -> None:
        """Count a passed check, or stop the demo with ``what`` as the reason."""
        if not condition:
            raise DemoCheckFailed(what)
        self.outcome.checks += 1

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Print an aligned table."""
        for text in format_table(headers, rows):
            self.out.write(text + "\n")
        self.out.write("\n")

    def note(self, text: str) -> None:
        """Print one line of explanation."""
        self.out.write(f"  {text}\n")

    async def call(self, call: Awaitable[T]) -> Call[T]:
        """Await ``call``: its result, the seconds it took, and the lines printed meanwhile by this task.

        Tasks that ``call`` starts print into the same capture (unless they
        await a :meth:`call` of their own); to run several calls at once,
        pass :func:`gathered` of them.
        """
        lines: list[str] = []
        token = _printed.set(lines)
        start = time.perf_counter()
        try:
            result = await call
        finally:
            seconds = time.perf_counter() - start
            _printed.reset(token)
        return Call(result, seconds, "".join(lines).splitlines())

    def misses(self) -> int:
        """Reads of the demo repository that found nothing so far (its own count, ``cache_misses_total``)."""
        metrics = self.repo.metrics
        return metrics.get_counter("cache_misses_total") if metrics is not None else 0

    def errors(self) -> Counter[str]:
        """Failed operations of the demo repository so far, by error type (``errors_total``)."""
        counts: Counter[str] = Counter()
        metrics = self.repo.metrics
        if metrics is not None:
            for kind, name, labels, value in metrics.samples():
                if kind == "counter" and name == "errors_total":
                    counts[dict(labels)["type"]] += value
        return counts


SectionFn = Callable[[DemoContext], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Section:
    """One part of the demo: a title, the page's service it shows, and the code."""

    title: str
    service: str
    run: SectionFn
