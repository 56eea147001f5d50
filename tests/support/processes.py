"""Start the cache worker as separate OS processes and talk to them, bounded in time."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

WORKER = str(Path(__file__).parents[1] / "cache" / "cache_worker.py")

__all__ = ["read_line", "send", "workers"]


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        WORKER,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
    )


@asynccontextmanager
async def workers(*commands: tuple[str, ...]) -> AsyncIterator[list[asyncio.subprocess.Process]]:
    """Start one worker per command, wait for each to say READY, kill any still running at the end."""
    started = [await _spawn(*command) for command in commands]
    try:
        for process in started:
            assert await read_line(process) == "READY"
        yield started
    finally:
        for process in started:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def read_line(process: asyncio.subprocess.Process, within: float = 30) -> str:
    """The worker's next line of output (fails if it exits or stays silent for ``within`` s)."""
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), within)
    assert line, "the worker exited early"
    return line.decode().strip()


async def send(process: asyncio.subprocess.Process, text: str = "go\n") -> None:
    """Write a line to the worker."""
    assert process.stdin is not None
    process.stdin.write(text.encode())
    await process.stdin.drain()
