"""A separate OS process for the lock tests: ``python lock_worker.py MODE URL ...``.

``mutex URL KEY TASKS ROUNDS``
    waits for ``go`` on stdin, then runs TASKS tasks that each do ROUNDS
    non-atomic read-modify-write increments of ``KEY:counter`` under the lock,
    and prints one JSON list of ``[pid, task, requested, entered, exited]``
    records (``time.monotonic_ns``, the same clock in every process on Linux).

``pause URL KEY RESOURCE LEASE``
    acquires the lock, prints ``ACQUIRED <fencing token>``, waits for ``go`` on
    stdin (the test stops the process meanwhile), then tries a fenced write of
    RESOURCE, leaves the block, and prints a JSON report.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

from neuroglia.data.redis import DistributedLock, LockLostError, RedisConfig, RedisRepository


async def _line() -> str:
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def mutex(url: str, key: str, tasks: int, rounds: int) -> None:
    repo = RedisRepository(RedisConfig(url=url))
    await repo.connect()
    print("READY", flush=True)
    await _line()
    records: list[list[Any]] = []

    async def worker(n: int) -> None:
        for _ in range(rounds):
            requested = time.monotonic_ns()
            async with DistributedLock(repo, key, timeout=5, wait_timeout=30):
                entered = time.monotonic_ns()
                value = int(await repo.get_async(f"{key}:counter") or 0)
                await asyncio.sleep(0.001)  # widen the window a missing lock would expose
                await repo.set_async(f"{key}:counter", value + 1)
                exited = time.monotonic_ns()
            records.append([os.getpid(), n, requested, entered, exited])

    await asyncio.gather(*(worker(n) for n in range(tasks)))
    await repo.disconnect()
    print(json.dumps(records), flush=True)


async def pause(url: str, key: str, resource: str, lease: float) -> None:
    repo = RedisRepository(RedisConfig(url=url))
    lost: list[str] = []
    lock = DistributedLock(repo, key, timeout=lease, on_lost=lambda e: lost.append(str(e)))
    report: dict[str, Any] = {}
    try:
        async with lock:
            print(f"ACQUIRED {lock.fencing_token}", flush=True)
            await _line()  # stopped (SIGSTOP) while waiting here, past the lease
            report["late_write"] = await lock.fenced_set_async(resource, "written late by the first holder")
            report["owned"] = await lock.is_owned()
    except LockLostError as exc:
        report["lost_at_exit"] = str(exc)
    report["on_lost"] = lost
    await repo.disconnect()
    print(json.dumps(report), flush=True)


def main() -> None:
    mode, url, *rest = sys.argv[1:]
    if mode == "mutex":
        asyncio.run(mutex(url, rest[0], int(rest[1]), int(rest[2])))
    elif mode == "pause":
        asyncio.run(pause(url, rest[0], rest[1], float(rest[2])))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
