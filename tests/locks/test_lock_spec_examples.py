"""The Distributed Locking examples of the framework's page, against a real redis-server.

``OrderProcessingService`` and ``KitchenQueueService`` are the page's, imported
from :mod:`neuroglia.data.redis.demo.pizzeria` (written once, as the page
writes them); what the page leaves to the reader (loading an order, charging,
the stock store, its exceptions) is completed there, kept in Redis. Several
service instances, each with its own repository (its own connection pool: in
effect separate processes), race on the same orders, ingredients and queue.
``TestRedisIntegration`` is the page's integration test as written, with its
fixture pointed at a private server instead of localhost:6379.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import pytest

from neuroglia.data.redis import DistributedLock, RedisConfig, RedisRepository
from neuroglia.data.redis.demo import ServiceProvider, pizzeria
from neuroglia.data.redis.demo.pizzeria import (
    ConcurrentUpdateError,
    InsufficientInventoryError,
    KitchenQueueService,
    OrderProcessingService,
)
from neuroglia.data.redis.testing import RedisEndpoint
from tests.support.repositories import RepositoryFactory

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


# --- fixtures ------------------------------------------------------------------------


@pytest.fixture
async def instances(redis_server: RedisEndpoint, repo_factory: RepositoryFactory) -> list[ServiceProvider]:
    """Three service instances, each with its own repository on the same flushed server."""
    repos = [repo_factory.make(redis_server.url) for _ in range(3)]
    for repo in repos:
        await repo.connect()
    await repos[0].flushdb()
    return [ServiceProvider(repo) for repo in repos]


# --- order processing ----------------------------------------------------------------


async def test_each_order_is_processed_once_across_instances(instances: list[ServiceProvider]) -> None:
    services = [OrderProcessingService(sp) for sp in instances]
    redis = services[0].redis
    await redis.set_async("mario_pizzeria:stock:cheese", 100)
    for n in range(5):
        await redis.hset_async(
            f"mario_pizzeria:orders:o{n}", {"status": "pending", "amount": "12.5", "ingredient": "cheese"}
        )
    # Every instance receives every order (a redelivered message, a retried request).
    await asyncio.gather(*(s.process_order_safely(f"o{n}") for n in range(5) for s in services for _ in range(2)))
    assert sorted(await redis.lrange_async("mario_pizzeria:charges")) == [f"o{n}" for n in range(5)]
    assert len(await redis.lrange_async("mario_pizzeria:kitchen_notifications")) == 5
    for n in range(5):
        assert await redis.hget_async(f"mario_pizzeria:orders:o{n}", "status") == "processing"
        assert not await redis.exists_async(f"mario_pizzeria:order_lock:o{n}")


async def test_order_failures_are_handled_inside_the_lock(instances: list[ServiceProvider]) -> None:
    service = OrderProcessingService(instances[0])
    redis = service.redis
    await redis.hset_async("mario_pizzeria:orders:free", {"status": "pending", "amount": "0", "ingredient": "basil"})
    await redis.hset_async("mario_pizzeria:orders:short", {"status": "pending", "amount": "9", "ingredient": "truffle"})
    await redis.set_async("mario_pizzeria:stock:basil", 3)
    await service.process_order_safely("free")
    await service.process_order_safely("short")
    assert await redis.hget_async("mario_pizzeria:orders:free", "status") == "payment_failed"
    assert await redis.hget_async("mario_pizzeria:orders:short", "status") == "awaiting_stock"
    assert not await redis.exists_async("mario_pizzeria:order_lock:free")


# --- inventory -----------------------------------------------------------------------


async def test_concurrent_inventory_updates_lose_nothing(instances: list[ServiceProvider]) -> None:
    services = [OrderProcessingService(sp) for sp in instances]
    redis = services[0].redis
    await redis.set_async("mario_pizzeria:stock:flour", 50)
    changes = [+5, -3, +2, -4, +1] * 6  # net +6, 30 updates from 3 instances
    await asyncio.gather(
        *(services[i % 3].coordinate_inventory_update("flour", change) for i, change in enumerate(changes))
    )
    assert int(await redis.get_async("mario_pizzeria:stock:flour") or 0) == 56
    assert int(await redis.get_async("mario_pizzeria:stock_cache:flour") or 0) == 56


async def test_inventory_cannot_go_negative(instances: list[ServiceProvider]) -> None:
    service = OrderProcessingService(instances[0])
    await service.redis.set_async("mario_pizzeria:stock:olives", 2)
    with pytest.raises(InsufficientInventoryError):
        await service.coordinate_inventory_update("olives", -5)
    assert await service.redis.get_async("mario_pizzeria:stock:olives") == "2"
    assert not await service.redis.exists_async("mario_pizzeria:inventory_lock:olives")


async def test_inventory_lock_timeout_becomes_concurrent_update_error(
    instances: list[ServiceProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The page waits up to its 10 s lease; a shorter wait keeps the test quick.
    monkeypatch.setattr(pizzeria, "DistributedLock", functools.partial(DistributedLock, wait_timeout=0.2))
    busy = OrderProcessingService(instances[1])
    async with DistributedLock(busy.redis, "mario_pizzeria:inventory_lock:salt", timeout=30):
        with pytest.raises(ConcurrentUpdateError):
            await OrderProcessingService(instances[0]).coordinate_inventory_update("salt", 1)


# --- kitchen queue -------------------------------------------------------------------


async def test_kitchen_stations_take_each_order_once_by_priority(instances: list[ServiceProvider]) -> None:
    kitchens = [KitchenQueueService(sp) for sp in instances]
    for n in range(12):
        await kitchens[n % 3].add_order_to_queue(f"k{n}", priority=n)
    taken: list[tuple[str, dict[str, Any]]] = []

    async def station(name: str, kitchen: KitchenQueueService) -> None:
        while (order := await kitchen.get_next_order(name)) is not None:
            taken.append((name, order))
            await kitchen.complete_order_processing(order["order_id"])

    await asyncio.gather(*(station(f"station-{i}", k) for i, k in enumerate(kitchens) for _ in range(2)))
    ids = [order["order_id"] for _, order in taken]
    assert sorted(ids) == sorted(f"k{n}" for n in range(12))  # each exactly once
    for name in {name for name, _ in taken}:  # each station saw priorities in decreasing order
        mine = [order["priority"] for who, order in taken if who == name]
        assert mine == sorted(mine, reverse=True)
    redis = kitchens[0].redis
    assert await redis.zcard_async(kitchens[0].queue_key) == 0
    assert await redis.hlen_async(kitchens[0].processing_key) == 0
    assert not await redis.exists_async("mario_pizzeria:queue_lock")


# --- the page's integration test -----------------------------------------------------


@pytest.mark.integration
class TestRedisIntegration:
    @pytest.fixture
    async def redis_repository(self, redis_server: RedisEndpoint):
        config = RedisConfig(
            host=redis_server.config(db=15).redacted_url,  # Test database (private server)
            connection_pool_size=5,
        )
        redis = RedisRepository(config)
        await redis.connect()
        yield redis
        await redis.flushdb()  # Clean up
        await redis.disconnect()

    @pytest.mark.asyncio
    async def test_distributed_locking(self, redis_repository):
        """Test distributed locking behavior."""
        lock_key = "test_lock"

        # Acquire lock
        lock = DistributedLock(redis_repository, lock_key, timeout=5)

        async with lock:
            # Lock should be held
            assert await redis_repository.exists_async(lock_key)

        # Lock should be released
        assert not await redis_repository.exists_async(lock_key)
