"""The ``demo`` command: the framework page's Mario's Pizzeria services, end to end (see :mod:`.sections`)."""

from .sections import (
    SECTIONS,
    DemoCheckFailed,
    DemoContext,
    DemoResult,
    DemoRun,
    OutageSwitch,
    Section,
    ServerRefused,
    ServerUnreachable,
    format_table,
    run_demo,
)

__all__ = [
    "SECTIONS",
    "DemoCheckFailed",
    "DemoContext",
    "DemoResult",
    "DemoRun",
    "OutageSwitch",
    "Section",
    "ServerRefused",
    "ServerUnreachable",
    "format_table",
    "run_demo",
]
