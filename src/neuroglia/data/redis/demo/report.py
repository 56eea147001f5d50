"""The demo's report: aligned tables, each section's outcome, the header and the summary."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from .. import RedisConfig

__all__ = [
    "DemoResult",
    "LogCapture",
    "SectionOutcome",
    "format_table",
    "ms",
    "short",
    "write_header",
    "write_summary",
]


def ms(seconds: float) -> str:
    """``seconds`` in milliseconds, two decimals below 10 ms, one above."""
    milliseconds = seconds * 1000
    return f"{milliseconds:.2f} ms" if milliseconds < 10 else f"{milliseconds:.1f} ms"


def short(value: Any, width: int = 44) -> str:
    """``value`` (its ``repr`` unless a string) cut to ``width`` characters."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], indent: str = "  ") -> list[str]:
    """Align ``rows`` under ``headers``; columns of numbers or timings align right."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    numeric = [
        bool(rows)
        and all(
            (isinstance(row[i], int | float) and not isinstance(row[i], bool))
            or (isinstance(row[i], str) and row[i].endswith(" ms"))
            for row in rows
        )
        for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return (indent + "  ".join(parts)).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(row) for row in cells)]


@dataclass
class SectionOutcome:
    """What one section did."""

    title: str
    checks: int = 0
    elapsed: float = 0.0


@dataclass
class DemoResult:
    """The outcome of a whole run (also what the in-process tests inspect)."""

    url: str
    prefix: str
    sections: list[SectionOutcome] = field(default_factory=list)
    removed_keys: int = 0
    remaining_keys: int = -1
    failure: str | None = None

    @property
    def checks(self) -> int:
        """Checks passed over every section."""
        return sum(s.checks for s in self.sections)

    @property
    def ok(self) -> bool:
        """Whether every section ran and every check passed, and nothing was left behind."""
        return self.failure is None and self.remaining_keys == 0


class LogCapture(logging.Handler):
    """Keeps the library's log records of a run, for the report (and off stderr)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def write_header(out: TextIO, config: RedisConfig, info: dict[str, Any], prefix: str, sections: int) -> None:
    """The report's title and where the run happens."""
    title = "neuroglia-redis demo: Mario's Pizzeria on the Redis Cache Repository"
    if config.scheme == "memory":
        server = f"{config.redacted_url} (embedded backend, no server needed)"
    else:
        server = f"{config.redacted_url} (Redis {info.get('redis_version', '?')}, {info.get('redis_mode', '?')})"
    out.write(f"{title}\n{'=' * len(title)}\n")
    for label, value in (
        ("server", server),
        ("key prefix", f"{prefix} (removed at the end)"),
        ("sections", str(sections)),
    ):
        out.write(f"  {label:<11} {value}\n")


def write_summary(out: TextIO, result: DemoResult) -> None:
    """Checks and time per section, the clean-up, and the verdict on the last line."""
    title = "Summary"
    out.write(f"\n{title}\n{'-' * len(title)}\n")
    rows: list[list[Any]] = [[s.title, s.checks, ms(s.elapsed)] for s in result.sections]
    rows.append(["total", result.checks, ms(sum(s.elapsed for s in result.sections))])
    for text in format_table(["section", "checks", "time"], rows):
        out.write(text + "\n")
    out.write("\n")
    if result.remaining_keys >= 0:
        out.write(
            f"  clean-up: removed {result.removed_keys} demo keys under {result.prefix}*; "
            f"{result.remaining_keys} remain\n"
        )
    if result.failure:
        out.write(f"\nFAILED: {result.failure}\n")
    elif result.remaining_keys != 0:
        out.write(f"\nFAILED: {result.remaining_keys} demo keys were left behind\n")
    else:
        out.write(f"\nAll {result.checks} checks passed in {len(result.sections)} sections.\n")
