"""Leader election across three processes, one of them stopped (SIGSTOP) past its lease.

Three worker processes (this file, run as a script) each run the framework's
``LeaderElection`` on a :class:`LeaseCoordinationBackend` against one private
``redis-server``. The leader *acts* by writing a shared resource with its
fencing token (``Leadership.fenced_set_async``) every 20 ms, and logs every
attempt, its outcome and its election events with ``time.monotonic()``
(one clock for every process of the machine).

The test stops the leader with SIGSTOP, waits until another worker has been
elected and has written, resumes the stopped one, and then reads the logs to
prove that at most one leader acted at any time:

* every accepted write of the stopped leader was attempted before it was
  stopped (a write it had sent before the pause may complete after it; one it
  had not sent would carry a token older than the new leader's, and Redis
  refuses it);
* after resuming, the stopped leader attempts nothing: its lease ran out by
  its own clock during the pause, so ``Leadership.is_leader()`` is false
  before any round trip; it reports the lease lost and ``LeaderElection``
  calls ``on_stopped_leading``;
* each fencing token belongs to one process, tokens only grow, and every
  accepted write of one leadership comes before the next leadership began;
* the resource's fencing guard ends at the highest token that wrote.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from neuroglia.data.redis import fenced_token_async
from neuroglia.data.redis.testing import RedisEndpoint

RESOURCE = "kitchen:current-batch"
LEASE = "kitchen"
LEASE_SECONDS = 1
PAUSE = 2.5  # the stopped leader stays stopped this long at least: well past its lease


# -- the worker (run as: python this_file.py <url> <identity> <log>) ------------------------------


async def work(url: str, identity: str, log: Any) -> None:
    from neuroglia.coordination import LeaderElection, LeaderElectionConfig

    from neuroglia.data.redis import LockNotOwnedError, RedisConfig, RedisRepository
    from neuroglia.data.redis.integration import LeaseCoordinationBackend

    def record(event: str, **fields: Any) -> None:
        log.write(json.dumps({"t": time.monotonic(), "event": event, **fields}) + "\n")

    redis = RedisRepository(RedisConfig(url=url))
    backend = LeaseCoordinationBackend(redis, on_lost=lambda key, who, error: record("lost", reason=str(error)))
    election = LeaderElection(
        backend,
        LeaderElectionConfig(
            lease_name=LEASE,
            identity=identity,
            lease_duration=timedelta(seconds=LEASE_SECONDS),
            renew_interval=timedelta(milliseconds=250),
            retry_period=timedelta(milliseconds=100),
        ),
    )
    leadership = backend.leadership(election)

    async def on_started() -> None:
        record("started", token=leadership.fencing_token)

    async def on_stopped() -> None:
        record("stopped")

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    running = asyncio.create_task(election.run(on_started, on_stopped))
    record("ready", pid=os.getpid())
    sequence = 0
    while not stop.is_set():
        if leadership.is_leader():
            sequence += 1
            token = leadership.fencing_token
            record("attempt", token=token, seq=sequence)
            try:
                accepted: bool | None = await leadership.fenced_set_async(RESOURCE, f"{identity}:{token}:{sequence}")
            except LockNotOwnedError:
                accepted = None  # refused here, before sending: no longer the leader
            record("act", token=token, seq=sequence, accepted=accepted)
        await asyncio.sleep(0.02)
    await election.stop()
    await asyncio.wait_for(running, timeout=10)
    await backend.close()
    await redis.disconnect()
    record("exit")


# -- the test ------------------------------------------------------------------------------------------


def start_worker(url: str, name: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, __file__, url, name, str(log)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def read_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.endswith("}")]


@pytest.mark.integration
async def test_a_leader_stopped_past_its_lease_never_acts_again(redis_server: RedisEndpoint, tmp_path: Path) -> None:
    # A database of its own: an election another test left running on the
    # shared database (the demo app's kitchen lease has the same name) cannot take the lease.
    redis_url = redis_server.url.rsplit("/", 1)[0] + "/12"
    from neuroglia.data.redis import RedisConfig
    from neuroglia.data.redis.integration import LeaseCoordinationBackend
    from tests.support.repositories import clean_repository

    async with clean_repository(RedisConfig(url=redis_url)) as redis:
        observer = LeaseCoordinationBackend(redis)
        names = [f"kitchen-{i}" for i in range(3)]
        logs = {name: tmp_path / f"{name}.log" for name in names}
        workers = {name: start_worker(redis_url, name, logs[name]) for name in names}
        stopped_name: str | None = None
        try:

            def accepted_since(name: str, since: float) -> int:
                return sum(1 for e in read_log(logs[name]) if e["event"] == "act" and e["accepted"] and e["t"] > since)

            async def first_leader() -> str | None:
                current = await observer.get_lease_holder(f"leases:{LEASE}")
                return current if current in names else None

            leader = await wait_until(first_leader, 15, "a first leader")
            await wait_until_sync(lambda: accepted_since(leader, 0) >= 5, 10, "the first leader's writes")

            workers[leader].send_signal(signal.SIGSTOP)
            stopped_name = leader
            t_stop = time.monotonic()  # read after: nothing the stopped worker logs can come later

            async def new_leader() -> str | None:
                # Between an acquisition and its holder record the lease names the lock's token: wait for a name.
                current = await observer.get_lease_holder(f"leases:{LEASE}")
                return current if current in names and current != leader else None

            successor = await wait_until(new_leader, 15, "a new leader")
            await wait_until_sync(lambda: accepted_since(successor, t_stop) >= 5, 10, "the new leader's writes")
            await asyncio.sleep(max(0.0, t_stop + PAUSE - time.monotonic()))

            t_resume = time.monotonic()  # read first: the resumed worker may log before this process runs again
            workers[leader].send_signal(signal.SIGCONT)
            stopped_name = None

            def stepped_down() -> bool:
                events = [e["event"] for e in read_log(logs[leader]) if e["t"] > t_resume]
                return "lost" in events and "stopped" in events

            await wait_until_sync(stepped_down, 5, "the resumed leader to step down")
            await asyncio.sleep(0.5)
        finally:
            if stopped_name is not None:
                workers[stopped_name].send_signal(signal.SIGCONT)
            for process in workers.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for name, process in workers.items():
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
                    pytest.fail(f"{name} did not stop within 15 s of SIGTERM")
        for name, process in workers.items():
            assert process.returncode == 0, f"{name} exited with {process.returncode}: {process.stderr.read()!r}"  # type: ignore[union-attr]

        events = {name: read_log(path) for name, path in logs.items()}
        for name in names:
            assert events[name][-1]["event"] == "exit", f"{name} did not finish cleanly"

        # The stopped leader: every accepted write was attempted before the stop, nothing after the resume.
        old = events[leader]
        old_token = next(e["token"] for e in old if e["event"] == "started")
        assert all(e["t"] < t_stop for e in old if e["event"] == "attempt" and e["token"] == old_token)
        assert [e for e in old if e["event"] == "attempt" and e["t"] > t_resume] == []
        after = [e["event"] for e in old if e["t"] > t_resume]
        assert "lost" in after
        assert "stopped" in after
        resumed_reaction = min(e["t"] for e in old if e["t"] > t_resume and e["event"] in ("lost", "stopped"))
        assert resumed_reaction - t_resume < 3

        # Tokens: one process each, only growing; each leadership's writes precede the next leadership.
        owner: dict[int, str] = {}
        accepted_by_token: dict[int, list[dict[str, Any]]] = defaultdict(list)
        attempts = {(name, e["seq"]): e["t"] for name in names for e in events[name] if e["event"] == "attempt"}
        for name in names:
            for e in events[name]:
                if e["event"] == "act" and e["accepted"]:
                    assert owner.setdefault(e["token"], name) == name, f"token {e['token']} used by two processes"
                    accepted_by_token[e["token"]].append({**e, "sent": attempts[(name, e["seq"])], "name": name})
        starts = sorted((e["t"], e["token"], name) for name in names for e in events[name] if e["event"] == "started")
        tokens_in_order = [token for _, token, _ in starts]
        assert tokens_in_order == sorted(tokens_in_order)
        assert len(set(tokens_in_order)) == len(tokens_in_order)
        for (_, token, _), (next_start, _, _) in itertools.pairwise(starts):
            for act in accepted_by_token.get(token, []):
                assert act["sent"] < next_start, f"a write of token {token} was sent after the next leader began"
        successor_token = next(t for _, t, n in starts if n == successor)
        assert successor_token > old_token
        assert len(accepted_by_token[old_token]) >= 5
        assert len(accepted_by_token[successor_token]) >= 5

        # The resource's guard: the highest token that wrote.
        assert await fenced_token_async(redis, RESOURCE) == max(accepted_by_token)


async def wait_until(probe: Any, timeout: float, what: str) -> Any:
    """Poll the async ``probe`` (bounded) until it returns something truthy; return that."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = await probe()
        if found:
            return found
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def wait_until_sync(condition: Any, timeout: float, what: str) -> None:
    """Poll the plain ``condition`` (bounded) without blocking the event loop."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


if __name__ == "__main__":
    with open(sys.argv[3], "a", buffering=1, encoding="utf-8") as worker_log:  # one flushed line per event
        asyncio.run(work(sys.argv[1], sys.argv[2], worker_log))
