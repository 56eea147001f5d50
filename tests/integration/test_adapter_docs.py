"""The adapters' sections of docs/framework.md run as written.

Every ``python`` block of the *Entity repository* and *Leader election*
sections, and of *Two RedisHealthChecks: which one*, is executed on its own
(a fresh namespace, top-level ``await`` allowed, a fresh class-level
``ServiceCollection`` for the framework's builders), unless an HTML comment
``<!-- not-run: reason -->`` right before it says why it cannot run alone.
The blocks use ``memory://`` only.
"""

from __future__ import annotations

import ast
import asyncio
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "framework.md"
SECTIONS = ("## Entity repository", "## Leader election", "### Two `RedisHealthCheck`s: which one")
_FENCE = re.compile(r"(?P<marker><!-- not-run: (?P<reason>[^>]+) -->\n)?```python\n(?P<code>.*?)```", re.S)


def section(text: str, heading: str) -> str:
    start = text.index(heading + "\n")
    level = heading.split(" ")[0]
    rest = text[start + len(heading) + 1 :]
    # Until the next heading of the same or a higher level.
    ends = [m.start() for m in re.finditer(rf"^(#{{1,{len(level)}}}) ", rest, re.M)]
    return rest[: ends[0]] if ends else rest


def blocks() -> list[Any]:
    """Each block's code, padded with blank lines so that tracebacks name its lines in the file."""
    text = DOC.read_text(encoding="utf-8")
    found = []
    for heading in SECTIONS:
        body = section(text, heading)
        offset = text.index(body)
        for number, match in enumerate(_FENCE.finditer(body), start=1):
            label = f"{heading.lstrip('# ')} #{number}"
            marks = [pytest.mark.skip(reason=match["reason"])] if match["marker"] else []
            first_line = text.count("\n", 0, offset + match.start("code"))
            found.append(pytest.param("\n" * first_line + match["code"], id=label, marks=marks))
    return found


def test_the_sections_have_runnable_blocks() -> None:
    runnable = [p for p in blocks() if not p.marks]
    assert len(runnable) >= 4


@pytest.mark.parametrize("code", [p for p in blocks() if not p.marks])
def test_block_runs(code: str, fresh_services: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # dont_inherit: the block runs with its own future flags, not this file's.
    compiled = compile(code, str(DOC), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    # A module of its own, as a reader's script would be (dataclasses and
    # typing look classes' modules up in sys.modules).
    module = types.ModuleType("docs_block")
    monkeypatch.setitem(sys.modules, module.__name__, module)

    async def run() -> None:
        outcome = eval(compiled, module.__dict__)  # the documentation's own code
        if asyncio.iscoroutine(outcome):
            await outcome

    asyncio.run(asyncio.wait_for(run(), timeout=30))


def test_every_skipped_block_says_why() -> None:
    text = DOC.read_text(encoding="utf-8")
    for heading in SECTIONS:
        for match in _FENCE.finditer(section(text, heading)):
            if match["marker"]:
                assert match["reason"].strip()
