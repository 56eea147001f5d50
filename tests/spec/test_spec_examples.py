# ruff: noqa: RUF013, RUF059  (the page's code is kept as written: implicit Optional, unused unpacking)
"""The page's examples, copied as written, run against a real redis-server.

Each service class below is the page's code; only the imports the framework
would provide (``ServiceProviderBase``) are stood in for, and the kitchen
queue's ``get_next_order`` runs without its ``DistributedLock`` (locks are
covered elsewhere): it calls the same repository methods the page calls.
The services get the repository through a ``service_provider`` whose
``get_service`` returns it, as the framework's container would.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from unittest.mock import AsyncMock, Mock
from urllib.parse import quote

import msgpack
import pytest

from neuroglia.data.redis import (
    RedisConfig,
    RedisRepository,
    SerializationStrategy,  # noqa: F401  (the page's Custom Serialization imports it)
)
from neuroglia.data.redis.testing import RedisEndpoint
from tests.support.repositories import clean_repository


class ServiceProviderBase:
    """Stand-in for ``neuroglia.dependency_injection.ServiceProviderBase``."""

    def __init__(self, repository: RedisRepository) -> None:
        self._repository = repository

    def get_service(self, service_type: type) -> Any:
        assert service_type is RedisRepository
        return self._repository


# --------------------------------------------------------------------------------
# Simple Cache Operations
# --------------------------------------------------------------------------------


class MenuCacheService:
    def __init__(self, service_provider: ServiceProviderBase):
        self.redis = service_provider.get_service(RedisRepository)
        self.cache_prefix = "mario_pizzeria:menu"

    async def cache_menu_item(self, item_id: str, menu_item: dict, ttl_hours: int = 24):
        """Cache a menu item with automatic expiration."""
        cache_key = f"{self.cache_prefix}:item:{item_id}"
        cache_value = json.dumps(menu_item)

        await self.redis.set_async(key=cache_key, value=cache_value, expiration=timedelta(hours=ttl_hours))

        print(f"Cached menu item: {menu_item['name']} (expires in {ttl_hours}h)")

    async def get_cached_menu_item(self, item_id: str) -> dict:
        """Retrieve cached menu item."""
        cache_key = f"{self.cache_prefix}:item:{item_id}"

        cached_value = await self.redis.get_async(cache_key)

        if cached_value:
            return json.loads(cached_value)

        # Cache miss - load from database
        menu_item = await self.load_menu_item_from_db(item_id)
        if menu_item:
            await self.cache_menu_item(item_id, menu_item)

        return menu_item

    async def invalidate_menu_cache(self, item_id: str = None):
        """Invalidate menu cache entries."""
        if item_id:
            # Invalidate specific item
            cache_key = f"{self.cache_prefix}:item:{item_id}"
            await self.redis.delete_async(cache_key)
        else:
            # Invalidate all menu items
            pattern = f"{self.cache_prefix}:item:*"
            await self.redis.delete_pattern_async(pattern)

        print(f"Menu cache invalidated: {item_id or 'all items'}")


# --------------------------------------------------------------------------------
# Customer Session Management
# --------------------------------------------------------------------------------


class CustomerSessionService:
    def __init__(self, service_provider: ServiceProviderBase):
        self.redis = service_provider.get_service(RedisRepository)
        self.session_prefix = "mario_pizzeria:sessions"

    async def create_customer_session(self, customer_id: str, session_data: dict):
        """Create customer session using Redis hash."""
        session_key = f"{self.session_prefix}:{customer_id}"

        # Store session data as hash fields
        session_fields = {
            "customer_id": customer_id,
            "login_time": str(datetime.utcnow()),
            "cart_items": json.dumps(session_data.get("cart_items", [])),
            "preferences": json.dumps(session_data.get("preferences", {})),
            "last_activity": str(datetime.utcnow()),
        }

        await self.redis.hset_async(session_key, session_fields)
        await self.redis.expire_async(session_key, timedelta(hours=4))  # 4-hour session

        print(f"Created session for customer {customer_id}")

    async def update_customer_cart(self, customer_id: str, cart_items: list):
        """Update customer cart in session."""
        session_key = f"{self.session_prefix}:{customer_id}"

        # Update specific hash fields
        updates = {"cart_items": json.dumps(cart_items), "last_activity": str(datetime.utcnow())}

        await self.redis.hset_async(session_key, updates)
        print(f"Updated cart for customer {customer_id}: {len(cart_items)} items")

    async def get_customer_session(self, customer_id: str) -> dict:
        """Retrieve complete customer session."""
        session_key = f"{self.session_prefix}:{customer_id}"

        session_data = await self.redis.hgetall_async(session_key)

        if not session_data:
            return None

        # Deserialize JSON fields
        return {
            "customer_id": session_data.get("customer_id"),
            "login_time": session_data.get("login_time"),
            "cart_items": json.loads(session_data.get("cart_items", "[]")),
            "preferences": json.loads(session_data.get("preferences", "{}")),
            "last_activity": session_data.get("last_activity"),
        }

    async def get_customer_cart(self, customer_id: str) -> list:
        """Get only the cart items from customer session."""
        session_key = f"{self.session_prefix}:{customer_id}"

        cart_json = await self.redis.hget_async(session_key, "cart_items")
        return json.loads(cart_json) if cart_json else []


# --------------------------------------------------------------------------------
# Kitchen Queue Management (the queue part; the page wraps get_next_order's body
# in ``async with DistributedLock(self.redis, lock_key, timeout=5):``)
# --------------------------------------------------------------------------------


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
        """Get next order for kitchen processing (the page's body, without the lock)."""
        # Get highest priority order
        orders = await self.redis.zrange_async(self.queue_key, 0, 0, desc=True, withscores=True)

        if not orders:
            return None

        order_json, priority = orders[0]
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


# --------------------------------------------------------------------------------
# Real-time Analytics with Sorted Sets
# --------------------------------------------------------------------------------


class PizzaAnalyticsService:
    def __init__(self, service_provider: ServiceProviderBase):
        self.redis = service_provider.get_service(RedisRepository)
        self.analytics_prefix = "mario_pizzeria:analytics"

    async def track_popular_pizzas(self, pizza_name: str):
        """Track pizza popularity using sorted sets."""
        popularity_key = f"{self.analytics_prefix}:pizza_popularity"

        # Increment pizza order count
        await self.redis.zincrby_async(popularity_key, 1, pizza_name)

        # Keep only top 50 pizzas
        await self.redis.zremrangebyrank_async(popularity_key, 0, -51)

    async def get_top_pizzas(self, limit: int = 10) -> list:
        """Get most popular pizzas."""
        popularity_key = f"{self.analytics_prefix}:pizza_popularity"

        top_pizzas = await self.redis.zrevrange_async(popularity_key, 0, limit - 1, withscores=True)

        return [{"name": pizza.decode(), "order_count": int(score)} for pizza, score in top_pizzas]

    async def track_hourly_orders(self, hour: int):
        """Track orders per hour using hash."""
        today = datetime.now().date().isoformat()
        hourly_key = f"{self.analytics_prefix}:hourly:{today}"

        await self.redis.hincrby_async(hourly_key, str(hour), 1)
        await self.redis.expire_async(hourly_key, timedelta(days=7))  # Keep for a week

    async def get_hourly_distribution(self, date: str = None) -> dict:
        """Get order distribution by hour."""
        if not date:
            date = datetime.now().date().isoformat()

        hourly_key = f"{self.analytics_prefix}:hourly:{date}"
        hourly_data = await self.redis.hgetall_async(hourly_key)

        return {int(hour): int(count) for hour, count in hourly_data.items()}


# --------------------------------------------------------------------------------
# Set Operations for Customer Segmentation
# --------------------------------------------------------------------------------


class CustomerSegmentationService:
    def __init__(self, service_provider: ServiceProviderBase):
        self.redis = service_provider.get_service(RedisRepository)
        self.segment_prefix = "mario_pizzeria:segments"

    async def add_customer_to_segment(self, customer_id: str, segment: str):
        """Add customer to marketing segment."""
        segment_key = f"{self.segment_prefix}:{segment}"
        await self.redis.sadd_async(segment_key, customer_id)

        # Set segment expiration (30 days)
        await self.redis.expire_async(segment_key, timedelta(days=30))

    async def get_segment_customers(self, segment: str) -> set:
        """Get all customers in a segment."""
        segment_key = f"{self.segment_prefix}:{segment}"
        return await self.redis.smembers_async(segment_key)

    async def find_overlapping_customers(self, segment1: str, segment2: str) -> set:
        """Find customers in both segments."""
        key1 = f"{self.segment_prefix}:{segment1}"
        key2 = f"{self.segment_prefix}:{segment2}"

        return await self.redis.sinter_async([key1, key2])

    async def create_targeted_campaign(self, segments: list, campaign_id: str):
        """Create campaign targeting multiple segments."""
        segment_keys = [f"{self.segment_prefix}:{seg}" for seg in segments]
        campaign_key = f"{self.segment_prefix}:campaign:{campaign_id}"

        # Union of all target segments
        await self.redis.sunionstore_async(campaign_key, segment_keys)

        # Campaign expires in 7 days
        await self.redis.expire_async(campaign_key, timedelta(days=7))

        target_count = await self.redis.scard_async(campaign_key)
        print(f"Campaign {campaign_id} targets {target_count} customers")

        return target_count


# --------------------------------------------------------------------------------
# Custom Serialization Strategies
# --------------------------------------------------------------------------------


class CustomSerializationService:
    def __init__(self, service_provider: ServiceProviderBase):
        self.redis = service_provider.get_service(RedisRepository)

    async def cache_with_msgpack(self, key: str, data: dict):
        """Cache data using MessagePack serialization."""
        serialized = msgpack.packb(data)
        await self.redis.set_async(key, serialized)

    async def get_with_msgpack(self, key: str) -> dict:
        """Retrieve data with MessagePack deserialization."""
        serialized = await self.redis.get_async(key)
        if serialized:
            return msgpack.unpackb(serialized, raw=False)
        return None

    async def cache_complex_object(self, key: str, obj):
        """Cache complex Python objects using pickle."""
        serialized = pickle.dumps(obj)
        await self.redis.set_async(key, serialized)

    async def get_complex_object(self, key: str):
        """Retrieve complex Python objects."""
        serialized = await self.redis.get_async(key)
        if serialized:
            return pickle.loads(serialized)
        return None


# ================================================================================
# Running the examples against a real server
# ================================================================================


@pytest.fixture
def service_provider(redis_repository: RedisRepository) -> ServiceProviderBase:
    return ServiceProviderBase(redis_repository)


@pytest.fixture
async def bytes_repository(redis_server: RedisEndpoint) -> AsyncIterator[RedisRepository]:
    """The real server with ``decode_responses=False`` (bytes everywhere)."""
    async with clean_repository(RedisConfig(url=redis_server.url, decode_responses=False)) as repo:
        yield repo


MENU = {
    "margherita": {"name": "Margherita", "price": 12.99},
    "pepperoni": {"name": "Pepperoni", "price": 15.99},
    "diavola": {"name": "Diavola", "price": 14.5},
}


@pytest.mark.integration
class TestSimpleCacheOperations:
    @pytest.fixture
    def menu_service(self, service_provider: ServiceProviderBase) -> MenuCacheService:
        service = MenuCacheService(service_provider)
        service.db_loads = []  # type: ignore[attr-defined]

        async def load_menu_item_from_db(item_id: str) -> dict | None:
            service.db_loads.append(item_id)  # type: ignore[attr-defined]
            return MENU.get(item_id)

        service.load_menu_item_from_db = load_menu_item_from_db  # type: ignore[attr-defined]
        return service

    async def test_cache_and_read_back(self, menu_service: MenuCacheService, redis_repository: RedisRepository) -> None:
        await menu_service.cache_menu_item("margherita", MENU["margherita"])
        key = "mario_pizzeria:menu:item:margherita"
        assert json.loads(await redis_repository.get_async(key)) == MENU["margherita"]
        assert 24 * 3600 - 5 <= await redis_repository.ttl_async(key) <= 24 * 3600
        assert await menu_service.get_cached_menu_item("margherita") == MENU["margherita"]
        assert menu_service.db_loads == []  # type: ignore[attr-defined]

    async def test_miss_loads_and_caches(
        self, menu_service: MenuCacheService, redis_repository: RedisRepository
    ) -> None:
        assert await menu_service.get_cached_menu_item("pepperoni") == MENU["pepperoni"]
        assert await menu_service.get_cached_menu_item("pepperoni") == MENU["pepperoni"]
        assert menu_service.db_loads == ["pepperoni"]  # type: ignore[attr-defined]
        assert await redis_repository.exists_async("mario_pizzeria:menu:item:pepperoni")
        assert await menu_service.get_cached_menu_item("unknown") is None
        assert await redis_repository.exists_async("mario_pizzeria:menu:item:unknown") is False

    async def test_custom_ttl(self, menu_service: MenuCacheService, redis_repository: RedisRepository) -> None:
        await menu_service.cache_menu_item("diavola", MENU["diavola"], ttl_hours=1)
        assert 3590 <= await redis_repository.ttl_async("mario_pizzeria:menu:item:diavola") <= 3600

    async def test_invalidate_one_item(self, menu_service: MenuCacheService, redis_repository: RedisRepository) -> None:
        for item_id, item in MENU.items():
            await menu_service.cache_menu_item(item_id, item)
        await menu_service.invalidate_menu_cache("margherita")
        assert await redis_repository.exists_async("mario_pizzeria:menu:item:margherita") is False
        assert await redis_repository.exists_async("mario_pizzeria:menu:item:pepperoni") is True

    async def test_invalidate_all_items_leaves_other_keys(
        self, menu_service: MenuCacheService, redis_repository: RedisRepository
    ) -> None:
        for item_id, item in MENU.items():
            await menu_service.cache_menu_item(item_id, item)
        await redis_repository.set_async("mario_pizzeria:menu:categories", "[]")
        await redis_repository.set_async("mario_pizzeria:orders:1", "{}")
        await menu_service.invalidate_menu_cache()
        remaining = {key async for key in redis_repository.scan_async("*")}
        assert remaining == {"mario_pizzeria:menu:categories", "mario_pizzeria:orders:1"}
        assert menu_service.db_loads == []  # type: ignore[attr-defined]
        assert await menu_service.get_cached_menu_item("diavola") == MENU["diavola"]
        assert menu_service.db_loads == ["diavola"]  # type: ignore[attr-defined]


@pytest.mark.integration
class TestCustomerSessionManagement:
    async def test_session_lifecycle(
        self, service_provider: ServiceProviderBase, redis_repository: RedisRepository
    ) -> None:
        service = CustomerSessionService(service_provider)
        assert await service.get_customer_session("c42") is None
        assert await service.get_customer_cart("c42") == []

        await service.create_customer_session(
            "c42", {"cart_items": [{"pizza": "margherita", "qty": 1}], "preferences": {"crust": "thin"}}
        )
        session = await service.get_customer_session("c42")
        assert session["customer_id"] == "c42"
        assert session["cart_items"] == [{"pizza": "margherita", "qty": 1}]
        assert session["preferences"] == {"crust": "thin"}
        assert datetime.fromisoformat(session["login_time"])
        assert 4 * 3600 - 5 <= await redis_repository.ttl_async("mario_pizzeria:sessions:c42") <= 4 * 3600

        cart = [{"pizza": "margherita", "qty": 2}, {"pizza": "diavola", "qty": 1}]
        await service.update_customer_cart("c42", cart)
        assert await service.get_customer_cart("c42") == cart
        updated = await service.get_customer_session("c42")
        assert updated["cart_items"] == cart
        assert updated["preferences"] == {"crust": "thin"}
        assert updated["login_time"] == session["login_time"]
        assert updated["last_activity"] >= session["last_activity"]

    async def test_session_without_data(self, service_provider: ServiceProviderBase) -> None:
        service = CustomerSessionService(service_provider)
        await service.create_customer_session("c7", {})
        session = await service.get_customer_session("c7")
        assert session["cart_items"] == []
        assert session["preferences"] == {}


@pytest.mark.integration
class TestKitchenQueueManagement:
    async def test_priority_queue(
        self, service_provider: ServiceProviderBase, redis_repository: RedisRepository
    ) -> None:
        kitchen = KitchenQueueService(service_provider)
        assert await kitchen.get_next_order("oven-1") is None

        await kitchen.add_order_to_queue("order-1", priority=1)
        await kitchen.add_order_to_queue("order-2", priority=5)
        await kitchen.add_order_to_queue("order-3", priority=3)
        assert await redis_repository.zcard_async(kitchen.queue_key) == 3

        first = await kitchen.get_next_order("oven-1")
        assert first["order_id"] == "order-2"
        assert first["priority"] == 5
        second = await kitchen.get_next_order("oven-2")
        assert second["order_id"] == "order-3"
        assert await redis_repository.zcard_async(kitchen.queue_key) == 1

        processing = await redis_repository.hgetall_async(kitchen.processing_key)
        assert set(processing) == {"order-2", "order-3"}
        started = json.loads(processing["order-2"])
        assert started["kitchen_station"] == "oven-1"
        assert started["order_id"] == "order-2"
        assert datetime.fromisoformat(started["started_at"])

        await kitchen.complete_order_processing("order-2")
        assert await redis_repository.hkeys_async(kitchen.processing_key) == ["order-3"]

        last = await kitchen.get_next_order("oven-1")
        assert last["order_id"] == "order-1"
        assert await kitchen.get_next_order("oven-1") is None
        await kitchen.complete_order_processing("order-3")
        await kitchen.complete_order_processing("order-1")
        assert await redis_repository.exists_async(kitchen.processing_key) is False


@pytest.mark.integration
class TestRealTimeAnalytics:
    async def test_top_pizzas_with_bytes_replies(self, bytes_repository: RedisRepository) -> None:
        # The page calls ``pizza.decode()``: that is the decode_responses=False shape.
        analytics = PizzaAnalyticsService(ServiceProviderBase(bytes_repository))
        for name, count in (("Margherita", 5), ("Pepperoni", 3), ("Diavola", 7), ("Marinara", 1)):
            for _ in range(count):
                await analytics.track_popular_pizzas(name)
        assert await analytics.get_top_pizzas(limit=3) == [
            {"name": "Diavola", "order_count": 7},
            {"name": "Margherita", "order_count": 5},
            {"name": "Pepperoni", "order_count": 3},
        ]
        assert len(await analytics.get_top_pizzas()) == 4

    async def test_only_the_top_50_are_kept(self, bytes_repository: RedisRepository) -> None:
        analytics = PizzaAnalyticsService(ServiceProviderBase(bytes_repository))
        for i in range(55):
            for _ in range(i % 3 + 1):
                await analytics.track_popular_pizzas(f"pizza-{i:02d}")
        key = "mario_pizzeria:analytics:pizza_popularity"
        assert await bytes_repository.zcard_async(key) == 50
        top = await analytics.get_top_pizzas(limit=100)
        assert len(top) == 50
        assert top[0]["order_count"] == 3

    async def test_hourly_distribution(self, bytes_repository: RedisRepository) -> None:
        analytics = PizzaAnalyticsService(ServiceProviderBase(bytes_repository))
        for hour in (12, 12, 13, 19, 19, 19):
            await analytics.track_hourly_orders(hour)
        assert await analytics.get_hourly_distribution() == {12: 2, 13: 1, 19: 3}
        assert await analytics.get_hourly_distribution("2000-01-01") == {}
        today = datetime.now().date().isoformat()
        ttl = await bytes_repository.ttl_async(f"mario_pizzeria:analytics:hourly:{today}")
        assert 7 * 86400 - 5 <= ttl <= 7 * 86400

    async def test_default_config_gives_str(
        self, service_provider: ServiceProviderBase, redis_repository: RedisRepository
    ) -> None:
        # With the default decode_responses=True the names are already str:
        # a caller reads them directly, and the page's ``.decode()`` is not needed.
        analytics = PizzaAnalyticsService(service_provider)
        await analytics.track_popular_pizzas("Margherita")
        await analytics.track_popular_pizzas("Margherita")
        await analytics.track_popular_pizzas("Diavola")
        top = await redis_repository.zrevrange_async("mario_pizzeria:analytics:pizza_popularity", 0, 9, withscores=True)
        assert top == [("Margherita", 2.0), ("Diavola", 1.0)]
        assert [{"name": pizza, "order_count": int(score)} for pizza, score in top] == [
            {"name": "Margherita", "order_count": 2},
            {"name": "Diavola", "order_count": 1},
        ]
        with pytest.raises(AttributeError, match="decode"):
            await analytics.get_top_pizzas()
        # The hash half of the example works unchanged with str replies.
        await analytics.track_hourly_orders(20)
        assert await analytics.get_hourly_distribution() == {20: 1}


@pytest.mark.integration
class TestCustomerSegmentation:
    async def test_segments_and_campaign(
        self, service_provider: ServiceProviderBase, redis_repository: RedisRepository
    ) -> None:
        segments = CustomerSegmentationService(service_provider)
        for customer in ("c1", "c2", "c3"):
            await segments.add_customer_to_segment(customer, "vip")
        for customer in ("c2", "c3", "c4"):
            await segments.add_customer_to_segment(customer, "vegetarian")
        await segments.add_customer_to_segment("c5", "weekday")

        assert await segments.get_segment_customers("vip") == {"c1", "c2", "c3"}
        assert await segments.get_segment_customers("nobody") == set()
        assert await segments.find_overlapping_customers("vip", "vegetarian") == {"c2", "c3"}
        assert await segments.find_overlapping_customers("vip", "weekday") == set()
        ttl = await redis_repository.ttl_async("mario_pizzeria:segments:vip")
        assert 30 * 86400 - 5 <= ttl <= 30 * 86400

        assert await segments.create_targeted_campaign(["vip", "vegetarian", "weekday"], "spring") == 5
        campaign_key = "mario_pizzeria:segments:campaign:spring"
        assert await redis_repository.smembers_async(campaign_key) == {"c1", "c2", "c3", "c4", "c5"}
        assert 7 * 86400 - 5 <= await redis_repository.ttl_async(campaign_key) <= 7 * 86400


@pytest.mark.integration
class TestCustomSerialization:
    async def test_msgpack(self, service_provider: ServiceProviderBase) -> None:
        service = CustomSerializationService(service_provider)
        data = {"order_id": "o-1", "items": ["margherita", "diavola"], "total": 27.49, "paid": True, "n": 300}
        await service.cache_with_msgpack("mp:order", data)
        assert await service.get_with_msgpack("mp:order") == data
        assert await service.get_with_msgpack("mp:missing") is None

    async def test_pickle(self, service_provider: ServiceProviderBase) -> None:
        service = CustomSerializationService(service_provider)
        obj = {"when": datetime(2024, 6, 1, 19, 45), "items": ("margherita", 2), "tags": {"veg", "thin"}}
        await service.cache_complex_object("pk:order", obj)
        assert await service.get_complex_object("pk:order") == obj
        assert await service.get_complex_object("pk:missing") is None

    async def test_payloads_are_stored_byte_for_byte(
        self, service_provider: ServiceProviderBase, redis_repository: RedisRepository
    ) -> None:
        service = CustomSerializationService(service_provider)
        data = {"a": list(range(20))}
        await service.cache_with_msgpack("mp:raw", data)
        assert await redis_repository.get_async("mp:raw") == msgpack.packb(data)


# --------------------------------------------------------------------------------
# The page's Integration Testing section (the hash test). The page points at
# redis://localhost:6379/15; here the same URL shape points at database 15 of the
# suite's private server, never at a shared server on port 6379.
# --------------------------------------------------------------------------------


@pytest.fixture
def test_database_url(redis_server: RedisEndpoint) -> str:
    server = RedisConfig(url=redis_server.url)
    auth = ""
    if server.password:
        auth = f"{quote(server.username or '', safe='')}:{quote(server.password, safe='')}@"
    return f"{server.scheme}://{auth}{server.host}:{server.port}/15"


@pytest.mark.integration
class TestRedisIntegration:
    @pytest.fixture
    async def redis_repository(self, test_database_url: str):
        config = RedisConfig(
            host=test_database_url,  # Test database
            connection_pool_size=5,
        )
        redis = RedisRepository(config)
        await redis.connect()
        yield redis
        await redis.flushdb()  # Clean up
        await redis.disconnect()

    @pytest.mark.asyncio
    async def test_hash_operations(self, redis_repository):
        """Test Redis hash operations."""
        hash_key = "test_hash"

        # Set hash fields
        fields = {"field1": "value1", "field2": "value2"}
        await redis_repository.hset_async(hash_key, fields)

        # Get specific field
        value = await redis_repository.hget_async(hash_key, "field1")
        assert value == "value1"

        # Get all fields
        all_fields = await redis_repository.hgetall_async(hash_key)
        assert all_fields == fields

    async def test_it_used_database_15(self, redis_repository: RedisRepository) -> None:
        assert redis_repository.config.db == 15
        assert redis_repository.config.pool.max_connections == 5
        await redis_repository.set_async("db15-marker", "x")
        info = await redis_repository.info("keyspace")
        assert info["db15"]["keys"] >= 1


# --------------------------------------------------------------------------------
# The page's Unit Testing section, as written (no server involved).
# --------------------------------------------------------------------------------


class TestMenuCacheService:
    @pytest.fixture
    def mock_redis(self):
        redis = Mock(spec=RedisRepository)
        redis.get_async = AsyncMock()
        redis.set_async = AsyncMock()
        redis.delete_async = AsyncMock()
        redis.hget_async = AsyncMock()
        redis.hset_async = AsyncMock()
        return redis

    @pytest.fixture
    def menu_service(self, mock_redis):
        service_provider = Mock()
        service_provider.get_service.return_value = mock_redis
        return MenuCacheService(service_provider)

    @pytest.mark.asyncio
    async def test_cache_menu_item(self, menu_service, mock_redis):
        """Test menu item caching."""
        menu_item = {"name": "Margherita", "price": 12.99}

        await menu_service.cache_menu_item("margherita", menu_item)

        mock_redis.set_async.assert_called_once()
        call_args = mock_redis.set_async.call_args
        assert "mario_pizzeria:menu:item:margherita" in call_args[1]["key"]

    @pytest.mark.asyncio
    async def test_cache_hit(self, menu_service, mock_redis):
        """Test successful cache retrieval."""
        cached_data = '{"name": "Margherita", "price": 12.99}'
        mock_redis.get_async.return_value = cached_data

        result = await menu_service.get_cached_menu_item("margherita")

        assert result["name"] == "Margherita"
        assert result["price"] == 12.99

    @pytest.mark.asyncio
    async def test_cache_miss(self, menu_service, mock_redis):
        """Test cache miss behavior."""
        mock_redis.get_async.return_value = None
        menu_service.load_menu_item_from_db = AsyncMock(return_value={"name": "Pepperoni", "price": 15.99})

        result = await menu_service.get_cached_menu_item("pepperoni")

        assert result["name"] == "Pepperoni"
        # Should cache the loaded data
        mock_redis.set_async.assert_called()


def test_the_mocked_methods_exist_on_the_real_class() -> None:
    # Mock(spec=RedisRepository) only guards names the class really has.
    for name in ("get_async", "set_async", "delete_async", "hget_async", "hset_async", "delete_pattern_async"):
        assert callable(getattr(RedisRepository, name)), name
