"""Locks across OS processes on a real redis-server: exclusion, fairness, pauses."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from neuroglia.data.redis import DistributedLock, RedisRepository
from neuroglia.data.redis.testing import RedisEndpoint
from tests.support.locks import no_overlap

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

WORKER = str(Path(__file__).with_name("lock_worker.py"))


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        WORKER,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
    )


async def _read_line(process: asyncio.subprocess.Process, within: float = 30) -> str:
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), within)
    assert line, "the worker exited early"
    return line.decode().strip()


async def _send(process: asyncio.subprocess.Process, text: str) -> None:
    assert process.stdin is not None
    process.stdin.write(text.encode())
    await process.stdin.drain()


async def test_mutual_exclusion_across_processes(
    redis_server: RedisEndpoint, redis_repository: RedisRepository
) -> None:
    processes, tasks, rounds = 3, 5, 10
    workers = [await _spawn("mutex", redis_server.url, "mx", str(tasks), str(rounds)) for _ in range(processes)]
    try:
        for w in workers:
            assert await _read_line(w) == "READY"
        for w in workers:  # start together, for the most contention
            await _send(w, "go\n")
        outputs = [json.loads(await _read_line(w, within=60)) for w in workers]
        for w in workers:
            assert await asyncio.wait_for(w.wait(), 30) == 0
    finally:
        for w in workers:
            if w.returncode is None:
                w.kill()
                await w.wait()
    records = [r for out in outputs for r in out]
    assert len(records) == processes * tasks * rounds
    # The non-atomic increments lost nothing: one holder at a time.
    assert int(await redis_repository.get_async("mx:counter") or 0) == processes * tasks * rounds
    # No two holders overlapped (the clock is the same for every process).
    assert no_overlap([(entered, exited) for _, _, _, entered, exited in records])
    # Every process got turns while the others were busy.
    assert len({pid for pid, *_ in records}) == processes
    # Nobody starved: while one waited, the others overtook it a bounded number of times.
    entries = sorted(entered for *_, entered, _ in records)
    contenders = processes * tasks
    for _, _, requested, entered, _ in records:
        overtaken = sum(1 for e in entries if requested < e < entered)
        assert overtaken <= 3 * contenders
    assert not await redis_repository.exists_async("mx")


async def test_paused_holder_loses_the_lock_and_its_late_write_is_refused(
    redis_server: RedisEndpoint, redis_repository: RedisRepository
) -> None:
    first = await _spawn("pause", redis_server.url, "paused", "paused:resource", "1.0")
    try:
        line = await _read_line(first)
        assert line.startswith("ACQUIRED ")
        first_token = int(line.split()[1])
        assert first.pid is not None
        os.kill(first.pid, signal.SIGSTOP)  # frozen: its watchdog cannot renew any more
        try:
            second = DistributedLock(redis_repository, "paused", timeout=30, wait_timeout=20)
            await second.acquire()  # granted once the first lease has run out
            assert second.fencing_token is not None
            assert second.fencing_token > first_token
            assert await second.fenced_set_async("paused:resource", "written by the second holder")
        finally:
            os.kill(first.pid, signal.SIGCONT)
        await _send(first, "go\n")
        report = json.loads(await _read_line(first))
        assert await asyncio.wait_for(first.wait(), 30) == 0
    finally:
        if first.returncode is None:
            os.kill(first.pid, signal.SIGCONT)
            first.kill()
            await first.wait()
    assert report["late_write"] is False  # refused by the fencing check
    assert report["owned"] is False
    assert "lost" in report["lost_at_exit"]
    assert report["on_lost"]
    # The first holder's exit did not delete the second holder's key.
    assert await redis_repository.get_async("paused") == second.token
    assert await second.is_owned()
    assert await redis_repository.get_async("paused:resource") == "written by the second holder"
    await second.release()
    assert not await redis_repository.exists_async("paused")
