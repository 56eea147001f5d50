"""Every Python block of ``README.md`` and ``docs/*.md`` runs, as a reader would run it.

Each file's blocks run in order in one namespace (a later block may use
what an earlier one defined), with top-level ``await`` allowed, on a fresh
event loop, with the working directory a temporary one. The namespace is a
module, ``docs_<page>``, importable while the page runs, as a reader's own
module is (``Mediator.configure(builder, [__name__])`` finds its handlers). Markers, as an HTML
comment on the line before a block (invisible when the page is rendered):

``<!-- not-run: reason -->``
    the block is shown, not run; the reason must say why (a fragment, a
    shell session, a production host...).
``<!-- on: redis-server -->``
    the block talks to a real server: ``localhost:6379`` and
    ``127.0.0.1:6379`` in it are replaced by the address of the suite's
    private ``redis-server`` (never the machine's shared one), whose
    database is emptied first.

The Neuroglia framework's builders share one class-level
``ServiceCollection`` unless each is given its own; it is emptied before
each block, so a block's registrations never leak into a later block's new
application (an application already built keeps its own provider).
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import io
import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from neuroglia.data.redis import RedisConfig
from neuroglia.data.redis.testing import RedisEndpoint
from tests.support.repositories import clean_repository

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
_FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)
_MARKER = re.compile(r"<!--\s*(not-run|on):\s*(.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    source: str
    skip_reason: str | None
    on_server: bool


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    found = []
    for match in _FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = _MARKER.search(before)
        skip = marker.group(2) if marker and marker.group(1) == "not-run" else None
        server = bool(marker and marker.group(1) == "on" and marker.group(2) == "redis-server")
        found.append(Block(page, line, match.group(1), skip, server))
    return found


def _compile(block: Block, source: str) -> Any:
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    return compile(source, f"{block.page.name}:{block.line}", "exec", flags=flags, dont_inherit=True)


def _fresh_framework_services() -> None:
    from neuroglia.dependency_injection import ServiceCollection
    from neuroglia.hosting.abstractions import ApplicationBuilderBase

    ApplicationBuilderBase.services = ServiceCollection()


async def _run(page_blocks: list[Block], server_url: str | None) -> None:
    module = types.ModuleType(f"docs_{page_blocks[0].page.stem}")
    sys.modules[module.__name__] = module
    try:
        await _run_in(page_blocks, server_url, module.__dict__)
    finally:
        del sys.modules[module.__name__]


async def _run_in(page_blocks: list[Block], server_url: str | None, namespace: dict[str, Any]) -> None:
    for block in page_blocks:
        if block.skip_reason is not None:
            continue
        _fresh_framework_services()
        source = block.source
        if block.on_server:
            assert server_url is not None
            address = server_url.split("://", 1)[1].split("/", 1)[0]
            source = source.replace("localhost:6379", address).replace("127.0.0.1:6379", address)
        code = _compile(block, source)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                result = eval(code, namespace)
                if asyncio.iscoroutine(result):
                    await result
        except Exception as exc:
            raise AssertionError(f"{block.page.name}, block at line {block.line} failed: {exc!r}") from exc


@pytest.fixture
def fresh_framework(monkeypatch: pytest.MonkeyPatch) -> None:
    """The framework's class-level ServiceCollection is restored after the page."""
    from neuroglia.hosting.abstractions import ApplicationBuilderBase

    monkeypatch.setattr(ApplicationBuilderBase, "services", ApplicationBuilderBase.services)


PAGES_WITH_CODE = [page for page in PAGES if blocks(page)]


def test_every_page_with_python_is_run() -> None:
    with_fences = [page for page in PAGES if "```python" in page.read_text(encoding="utf-8")]
    assert with_fences == PAGES_WITH_CODE
    assert len(PAGES_WITH_CODE) >= 8


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=lambda p: p.name)
async def test_the_python_blocks_of_the_page_run(
    page: Path,
    redis_server: RedisEndpoint,
    fresh_framework: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    page_blocks = blocks(page)
    for block in page_blocks:
        if block.skip_reason is not None:
            assert len(block.skip_reason) >= 10, f"{page.name}:{block.line}: say why the block is not run"
    if any(b.on_server for b in page_blocks):
        async with clean_repository(RedisConfig(url=redis_server.url)):
            pass
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["docs"])
    await _run(page_blocks, redis_server.url)


def test_the_marker_parser() -> None:
    page = ROOT / "tests" / "docs" / "_sample.md"
    text = "Intro\n\n```python\nx = 1\n```\n\n<!-- not-run: a fragment of a larger program -->\n```python\ny(\n```\n"
    text += "\n<!-- on: redis-server -->\n```python\nurl = 'redis://localhost:6379/0'\n```\n"
    try:
        page.write_text(text)
        found = blocks(page)
    finally:
        page.unlink()
    assert [(b.line, b.skip_reason, b.on_server) for b in found] == [
        (3, None, False),
        (8, "a fragment of a larger program", False),
        (13, None, True),
    ]
