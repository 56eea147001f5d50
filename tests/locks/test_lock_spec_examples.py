"""The Distributed Locking examples of the framework's page, against a real redis-server.

``OrderProcessingService`` and ``KitchenQueueService`` are copied from the page
(the service bodies unchanged); what the page leaves to the reader (loading
an order, charging, the stock store, its exceptions) is filled in with small
Redis-backed stand-ins. Several service instances, each with its own
repository (its own connection pool: in effect separate processes), race on
the same orders, ingredients and queue. ``TestRedisIntegration`` is the
page's integration test as written, with its fixture pointed at a private
server instead of localhost:6379.
"""

from __future__ import annotations

import asyncio
import functools
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from neuroglia.data.redis import DistributedLock, LockTimeoutError, RedisConfig, RedisRepository
from neuroglia.data.redis.testing import RedisEndpoint
from tests.support.repositories import RepositoryFactory

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


class ServiceProviderBase:
    """The framework's service provider, reduced to what the examples call."""

    def __init__(self, repository: RedisRepository) -> None:
        self._repository = repository

    def get_service(self, service_type: type) -> Any:
        assert service_type is RedisRepository
        return self._repository


class InventoryShortageError(Exception):
    pass


class PaymentError(Exception):
    pass


class InsufficientInventoryError(Exception):
    pass


class ConcurrentUpdateError(Exception):
    pass


# --- the page's OrderProcessingService -------------------------------------------


class OrderProcessingService:
    def __init__(self, service_provider: ServiceProviderBase):
        self.redis = service_provider.get_service(RedisRepository)
        self.lock_timeout = 30  # 30 seconds

    async def process_order_safely(self, order_id: str):
        """Process order with distributed locking to prevent race conditions."""
        lock_key = f"mario_pizzeria:order_lock:{order_id}"

        async with DistributedLock(self.redis, lock_key, timeout=self.lock_timeout):
            try:
                # Critical section - only one service instance can process this order
                order = await self.get_order(order_id)

                if order.status != "pending":
                    print(f"Order {order_id} already processed")
                    return

                # Process the order
                await self.validate_inventory(order)
                await self.charge_customer(order)
                await self.update_order_status(order_id, "processing")
                await self.notify_kitchen(order)

                print(f"Order {order_id} processed successfully")

            except InventoryShortageError as e:
                await self.handle_inventory_shortage(order_id, e)
            except PaymentError as e:
                await self.handle_payment_failure(order_id, e)

    async def coordinate_inventory_update(self, ingredient_id: str, quantity_change: int):
        """Update inventory with distributed coordination."""
        lock_key = f"mario_pizzeria:inventory_lock:{ingredient_id}"

        try:
            async with DistributedLock(self.redis, lock_key, timeout=10):
                # Get current inventory
                current_stock = await self.get_ingredient_stock(ingredient_id)

                # Validate the change
                new_stock = current_stock + quantity_change
                if new_stock < 0:
                    raise InsufficientInventoryError(
                        f"Cannot reduce {ingredient_id} by {abs(quantity_change)}. Current stock: {current_stock}"
                    )

                # Update inventory atomically
                await self.update_ingredient_stock(ingredient_id, new_stock)

                # Update cache
                await self.cache_ingredient_stock(ingredient_id, new_stock)

                print(f"Inventory updated: {ingredient_id} = {new_stock}")

        except LockTimeoutError:
            print(f"Could not acquire inventory lock for {ingredient_id}")
            raise ConcurrentUpdateError("Inventory update failed due to concurrent access")  # noqa: B904 (the page's code)


@dataclass
class Order:
    order_id: str
    status: str
    amount: float
    ingredient: str


class PizzeriaOrders(OrderProcessingService):
    """What the page leaves out, stored in Redis (the "database" and the side effects)."""

    async def get_order(self, order_id: str) -> Order:
        data = await self.redis.hgetall_async(f"db:orders:{order_id}")
        return Order(order_id, data["status"], float(data["amount"]), data["ingredient"])

    async def validate_inventory(self, order: Order) -> None:
        await asyncio.sleep(0.005)  # a slow check widens any race
        if await self.get_ingredient_stock(order.ingredient) <= 0:
            raise InventoryShortageError(order.ingredient)

    async def charge_customer(self, order: Order) -> None:
        if order.amount <= 0:
            raise PaymentError(f"cannot charge {order.amount}")
        await self.redis.rpush_async("db:charges", order.order_id)

    async def update_order_status(self, order_id: str, status: str) -> None:
        await self.redis.hset_async(f"db:orders:{order_id}", "status", status)

    async def notify_kitchen(self, order: Order) -> None:
        await self.redis.rpush_async("db:kitchen_notifications", order.order_id)

    async def handle_inventory_shortage(self, order_id: str, error: Exception) -> None:
        await self.update_order_status(order_id, "awaiting_stock")

    async def handle_payment_failure(self, order_id: str, error: Exception) -> None:
        await self.update_order_status(order_id, "payment_failed")

    async def get_ingredient_stock(self, ingredient_id: str) -> int:
        value = await self.redis.get_async(f"db:stock:{ingredient_id}")
        await asyncio.sleep(0.001)  # read-modify-write: a lost update without the lock
        return int(value or 0)

    async def update_ingredient_stock(self, ingredient_id: str, new_stock: int) -> None:
        await self.redis.set_async(f"db:stock:{ingredient_id}", new_stock)

    async def cache_ingredient_stock(self, ingredient_id: str, new_stock: int) -> None:
        await self.redis.set_async(f"mario_pizzeria:stock_cache:{ingredient_id}", new_stock, 300)


# --- the page's KitchenQueueService ------------------------------------------------


class KitchenQueueService:
    def __init__(self, service_provider: ServiceProviderBase):
        self.redis = service_provider.get_service(RedisRepository)
        self.queue_key = "mario_pizzeria:kitchen_queue"
        self.processing_key = "mario_pizzeria:kitchen_processing"

    async def add_order_to_queue(self, order_id: str, priority: int = 0):
        """Add order to kitchen queue with priority."""
        # Use Redis sorted set for priority queue
        order_data = {"order_id": order_id, "queued_at": datetime.utcnow().isoformat(), "priority": priority}

        await self.redis.zadd_async(self.queue_key, {json.dumps(order_data): priority})

        print(f"Added order {order_id} to kitchen queue (priority: {priority})")

    async def get_next_order(self, kitchen_station_id: str) -> dict:
        """Get next order for kitchen processing with distributed coordination."""
        lock_key = "mario_pizzeria:queue_lock"

        async with DistributedLock(self.redis, lock_key, timeout=5):
            # Get highest priority order
            orders = await self.redis.zrange_async(self.queue_key, 0, 0, desc=True, withscores=True)

            if not orders:
                return None

            order_json, priority = orders[0]  # noqa: RUF059 (the page's code)
            order_data = json.loads(order_json)

            # Move from queue to processing
            await self.redis.zrem_async(self.queue_key, order_json)

            processing_data = {
                **order_data,
                "kitchen_station": kitchen_station_id,
                "started_at": datetime.utcnow().isoformat(),
            }

            await self.redis.hset_async(self.processing_key, order_data["order_id"], json.dumps(processing_data))

            return order_data

    async def complete_order_processing(self, order_id: str):
        """Mark order processing as complete."""
        await self.redis.hdel_async(self.processing_key, order_id)
        print(f"Order {order_id} processing completed")


# --- fixtures ------------------------------------------------------------------------


@pytest.fixture
async def instances(redis_server: RedisEndpoint, repo_factory: RepositoryFactory) -> list[ServiceProviderBase]:
    """Three service instances, each with its own repository on the same flushed server."""
    repos = [repo_factory.make(redis_server.url) for _ in range(3)]
    for repo in repos:
        await repo.connect()
    await repos[0].flushdb()
    return [ServiceProviderBase(repo) for repo in repos]


# --- order processing ----------------------------------------------------------------


async def test_each_order_is_processed_once_across_instances(instances: list[ServiceProviderBase]) -> None:
    services = [PizzeriaOrders(sp) for sp in instances]
    redis = services[0].redis
    await redis.set_async("db:stock:cheese", 100)
    for n in range(5):
        await redis.hset_async(f"db:orders:o{n}", {"status": "pending", "amount": "12.5", "ingredient": "cheese"})
    # Every instance receives every order (a redelivered message, a retried request).
    await asyncio.gather(*(s.process_order_safely(f"o{n}") for n in range(5) for s in services for _ in range(2)))
    assert sorted(await redis.lrange_async("db:charges")) == [f"o{n}" for n in range(5)]
    assert len(await redis.lrange_async("db:kitchen_notifications")) == 5
    for n in range(5):
        assert await redis.hget_async(f"db:orders:o{n}", "status") == "processing"
        assert not await redis.exists_async(f"mario_pizzeria:order_lock:o{n}")


async def test_order_failures_are_handled_inside_the_lock(instances: list[ServiceProviderBase]) -> None:
    service = PizzeriaOrders(instances[0])
    redis = service.redis
    await redis.hset_async("db:orders:free", {"status": "pending", "amount": "0", "ingredient": "basil"})
    await redis.hset_async("db:orders:short", {"status": "pending", "amount": "9", "ingredient": "truffle"})
    await redis.set_async("db:stock:basil", 3)
    await service.process_order_safely("free")
    await service.process_order_safely("short")
    assert await redis.hget_async("db:orders:free", "status") == "payment_failed"
    assert await redis.hget_async("db:orders:short", "status") == "awaiting_stock"
    assert not await redis.exists_async("mario_pizzeria:order_lock:free")


# --- inventory -----------------------------------------------------------------------


async def test_concurrent_inventory_updates_lose_nothing(instances: list[ServiceProviderBase]) -> None:
    services = [PizzeriaOrders(sp) for sp in instances]
    redis = services[0].redis
    await redis.set_async("db:stock:flour", 50)
    changes = [+5, -3, +2, -4, +1] * 6  # net +6, 30 updates from 3 instances
    await asyncio.gather(
        *(services[i % 3].coordinate_inventory_update("flour", change) for i, change in enumerate(changes))
    )
    assert int(await redis.get_async("db:stock:flour") or 0) == 56
    assert int(await redis.get_async("mario_pizzeria:stock_cache:flour") or 0) == 56


async def test_inventory_cannot_go_negative(instances: list[ServiceProviderBase]) -> None:
    service = PizzeriaOrders(instances[0])
    await service.redis.set_async("db:stock:olives", 2)
    with pytest.raises(InsufficientInventoryError):
        await service.coordinate_inventory_update("olives", -5)
    assert await service.redis.get_async("db:stock:olives") == "2"
    assert not await service.redis.exists_async("mario_pizzeria:inventory_lock:olives")


async def test_inventory_lock_timeout_becomes_concurrent_update_error(
    instances: list[ServiceProviderBase], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The page waits up to its 10 s lease; a shorter wait keeps the test quick.
    monkeypatch.setitem(globals(), "DistributedLock", functools.partial(DistributedLock, wait_timeout=0.2))
    busy = PizzeriaOrders(instances[1])
    async with DistributedLock(busy.redis, "mario_pizzeria:inventory_lock:salt", timeout=30):
        with pytest.raises(ConcurrentUpdateError):
            await PizzeriaOrders(instances[0]).coordinate_inventory_update("salt", 1)


# --- kitchen queue -------------------------------------------------------------------


async def test_kitchen_stations_take_each_order_once_by_priority(instances: list[ServiceProviderBase]) -> None:
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
