"""Every Python block of docs/caching.md runs as it is (memory://, top-level await allowed).

A block preceded by ``<!-- not-run: reason -->`` is only parsed.
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "caching.md"
_BLOCK = re.compile(r"(?P<before>(?:<!-- not-run: [^>]+ -->\n)?)```python\n(?P<code>.*?)```", re.DOTALL)


def blocks() -> list[tuple[int, str, bool]]:
    text = PAGE.read_text(encoding="utf-8")
    found = []
    for match in _BLOCK.finditer(text):
        line = text.count("\n", 0, match.start("code")) + 1
        found.append((line, match.group("code"), bool(match.group("before"))))
    return found


BLOCKS = blocks()


def test_the_page_has_runnable_examples() -> None:
    assert sum(1 for _, _, skipped in BLOCKS if not skipped) >= 10


@pytest.mark.parametrize(("line", "code", "not_run"), BLOCKS, ids=[f"line-{b[0]}" for b in BLOCKS])
async def test_block_runs(line: int, code: str, not_run: bool) -> None:
    where = f"{PAGE.name}:{line}"
    tree = compile(code, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT | ast.PyCF_ONLY_AST, dont_inherit=True)
    if not_run:
        assert tree.body  # parsed: the block is Python, only not run
        return
    compiled = compile(tree, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    namespace: dict[str, object] = {"__name__": f"docs_block_{line}"}
    # (compiled without this module's "from __future__ import annotations": a block runs as a reader would run it)
    with contextlib.redirect_stdout(io.StringIO()):
        result = eval(compiled, namespace)
        if result is not None:
            await result
