"""The repository through a Sentinel group: commands, locks, health, replica reads, bad input.

One group (primary, replica, three sentinels) serves the module; nothing
here fails over (see ``test_sentinel_failover.py``).
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from neuroglia.data.redis import (
    CacheUnavailableError,
    ConfigurationError,
    DistributedLock,
    RedisCache,
    RedisConfig,
    RedisHashRepository,
    check_health,
)
from neuroglia.data.redis.__main__ import main as cli
from neuroglia.data.redis.testing import SentinelGroup, free_port
from neuroglia.data.redis.testing.sentinel import command
from neuroglia.data.redis.transport.sentinel import SentinelTransport
from tests.sentinel.conftest import SentinelRepositories

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@dataclasses.dataclass
class Pizza:
    id: str
    name: str
    price: float


async def test_commands_reach_the_primary_the_sentinels_name(
    sentinel_repo: SentinelRepositories, sentinel_group: SentinelGroup
) -> None:
    repo = sentinel_repo()
    await repo.set_async("pizza:1", "margherita")
    assert await repo.get_async("pizza:1") == "margherita"
    assert await repo.exists_async("pizza:1")
    await repo.hset_async("order:1", {"size": "L", "qty": "2"})
    assert await repo.hgetall_async("order:1") == {"size": "L", "qty": "2"}
    results = await repo.pipeline().set_async("a", "1").set_async("b", "2").get_many_async(["a", "b"]).execute()
    assert results[-1] == {"a": "1", "b": "2"}
    assert await repo.delete_async("pizza:1") == 1
    assert await repo.get_async("pizza:1") is None
    transport = sentinel_repo.transport(repo)
    assert transport.primary_address == sentinel_group.primary_address()
    # The write is on the primary the sentinels name, not somewhere else.
    assert command(sentinel_group.primary().port, "GET", "a") == b"1"
    await repo.disconnect()  # closes the sentinel, subscription and data connections
    assert await repo.get_async("a") == "1"  # and a later command finds the primary again


async def test_locks_and_fencing_through_the_sentinels(sentinel_repo: SentinelRepositories) -> None:
    repo, other = sentinel_repo(), sentinel_repo()
    tokens: list[int] = []
    for holder in (repo, other, repo):
        lock = DistributedLock(holder, "kitchen:oven", timeout=5)
        async with lock:
            assert lock.fencing_token is not None
            tokens.append(lock.fencing_token)
            assert not await DistributedLock(other if holder is repo else repo, "kitchen:oven", timeout=5).acquire(
                blocking=False
            )
    assert tokens == sorted(set(tokens))


async def test_hash_repository_and_cache_through_the_sentinels(sentinel_repo: SentinelRepositories) -> None:
    repo = sentinel_repo()
    pizzas = RedisHashRepository[Pizza](repo, Pizza, key_prefix="pizza")
    margherita = Pizza(id="margherita", name="Margherita", price=12.5)
    await pizzas.add_async(margherita)
    assert await pizzas.get_async("margherita") == margherita
    computed: list[str] = []

    async def menu() -> str:
        computed.append("menu")
        return "margherita, diavola"

    async with RedisCache(repo, "menu", default_expiration=60) as cache:  # Lua scripts, leases
        assert await cache.get_or_set_async("today", menu) == "margherita, diavola"
        assert await cache.get_or_set_async("today", menu) == "margherita, diavola"
    assert computed == ["menu"]


async def test_health_reports_the_primary(sentinel_repo: SentinelRepositories) -> None:
    report = await check_health(sentinel_repo())
    assert report.healthy
    assert report.reachable
    assert report.status == "healthy"


async def test_replica_reads_go_to_a_replica_and_writes_to_the_primary(
    sentinel_repo: SentinelRepositories, sentinel_group: SentinelGroup
) -> None:
    repo = sentinel_repo(read_from="replica")
    await repo.set_async("menu", "v1")  # a write: the primary
    primary = sentinel_group.primary()
    replica = next(server for server in sentinel_group.servers if server is not primary)
    command(primary.port, "WAIT", "1", "2000")  # replicated before it is read elsewhere
    before = _calls(replica.port, "get")
    values = [await repo.get_async("menu") for _ in range(5)]
    assert values == ["v1"] * 5
    assert _calls(replica.port, "get") - before == 5
    transport = sentinel_repo.transport(repo)
    assert transport.replicas == [(replica.host, replica.port)]
    await repo.set_async("menu", "v2")  # still the primary: a replica would answer READONLY
    assert command(primary.port, "GET", "menu") == b"v2"


async def test_nearest_reads_answer(sentinel_repo: SentinelRepositories, sentinel_group: SentinelGroup) -> None:
    repo = sentinel_repo(read_from="nearest")
    await repo.set_async("nearest", "yes")
    command(sentinel_group.primary().port, "WAIT", "1", "2000")
    assert [await repo.get_async("nearest") for _ in range(3)] == ["yes"] * 3


async def test_an_unknown_service_name_is_named_in_the_error(sentinel_repo: SentinelRepositories) -> None:
    hosts = ",".join(f"{host}:{port}" for host, port in sentinel_repo.group.sentinel_addresses)
    repo = sentinel_repo(f"redis+sentinel://{hosts}/no-such-service")
    with pytest.raises(ConfigurationError, match="no-such-service") as caught:
        await asyncio.wait_for(repo.get_async("k"), 10)
    assert "service_name" in str(caught.value)


async def test_all_sentinels_down_is_an_outage_within_the_deadline(sentinel_repo: SentinelRepositories) -> None:
    nobody = f"redis+sentinel://127.0.0.1:{free_port()},127.0.0.1:{free_port()}/neuroglia"
    repo = sentinel_repo(nobody, operation_timeout=0.5, retry_policy={"retries": 0}, circuit_breaker=False)
    with pytest.raises(CacheUnavailableError, match="sentinel") as caught:
        await asyncio.wait_for(repo.set_async("k", "v"), 10)  # the guard only catches a hang
    assert caught.value.delivery is not None
    assert caught.value.delivery.name == "NOT_SENT"


def test_bad_sentinel_settings_are_refused() -> None:
    config = RedisConfig(url="redis://127.0.0.1:1/0")
    with pytest.raises(ConfigurationError, match="sentinels"):
        SentinelTransport(config, sentinels=[], service_name="svc")
    with pytest.raises(ConfigurationError, match="service_name"):
        SentinelTransport(config, sentinels=[("127.0.0.1", 26379)], service_name="")
    with pytest.raises(ConfigurationError, match="read_from"):
        SentinelTransport(config, sentinels=[("127.0.0.1", 26379)], service_name="svc", read_from="anywhere")


def _calls(port: int, name: str) -> int:
    """How many times the server at ``port`` ran ``name`` (``INFO commandstats``)."""
    info = command(port, "INFO", "commandstats").decode()
    for line in info.splitlines():
        if line.startswith(f"cmdstat_{name}:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


async def test_a_disconnect_while_waiting_for_the_primary_is_an_outage_not_a_cancellation(
    sentinel_repo: SentinelRepositories,
) -> None:
    nobody = f"redis+sentinel://127.0.0.1:{free_port()}/neuroglia"
    repo = sentinel_repo(nobody, operation_timeout=30, retry_policy={"retries": 0}, circuit_breaker=False)
    waiting = asyncio.create_task(repo.get_async("k"))
    await asyncio.sleep(0.3)  # it keeps asking the (absent) sentinel, up to its 30 s deadline
    assert not waiting.done()
    await repo.disconnect()
    with pytest.raises(CacheUnavailableError, match="closed"):
        await asyncio.wait_for(waiting, 10)


async def test_a_read_the_replica_cannot_answer_is_asked_of_the_primary(
    sentinel_repo: SentinelRepositories, sentinel_group: SentinelGroup
) -> None:
    repo = sentinel_repo(read_from="replica", retry_policy={"retries": 0}, circuit_breaker=False)
    await repo.set_async("fallback", "v")
    primary = sentinel_group.primary()
    command(primary.port, "WAIT", "1", "2000")
    assert await repo.get_async("fallback") == "v"  # from the replica
    replica = next(server for server in sentinel_group.servers if server is not primary)
    replica.kill()
    try:
        before = _calls(primary.port, "get")
        assert [await repo.get_async("fallback") for _ in range(3)] == ["v"] * 3  # no error reaches the caller
        assert _calls(primary.port, "get") - before == 3
    finally:
        replica.start()  # still a replica of the same primary: nothing failed over
        sentinel_group.wait_ready()


def test_the_check_command_takes_a_sentinel_url(
    sentinel_group: SentinelGroup, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(["check", "--url", sentinel_group.url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Redis: HEALTHY\n")
    assert "redis+sentinel://" in out
    wrong = sentinel_group.url.replace(f"/{sentinel_group.service_name}", "/no-such-service")
    assert cli(["check", "--url", wrong]) != 0
    assert "no sentinel monitors a primary named 'no-such-service'" in capsys.readouterr().out
