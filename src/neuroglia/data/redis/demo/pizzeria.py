# ruff: noqa: E402, F401, F541, B904, RUF013, RUF059, I001  (the page's code, kept as the page writes it)
"""The services of the framework's Redis Cache Repository page (Mario's Pizzeria), as the page writes them.

Every example class of the page is here once, copied verbatim with the
imports the page writes above it, in the page's order: ``MenuCacheService``,
``CustomerSessionService``, ``OrderProcessingService``,
``KitchenQueueService``, ``PizzaAnalyticsService``,
``CustomerSegmentationService``, ``ResilientMenuService``,
``CustomSerializationService`` and ``CachePerformanceMonitor``. The demo
(``python -m neuroglia.data.redis demo``) runs them, and so do the tests that
prove the page works; neither keeps a copy.

What the page leaves undefined is completed, minimally, and each completion
sits under a comment that starts with ``Completed:``: the menu database
(:data:`MENU`) and the order, payment and stock helpers the page calls, the
exceptions it raises, ``datetime`` (used, never imported), a class-level
``circuit_breaker`` (the page's ``@circuit_breaker.apply`` names an instance
attribute, a ``NameError`` when the class is defined), and stand-ins for the
optional extras: ``ServiceProviderBase`` without the framework, ``msgpack``
without ``neuroglia-redis[msgpack]``.

The services print, as on the page. The page's formatting is kept: this
module is excluded from ``ruff format`` and from mypy's checks, and its lint
exceptions are the header above. Do not "fix" the page's code here.
"""


# ------------------------------------------------------------------------------------------------
# Simple Cache Operations (Basic Usage)
# ------------------------------------------------------------------------------------------------

from neuroglia.data.redis import RedisRepository
try:
    from neuroglia.dependency_injection import ServiceProviderBase
except ImportError:  # Completed: the framework is an extra (neuroglia-redis[neuroglia])
    class ServiceProviderBase:
        """The framework's service provider, reduced to what the page's services call."""

        def get_service(self, service_type):
            raise NotImplementedError
import json
from datetime import timedelta

class MenuCacheService:
    def __init__(self, service_provider: ServiceProviderBase):
        self.redis = service_provider.get_service(RedisRepository)
        self.cache_prefix = "mario_pizzeria:menu"

    async def cache_menu_item(self, item_id: str, menu_item: dict, ttl_hours: int = 24):
        """Cache a menu item with automatic expiration."""
        cache_key = f"{self.cache_prefix}:item:{item_id}"
        cache_value = json.dumps(menu_item)

        await self.redis.set_async(
            key=cache_key,
            value=cache_value,
            expiration=timedelta(hours=ttl_hours)
        )

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

    # Completed: the page leaves the menu database to the reader; this one is MENU.
    async def load_menu_item_from_db(self, item_id: str) -> dict | None:
        """The cache-miss path: one item of the menu database (``None`` when there is none)."""
        menu_item = MENU.get(item_id)
        return dict(menu_item) if menu_item else None


# ------------------------------------------------------------------------------------------------
# Customer Session Management (Hash-Based Storage)
# ------------------------------------------------------------------------------------------------

from neuroglia.data.redis import RedisHashRepository
from datetime import datetime  # Completed: the page uses datetime without importing it

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
            "last_activity": str(datetime.utcnow())
        }

        await self.redis.hset_async(session_key, session_fields)
        await self.redis.expire_async(session_key, timedelta(hours=4)) # 4-hour session

        print(f"Created session for customer {customer_id}")

    async def update_customer_cart(self, customer_id: str, cart_items: list):
        """Update customer cart in session."""
        session_key = f"{self.session_prefix}:{customer_id}"

        # Update specific hash fields
        updates = {
            "cart_items": json.dumps(cart_items),
            "last_activity": str(datetime.utcnow())
        }

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
            "last_activity": session_data.get("last_activity")
        }

    async def get_customer_cart(self, customer_id: str) -> list:
        """Get only the cart items from customer session."""
        session_key = f"{self.session_prefix}:{customer_id}"

        cart_json = await self.redis.hget_async(session_key, "cart_items")
        return json.loads(cart_json) if cart_json else []


# ------------------------------------------------------------------------------------------------
# Order Processing Coordination (Distributed Locking)
# ------------------------------------------------------------------------------------------------

from neuroglia.data.redis import DistributedLock, LockTimeoutError
import asyncio

class OrderProcessingService:
    def __init__(self, service_provider: ServiceProviderBase):
        self.redis = service_provider.get_service(RedisRepository)
        self.lock_timeout = 30 # 30 seconds

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
                        f"Cannot reduce {ingredient_id} by {abs(quantity_change)}. "
                        f"Current stock: {current_stock}"
                    )

                # Update inventory atomically
                await self.update_ingredient_stock(ingredient_id, new_stock)

                # Update cache
                await self.cache_ingredient_stock(ingredient_id, new_stock)

                print(f"Inventory updated: {ingredient_id} = {new_stock}")

        except LockTimeoutError:
            print(f"Could not acquire inventory lock for {ingredient_id}")
            raise ConcurrentUpdateError("Inventory update failed due to concurrent access")

    # Completed: what the page leaves to the reader (the order and stock databases, the
    # payment, the kitchen), kept in Redis: an order is a hash, a charge and a kitchen
    # notification are list entries, a stock is a string.
    async def get_order(self, order_id: str) -> "Order":
        """Load an order from the order database."""
        data = await self.redis.hgetall_async(f"mario_pizzeria:orders:{order_id}")
        return Order(order_id, data["status"], float(data["amount"]), data["ingredient"])

    async def validate_inventory(self, order: "Order") -> None:
        """Check that the order's ingredient is in stock (a slow check: a race would show)."""
        await asyncio.sleep(0.002)
        if await self.get_ingredient_stock(order.ingredient) <= 0:
            raise InventoryShortageError(f"{order.ingredient} is out of stock")

    async def charge_customer(self, order: "Order") -> None:
        """Charge the order's amount."""
        if order.amount <= 0:
            raise PaymentError(f"cannot charge {order.amount:.2f}")
        await self.redis.rpush_async("mario_pizzeria:charges", order.order_id)

    async def update_order_status(self, order_id: str, status: str) -> None:
        """Record the order's new status."""
        await self.redis.hset_async(f"mario_pizzeria:orders:{order_id}", "status", status)

    async def notify_kitchen(self, order: "Order") -> None:
        """Tell the kitchen an order is coming."""
        await self.redis.rpush_async("mario_pizzeria:kitchen_notifications", order.order_id)

    async def handle_inventory_shortage(self, order_id: str, error: Exception) -> None:
        """Park the order until the ingredient is back."""
        await self.update_order_status(order_id, "awaiting_stock")
        print(f"Order {order_id}: inventory shortage ({error})")

    async def handle_payment_failure(self, order_id: str, error: Exception) -> None:
        """Mark the order as not paid."""
        await self.update_order_status(order_id, "payment_failed")
        print(f"Order {order_id}: payment failed ({error})")

    async def get_ingredient_stock(self, ingredient_id: str) -> int:
        """Read a stock from the inventory database (a round trip: a read-modify-write race would lose updates)."""
        value = await self.redis.get_async(f"mario_pizzeria:stock:{ingredient_id}")
        await asyncio.sleep(0.001)
        return int(value or 0)

    async def update_ingredient_stock(self, ingredient_id: str, new_stock: int) -> None:
        """Write a stock to the inventory database."""
        await self.redis.set_async(f"mario_pizzeria:stock:{ingredient_id}", new_stock)

    async def cache_ingredient_stock(self, ingredient_id: str, new_stock: int) -> None:
        """Cache a stock for readers that tolerate five minutes of staleness."""
        await self.redis.set_async(f"mario_pizzeria:stock_cache:{ingredient_id}", new_stock, timedelta(minutes=5))


# ------------------------------------------------------------------------------------------------
# Kitchen Queue Management (Distributed Locking)
# ------------------------------------------------------------------------------------------------

class KitchenQueueService:
    def __init__(self, service_provider: ServiceProviderBase):
        self.redis = service_provider.get_service(RedisRepository)
        self.queue_key = "mario_pizzeria:kitchen_queue"
        self.processing_key = "mario_pizzeria:kitchen_processing"

    async def add_order_to_queue(self, order_id: str, priority: int = 0):
        """Add order to kitchen queue with priority."""
        # Use Redis sorted set for priority queue
        order_data = {
            "order_id": order_id,
            "queued_at": datetime.utcnow().isoformat(),
            "priority": priority
        }

        await self.redis.zadd_async(
            self.queue_key,
            {json.dumps(order_data): priority}
        )

        print(f"Added order {order_id} to kitchen queue (priority: {priority})")

    async def get_next_order(self, kitchen_station_id: str) -> dict:
        """Get next order for kitchen processing with distributed coordination."""
        lock_key = f"mario_pizzeria:queue_lock"

        async with DistributedLock(self.redis, lock_key, timeout=5):
            # Get highest priority order
            orders = await self.redis.zrange_async(
                self.queue_key,
                0, 0,
                desc=True,
                withscores=True
            )

            if not orders:
                return None

            order_json, priority = orders[0]
            order_data = json.loads(order_json)

            # Move from queue to processing
            await self.redis.zrem_async(self.queue_key, order_json)

            processing_data = {
                **order_data,
                "kitchen_station": kitchen_station_id,
                "started_at": datetime.utcnow().isoformat()
            }

            await self.redis.hset_async(
                self.processing_key,
                order_data["order_id"],
                json.dumps(processing_data)
            )

            return order_data

    async def complete_order_processing(self, order_id: str):
        """Mark order processing as complete."""
        await self.redis.hdel_async(self.processing_key, order_id)
        print(f"Order {order_id} processing completed")


# ------------------------------------------------------------------------------------------------
# Real-time Analytics with Sorted Sets
# ------------------------------------------------------------------------------------------------

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

        top_pizzas = await self.redis.zrevrange_async(
            popularity_key,
            0,
            limit - 1,
            withscores=True
        )

        return [
            {"name": pizza.decode(), "order_count": int(score)}
            for pizza, score in top_pizzas
        ]

    async def track_hourly_orders(self, hour: int):
        """Track orders per hour using hash."""
        today = datetime.now().date().isoformat()
        hourly_key = f"{self.analytics_prefix}:hourly:{today}"

        await self.redis.hincrby_async(hourly_key, str(hour), 1)
        await self.redis.expire_async(hourly_key, timedelta(days=7)) # Keep for a week

    async def get_hourly_distribution(self, date: str = None) -> dict:
        """Get order distribution by hour."""
        if not date:
            date = datetime.now().date().isoformat()

        hourly_key = f"{self.analytics_prefix}:hourly:{date}"
        hourly_data = await self.redis.hgetall_async(hourly_key)

        return {
            int(hour): int(count)
            for hour, count in hourly_data.items()
        }


# ------------------------------------------------------------------------------------------------
# Set Operations for Customer Segmentation
# ------------------------------------------------------------------------------------------------

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


# ------------------------------------------------------------------------------------------------
# Resilient Cache Operations (Circuit Breaker and Resilience)
# ------------------------------------------------------------------------------------------------

from neuroglia.data.redis import CircuitBreakerPolicy, CacheException

class ResilientMenuService:
    # Completed: the page decorates get_menu_with_fallback with @circuit_breaker.apply but creates
    # circuit_breaker only in __init__, a NameError when the class is defined; a class-level breaker
    # (shared by the instances) is the working form (docs/resilience.md).
    circuit_breaker = CircuitBreakerPolicy(failure_threshold=5, recovery_timeout=60, success_threshold=3)

    def __init__(self, service_provider: ServiceProviderBase):
        self.redis = service_provider.get_service(RedisRepository)
        self.circuit_breaker = CircuitBreakerPolicy(
            failure_threshold=5,
            recovery_timeout=60,
            success_threshold=3
        )
        self.fallback_cache = {} # In-memory fallback

    @circuit_breaker.apply
    async def get_menu_with_fallback(self, menu_id: str) -> dict:
        """Get menu with circuit breaker and fallback."""
        try:
            # Try Redis cache first
            cache_key = f"mario_pizzeria:menu:{menu_id}"
            cached_menu = await self.redis.get_async(cache_key)

            if cached_menu:
                menu_data = json.loads(cached_menu)
                # Update fallback cache
                self.fallback_cache[menu_id] = menu_data
                return menu_data

            # Cache miss - load from database
            menu_data = await self.load_menu_from_database(menu_id)

            # Cache in Redis
            await self.redis.set_async(
                cache_key,
                json.dumps(menu_data),
                expiration=timedelta(hours=6)
            )

            # Update fallback cache
            self.fallback_cache[menu_id] = menu_data
            return menu_data

        except CacheException as e:
            print(f"Redis unavailable, using fallback cache: {e}")

            # Use fallback cache
            if menu_id in self.fallback_cache:
                return self.fallback_cache[menu_id]

            # Last resort - load from database
            return await self.load_menu_from_database(menu_id)

    async def warm_fallback_cache(self):
        """Pre-load frequently accessed items into fallback cache."""
        popular_menus = ["margherita", "pepperoni", "quattro_stagioni"]

        for menu_id in popular_menus:
            try:
                menu_data = await self.get_menu_with_fallback(menu_id)
                self.fallback_cache[menu_id] = menu_data
            except Exception as e:
                print(f"Failed to warm cache for {menu_id}: {e}")

    # Completed: the page leaves the menu database to the reader; this one is MENU.
    async def load_menu_from_database(self, menu_id: str) -> dict:
        """The cache-miss path and the last resort: one menu of the menu database."""
        return dict(MENU[menu_id])


# ------------------------------------------------------------------------------------------------
# Custom Serialization Strategies
# ------------------------------------------------------------------------------------------------

from neuroglia.data.redis import SerializationStrategy
import pickle
try:
    import msgpack
except ImportError:  # Completed: msgpack is an extra (neuroglia-redis[msgpack]); only the msgpack methods need it
    msgpack = None

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


# ------------------------------------------------------------------------------------------------
# Cache Performance Metrics (Monitoring and Performance)
# ------------------------------------------------------------------------------------------------

from neuroglia.data.redis import CacheMetrics

class CachePerformanceMonitor:
    def __init__(self, redis: RedisRepository):
        self.redis = redis
        self.metrics = CacheMetrics()

    async def track_cache_operation(self, operation: str, key: str, hit: bool = None):
        """Track cache operation metrics."""
        await self.metrics.increment_counter(f"cache_operations_{operation}")

        if hit is not None:
            status = "hit" if hit else "miss"
            await self.metrics.increment_counter(f"cache_{status}")
            await self.metrics.set_gauge("cache_hit_ratio", self.calculate_hit_ratio())

    async def get_performance_summary(self) -> dict:
        """Get cache performance summary."""
        return {
            "total_operations": await self.metrics.get_counter("cache_operations_total"),
            "cache_hits": await self.metrics.get_counter("cache_hit"),
            "cache_misses": await self.metrics.get_counter("cache_miss"),
            "hit_ratio": await self.metrics.get_gauge("cache_hit_ratio"),
            "active_connections": await self.redis.connection_pool.created_connections,
            "memory_usage": await self.redis.memory_usage()
        }

    def calculate_hit_ratio(self) -> float:
        """Calculate cache hit ratio."""
        hits = self.metrics.get_counter("cache_hit")
        misses = self.metrics.get_counter("cache_miss")
        total = hits + misses

        return (hits / total) if total > 0 else 0.0


# ------------------------------------------------------------------------------------------------
# Completed: what the page leaves undefined
# ------------------------------------------------------------------------------------------------

from dataclasses import dataclass

MENU = {
    "margherita": {"name": "Margherita", "price": 12.99},
    "pepperoni": {"name": "Pepperoni", "price": 15.99},
    "quattro_stagioni": {"name": "Quattro Stagioni", "price": 16.5},
    "diavola": {"name": "Diavola", "price": 14.5},
}
"""The menu database the services load from on a cache miss (the first two items are the page's test data)."""


@dataclass
class Order:
    """An order as the order database returns it."""

    order_id: str
    status: str
    amount: float
    ingredient: str


class InventoryShortageError(Exception):
    """An ingredient of the order is out of stock."""


class PaymentError(Exception):
    """The customer could not be charged."""


class InsufficientInventoryError(Exception):
    """A stock change would take the stock below zero."""


class ConcurrentUpdateError(Exception):
    """The inventory lock could not be acquired in time."""


__all__ = [
    "MENU",
    "CachePerformanceMonitor",
    "ConcurrentUpdateError",
    "CustomSerializationService",
    "CustomerSegmentationService",
    "CustomerSessionService",
    "InsufficientInventoryError",
    "InventoryShortageError",
    "KitchenQueueService",
    "MenuCacheService",
    "Order",
    "OrderProcessingService",
    "PaymentError",
    "PizzaAnalyticsService",
    "ResilientMenuService",
    "ServiceProviderBase",
]
