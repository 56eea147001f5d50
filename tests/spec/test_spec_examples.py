"""The page's examples, run against a real redis-server.

The page's services are imported from :mod:`neuroglia.data.redis.demo.pizzeria`,
where they are written once, as the page writes them (the demo runs the same
code). They get the repository through a ``service_provider`` whose
``get_service`` returns it, as the framework's container would. The page's
Integration Testing and Unit Testing sections follow, as written.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from unittest.mock import AsyncMock, Mock
from urllib.parse import quote

import msgpack
import pytest

from neuroglia.data.redis import CacheCommandError, RedisConfig, RedisRepository
from neuroglia.data.redis.demo import ServiceProvider
from neuroglia.data.redis.demo.pizzeria import (
    CustomerSegmentationService,
    CustomerSessionService,
    CustomSerializationService,
    KitchenQueueService,
    MenuCacheService,
    PizzaAnalyticsService,
)
from neuroglia.data.redis.testing import LocalCluster, RedisEndpoint
from tests.support.repositories import clean_repository

# ================================================================================
# Running the examples against a real server
# ================================================================================


@pytest.fixture(params=["redis", pytest.param("cluster", marks=pytest.mark.cluster)])
def spec_url(request: pytest.FixtureRequest) -> str:
    """The page's examples run on the suite's private server and on the local cluster."""
    if request.param == "cluster":
        cluster: LocalCluster = request.getfixturevalue("redis_cluster")
        return cluster.url
    endpoint: RedisEndpoint = request.getfixturevalue("redis_server")
    return endpoint.url


@pytest.fixture
def spec_kind(spec_url: str) -> str:
    """``"redis"`` or ``"cluster"``."""
    return "cluster" if "+cluster://" in spec_url else "redis"


@pytest.fixture
async def redis_repository(spec_url: str) -> AsyncIterator[RedisRepository]:
    """The testing plugin's fixture, on the server or the cluster, emptied first."""
    async with clean_repository(RedisConfig(url=spec_url)) as repo:
        yield repo


@pytest.fixture
def service_provider(redis_repository: RedisRepository) -> ServiceProvider:
    return ServiceProvider(redis_repository)


@pytest.fixture
async def bytes_repository(spec_url: str) -> AsyncIterator[RedisRepository]:
    """The real server (or cluster) with ``decode_responses=False`` (bytes everywhere)."""
    async with clean_repository(RedisConfig(url=spec_url, decode_responses=False)) as repo:
        yield repo


MENU = {
    "margherita": {"name": "Margherita", "price": 12.99},
    "pepperoni": {"name": "Pepperoni", "price": 15.99},
    "diavola": {"name": "Diavola", "price": 14.5},
}


@pytest.mark.integration
class TestSimpleCacheOperations:
    @pytest.fixture
    def menu_service(self, service_provider: ServiceProvider) -> MenuCacheService:
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
        self, service_provider: ServiceProvider, redis_repository: RedisRepository
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

    async def test_session_without_data(self, service_provider: ServiceProvider) -> None:
        service = CustomerSessionService(service_provider)
        await service.create_customer_session("c7", {})
        session = await service.get_customer_session("c7")
        assert session["cart_items"] == []
        assert session["preferences"] == {}


@pytest.mark.integration
class TestKitchenQueueManagement:
    async def test_priority_queue(self, service_provider: ServiceProvider, redis_repository: RedisRepository) -> None:
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
        analytics = PizzaAnalyticsService(ServiceProvider(bytes_repository))
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
        analytics = PizzaAnalyticsService(ServiceProvider(bytes_repository))
        for i in range(55):
            for _ in range(i % 3 + 1):
                await analytics.track_popular_pizzas(f"pizza-{i:02d}")
        key = "mario_pizzeria:analytics:pizza_popularity"
        assert await bytes_repository.zcard_async(key) == 50
        top = await analytics.get_top_pizzas(limit=100)
        assert len(top) == 50
        assert top[0]["order_count"] == 3

    async def test_hourly_distribution(self, bytes_repository: RedisRepository) -> None:
        analytics = PizzaAnalyticsService(ServiceProvider(bytes_repository))
        for hour in (12, 12, 13, 19, 19, 19):
            await analytics.track_hourly_orders(hour)
        assert await analytics.get_hourly_distribution() == {12: 2, 13: 1, 19: 3}
        assert await analytics.get_hourly_distribution("2000-01-01") == {}
        today = datetime.now().date().isoformat()
        ttl = await bytes_repository.ttl_async(f"mario_pizzeria:analytics:hourly:{today}")
        assert 7 * 86400 - 5 <= ttl <= 7 * 86400

    async def test_default_config_gives_str(
        self, service_provider: ServiceProvider, redis_repository: RedisRepository
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
        self, service_provider: ServiceProvider, redis_repository: RedisRepository, spec_kind: str
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

        if spec_kind == "cluster":
            # The page's segment keys are in different hash slots: SUNIONSTORE
            # cannot span them, and says how to name them (docs/scale-out.md).
            with pytest.raises(CacheCommandError, match=r"SUNIONSTORE: the keys are in different hash slots"):
                await segments.create_targeted_campaign(["vip", "vegetarian", "weekday"], "spring")
            return
        assert await segments.create_targeted_campaign(["vip", "vegetarian", "weekday"], "spring") == 5
        campaign_key = "mario_pizzeria:segments:campaign:spring"
        assert await redis_repository.smembers_async(campaign_key) == {"c1", "c2", "c3", "c4", "c5"}
        assert 7 * 86400 - 5 <= await redis_repository.ttl_async(campaign_key) <= 7 * 86400


@pytest.mark.integration
class TestCustomSerialization:
    async def test_msgpack(self, service_provider: ServiceProvider) -> None:
        service = CustomSerializationService(service_provider)
        data = {"order_id": "o-1", "items": ["margherita", "diavola"], "total": 27.49, "paid": True, "n": 300}
        await service.cache_with_msgpack("mp:order", data)
        assert await service.get_with_msgpack("mp:order") == data
        assert await service.get_with_msgpack("mp:missing") is None

    async def test_pickle(self, service_provider: ServiceProvider) -> None:
        service = CustomSerializationService(service_provider)
        obj = {"when": datetime(2024, 6, 1, 19, 45), "items": ("margherita", 2), "tags": {"veg", "thin"}}
        await service.cache_complex_object("pk:order", obj)
        assert await service.get_complex_object("pk:order") == obj
        assert await service.get_complex_object("pk:missing") is None

    async def test_payloads_are_stored_byte_for_byte(
        self, service_provider: ServiceProvider, redis_repository: RedisRepository
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
