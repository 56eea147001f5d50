"""A cluster that changes under load: slots migrated, a primary killed; and bad cluster URLs.

These tests get a cluster of their own (module scope): they move its slots
and kill one of its primaries. Every load loop is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator

import pytest

from neuroglia.data.redis import (
    CacheException,
    CacheUnavailableError,
    ClusterNodeUnavailableError,
    ConfigurationError,
    RedisConfig,
    RedisRepository,
)
from neuroglia.data.redis.testing import LocalCluster, RedisEndpoint, free_port, key_slot
from tests.support.repositories import RepositoryFactory

pytestmark = [pytest.mark.integration, pytest.mark.cluster, pytest.mark.timeout(120)]

TASKS = 50


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[LocalCluster]:
    """A cluster these tests may reshard and break."""
    with LocalCluster() as cluster:
        yield cluster


class Load:
    """``TASKS`` tasks writing and reading their own keys; each value names the key it was written to."""

    def __init__(self, repo: RedisRepository, keys_per_task: int = 8) -> None:
        self.repo = repo
        self.keys = [[f"load:{t}:{k}" for k in range(keys_per_task)] for t in range(TASKS)]
        self.ok = 0
        self.failed: list[CacheException] = []
        self.wrong: list[tuple[str, str | None]] = []
        self.stop = asyncio.Event()

    async def task(self, index: int) -> None:
        rng = random.Random(index)
        mine = self.keys[index]
        written: dict[str, int] = {}
        for n in range(100_000):  # bounded; the load ends when stop is set
            if self.stop.is_set():
                return
            key = rng.choice(mine)
            try:
                if rng.random() < 0.5:
                    await self.repo.set_async(key, f"{key}|{n}")
                    written[key] = n
                elif rng.random() < 0.8:
                    value = await self.repo.get_async(key)
                    if value is not None and not value.startswith(key + "|"):
                        self.wrong.append((key, value))
                else:
                    values = await self.repo.get_many_async(mine)
                    self.wrong += [(k, v) for k, v in values.items() if v is not None and not v.startswith(k + "|")]
                self.ok += 1
            except CacheException as exc:
                self.failed.append(exc)
                await asyncio.sleep(0.01)
            await asyncio.sleep(0)

    async def run(self, work: asyncio.Future[object], settle: float = 0.3) -> None:
        """Run the load until ``work`` is done, then ``settle`` seconds more."""
        tasks = [asyncio.create_task(self.task(i)) for i in range(TASKS)]
        try:
            await asyncio.wait_for(asyncio.shield(work), 60)
            await asyncio.sleep(settle)
        finally:
            self.stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 30)


async def test_resharding_under_load(own_cluster: LocalCluster, repo_factory: RepositoryFactory) -> None:
    repo = await repo_factory(own_cluster.url)
    await repo.flushdb()
    load = Load(repo)
    slots = sorted({key_slot(k) for row in load.keys for k in row})[:12]

    def migrate() -> int:
        moved = 0
        for slot in slots:
            source = own_cluster.owner_of_slot(slot)
            target = next(p for p in own_cluster.primaries() if p is not source)
            moved += own_cluster.migrate_slot(slot, target, batch=2)
            time.sleep(0.05)
        return moved

    async def reshard() -> int:
        await asyncio.sleep(0.3)  # under load first
        return await asyncio.to_thread(migrate)

    work = asyncio.ensure_future(reshard())
    await load.run(work)
    moved = work.result()
    print(f"\nresharding: {len(slots)} slots ({moved} keys) moved; {load.ok} operations succeeded, "
          f"{len(load.failed)} raised a CacheException")  # fmt: skip
    assert load.ok > 0
    assert load.wrong == []
    assert all(isinstance(exc, CacheException) for exc in load.failed)
    # Every key is readable where it now lives, holding a value written to it.
    values = await repo.get_many_async([k for row in load.keys for k in row])
    assert all(v is None or v.startswith(k + "|") for k, v in values.items())


async def test_failover_under_load(own_cluster: LocalCluster, repo_factory: RepositoryFactory) -> None:
    repo = await repo_factory(own_cluster.url)
    load = Load(repo)
    watched = load.keys[0][0]
    probe_key = "{" + watched + "}probe"  # in the slot of a loaded key, written by the probe alone
    marks: dict[str, float] = {}
    loop = asyncio.get_running_loop()
    killed = asyncio.Event()

    def kill_and_wait() -> None:
        dead = own_cluster.primary_of(probe_key)
        own_cluster.kill_primary_of(probe_key)  # returns once the process is gone
        marks["kill"] = time.monotonic()
        loop.call_soon_threadsafe(killed.set)
        own_cluster.wait_for_promotion(probe_key, dead, timeout=30)
        marks["promoted"] = time.monotonic()

    async def probe() -> None:
        await killed.wait()
        for _ in range(20_000):  # bounded: the promotion comes within 30 s or kill_and_wait fails
            try:
                await repo.set_async(probe_key, "probe")
            except CacheException:
                await asyncio.sleep(0.005)
                continue
            # The old primary is dead: a write that succeeds went to its promoted replica.
            marks.setdefault("first_success", time.monotonic())
            if "promoted" in marks:
                return
            await asyncio.sleep(0.005)

    async def fault() -> None:
        await asyncio.sleep(0.3)
        prober = asyncio.create_task(probe())
        await asyncio.to_thread(kill_and_wait)
        await asyncio.wait_for(prober, 30)

    work = asyncio.ensure_future(fault())
    await load.run(work, settle=0.5)
    work.result()
    after_kill = marks["first_success"] - marks["kill"]
    settled = marks["promoted"] - marks["kill"]
    print(
        f"\nfailover: first success on the killed primary's slots {after_kill:.2f}s after the kill; "
        f"the cluster reported every node ok {settled:.2f}s after the kill; "
        f"{load.ok} operations succeeded, {len(load.failed)} raised a CacheException"
    )
    assert load.wrong == []
    assert all(isinstance(exc, CacheException) for exc in load.failed)
    # One primary down is that node's outage, not the cluster's (the breaker does
    # not count it). Between the failure detection and the promotion the cluster
    # itself may answer CLUSTERDOWN on every slot (cluster-require-full-coverage),
    # which counts: whether the breaker opens then depends on timing.
    assert any(isinstance(exc, ClusterNodeUnavailableError) for exc in load.failed)
    assert await repo.get_async(probe_key) == "probe"
    # Every slot serves again, with no action by the caller.
    await repo.set_many_async({k: f"{k}|after" for row in load.keys for k in row})
    values = await repo.get_many_async([k for row in load.keys for k in row])
    assert all(v == f"{k}|after" for k, v in values.items())


async def test_a_cluster_url_naming_a_standalone_server_is_a_clear_error(redis_server: RedisEndpoint) -> None:
    port = int(redis_server.url.rsplit(":", 1)[1].split("/")[0])
    repo = RedisRepository(RedisConfig(url=f"redis+cluster://127.0.0.1:{port}", operation_timeout=2.0))
    try:
        with pytest.raises(ConfigurationError, match=r"not part of a Redis Cluster.*redis://"):
            await asyncio.wait_for(repo.get_async("k"), 10)
    finally:
        await repo.disconnect()


async def test_unreachable_seeds_are_an_outage(repo_factory: RepositoryFactory) -> None:
    url = f"redis+cluster://127.0.0.1:{free_port()},127.0.0.1:{free_port()}"
    repo = repo_factory.make(RedisConfig(url=url, operation_timeout=1.0, retry_policy={"retries": 0}))
    with pytest.raises(CacheUnavailableError, match="no node answered"):
        await asyncio.wait_for(repo.get_async("k"), 10)
