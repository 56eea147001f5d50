"""One run of the demo: connect, run the sections, clean up the run's keys, write the summary."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Sequence
from typing import TextIO

from .. import CacheAuthenticationError, CacheException, CacheUnavailableError, RedisRepository
from .context import DemoCheckFailed, DemoContext, DemoRun, Section, capturing_prints, demo_config
from .report import DemoResult, LogCapture, SectionOutcome, ms, write_header, write_summary
from .sections import SECTIONS

__all__ = ["ServerRefused", "ServerUnreachable", "run_demo"]


class ServerUnreachable(Exception):
    """The configured Redis could not be reached; the message says where and why."""


class ServerRefused(Exception):
    """The configured Redis answered but refused the username or password."""


async def run_demo(
    url: str = "memory://",
    *,
    out: TextIO,
    timeout: float = 5.0,
    sections: Sequence[Section] = SECTIONS,
) -> DemoResult:
    """Run ``sections`` against ``url`` and write the report to ``out``.

    Raises :class:`~neuroglia.data.redis.ConfigurationError` for a bad URL,
    :class:`ServerUnreachable` when Redis cannot be reached and
    :class:`ServerRefused` when it rejects the credentials. A failed check
    or a library error during the run is recorded in
    :attr:`DemoResult.failure`; the demo's keys are removed either way.
    While the sections run, what the page's services print is captured
    (``sys.stdout`` is redirected, see :mod:`.context`), never mixed into
    the report.
    """
    token = secrets.token_hex(4)
    prefix = f"demo:{token}:"
    config = demo_config(url, prefix, timeout)
    if config.topology == "cluster":
        # The page's services combine keys in one command (SUNIONSTORE of
        # segments, MULTI of the kitchen queue): on a cluster those keys must
        # share a hash slot, so the run's prefix carries a hash tag.
        prefix = f"demo:{{{token}}}:"
        config = demo_config(url, prefix, timeout)
    if config.scheme == "memory" and config.memory_name is None:
        # Name the embedded server so the run's other repositories share its data.
        url = f"memory://demo-{token}"
        config = demo_config(url, prefix, timeout)
    shown_url = config.redacted_url
    result = DemoResult(url=shown_url, prefix=prefix)
    run = DemoRun(url, prefix, timeout)
    repo = run.repository(outage=True)
    bytes_repo = run.repository(decode_responses=False)
    # The library logs on its own loggers (a breaker opening, a lock lost); the
    # report shows those lines under the section that caused them.
    library_log = logging.getLogger("neuroglia.data.redis")
    captured = LogCapture()
    library_log.addHandler(captured)
    try:
        try:
            await repo.connect()
            info = await repo.info("server")
        except CacheUnavailableError as exc:
            raise ServerUnreachable(f"cannot reach Redis at {shown_url}: {exc}") from exc
        except CacheAuthenticationError as exc:
            raise ServerRefused(f"Redis at {shown_url} refused the credentials: {exc}") from exc
        write_header(out, config, info, prefix, len(sections))
        current = ""
        try:
            with capturing_prints():
                for number, section in enumerate(sections, 1):
                    current = section.title
                    ctx = DemoContext(repo, bytes_repo, out, section.title, run=run)
                    result.sections.append(await _run_section(ctx, section, number, len(sections), captured))
        except (DemoCheckFailed, CacheException) as exc:
            kind = "check failed" if isinstance(exc, DemoCheckFailed) else type(exc).__name__
            result.failure = f"{current}: {kind}: {exc}"
        finally:
            # Also on Ctrl-C (a cancelled task may still await here): never leave keys behind,
            # even if a section stopped in the middle of its simulated outage.
            run.faults.outage = False
            if repo.circuit_breaker is not None:
                repo.circuit_breaker.reset()
            await _clean_up(repo, result)
        write_summary(out, result)
        return result
    finally:
        library_log.removeHandler(captured)
        await run.close()


async def _run_section(
    ctx: DemoContext, section: Section, number: int, total: int, captured: LogCapture
) -> SectionOutcome:
    out = ctx.out
    title = f"[{number}/{total}] {section.title} - {section.service}"
    out.write(f"\n{title}\n{'-' * len(title)}\n")
    out.flush()  # progress: the title shows as the section starts, also through a pipe
    logged = len(captured.records)
    start = time.perf_counter()
    try:
        await section.run(ctx)
    finally:
        for record in captured.records[logged:]:
            ctx.note(f"logged: {record.levelname} {record.name}: {record.getMessage()}")
    ctx.outcome.elapsed = time.perf_counter() - start
    out.write(f"  ok: {ctx.outcome.checks} checks passed in {ms(ctx.outcome.elapsed)}\n")
    out.flush()
    return ctx.outcome


async def _clean_up(repo: RedisRepository, result: DemoResult) -> None:
    try:
        result.removed_keys = await repo.delete_pattern_async("*")
        result.remaining_keys = len([k async for k in repo.scan_async("*")])
    except CacheException as exc:
        result.failure = result.failure or f"clean-up: {type(exc).__name__}: {exc}"
