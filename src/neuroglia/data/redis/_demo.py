"""The ``demo`` command: the framework page's Mario's Pizzeria services, end to end.

``python -m neuroglia.data.redis demo [--url URL]`` runs every example service
of the Redis Cache Repository page against ``memory://`` (the embedded
backend, the default) or a real server, checks what each step returns, and
prints a report: the menu cache, customer sessions, the kitchen queue, order
processing and inventory under distributed locks with several service
instances racing, kitchen stations pulling from one queue, fencing tokens
refusing a stale holder's write, analytics, segmentation, custom
serialization, the resilient menu service through a simulated outage (the
circuit breaker opening, failing fast, the fallbacks, recovery), the cache
layer (``RedisCache``: a stampede collapsed, a stale value served through an
outage; ``_demo_caching.py``), and a metrics summary with the page's
performance monitor.

Every key the demo writes lives under a fresh prefix (``demo:<random>:``),
and the clean-up at the end deletes that prefix only: the demo never flushes
a database and never touches keys it did not write. The outage is simulated
inside the process (:class:`OutageSwitch`): the server is never stopped.

Structure: one async function per section, each taking a :class:`DemoContext`
and listed in :data:`SECTIONS`. To add a section, write
``async def my_section(ctx: DemoContext) -> None`` that reports with
``ctx.table``/``ctx.note``/``ctx.check`` and insert
``Section("Title", "ServiceName", my_section)`` into :data:`SECTIONS` (before
the metrics section, which reports on everything run before it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import json
import logging
import random
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TextIO, TypeVar, cast

from ._breaker import CircuitBreakerPolicy, CircuitState
from ._client import NotSentError, PoolStats, Transport, build_transport
from ._config import ConnectionPoolConfig, RedisConfig
from ._demo_caching import caching_section
from ._envelope import read_envelope
from ._hash_repository import RedisHashRepository
from ._lock import DistributedLock, fenced_set_async
from ._repository import RedisRepository
from .exceptions import (
    CacheAuthenticationError,
    CacheException,
    CacheUnavailableError,
    CircuitOpenError,
    LockLostError,
    LockTimeoutError,
)
from .metrics import CacheMetrics, Histogram

__all__ = [
    "SECTIONS",
    "DemoCheckFailed",
    "DemoContext",
    "DemoResult",
    "DemoRun",
    "OutageSwitch",
    "Section",
    "ServerRefused",
    "ServerUnreachable",
    "format_table",
    "run_demo",
]

S = TypeVar("S")

JsonDict = dict[str, Any]


# --------------------------------------------------------------------------
# The page's services. The code follows the page; the differences are that
# results are returned to the report instead of printed, timestamps are
# timezone-aware (datetime.utcnow() is deprecated).
# --------------------------------------------------------------------------


class ServiceProvider:
    """The smallest service provider the page's services need: ``get_service(type)``."""

    def __init__(self, *services: object) -> None:
        self._services: dict[type[Any], object] = {type(s): s for s in services}

    def get_service(self, service_type: type[S]) -> S:
        """The registered instance of ``service_type``."""
        return cast(S, self._services[service_type])


def _now() -> datetime:
    return datetime.now(UTC)


class MenuDatabase:
    """The menu's system of record, slow on purpose so cache hits show."""

    ITEMS: ClassVar[dict[str, JsonDict]] = {
        "margherita": {"name": "Margherita", "price": 8.50, "toppings": ["tomato", "mozzarella", "basil"]},
        "pepperoni": {"name": "Pepperoni", "price": 10.00, "toppings": ["tomato", "mozzarella", "pepperoni"]},
        "quattro_stagioni": {"name": "Quattro Stagioni", "price": 12.50, "toppings": ["ham", "artichoke"]},
        "diavola": {"name": "Diavola", "price": 11.00, "toppings": ["tomato", "salami", "chili"]},
    }

    def __init__(self, latency: float = 0.005) -> None:
        self.latency = latency
        self.loads = 0

    async def load(self, item_id: str) -> JsonDict | None:
        """Load one item (``None`` when it does not exist)."""
        await asyncio.sleep(self.latency)
        self.loads += 1
        item = self.ITEMS.get(item_id)
        return json.loads(json.dumps(item)) if item is not None else None


class MenuCacheService:
    """The page's "Simple Cache Operations" service."""

    def __init__(self, service_provider: ServiceProvider, database: MenuDatabase) -> None:
        self.redis = service_provider.get_service(RedisRepository)
        self.cache_prefix = "mario_pizzeria:menu"
        self.database = database

    async def cache_menu_item(self, item_id: str, menu_item: JsonDict, ttl_hours: int = 24) -> None:
        """Cache a menu item with automatic expiration."""
        cache_key = f"{self.cache_prefix}:item:{item_id}"
        cache_value = json.dumps(menu_item)
        await self.redis.set_async(key=cache_key, value=cache_value, expiration=timedelta(hours=ttl_hours))

    async def get_cached_menu_item(self, item_id: str) -> JsonDict | None:
        """Retrieve cached menu item."""
        cache_key = f"{self.cache_prefix}:item:{item_id}"
        cached_value = await self.redis.get_async(cache_key)
        if cached_value:
            return cast(JsonDict, json.loads(cached_value))
        # Cache miss - load from database
        menu_item = await self.load_menu_item_from_db(item_id)
        if menu_item:
            await self.cache_menu_item(item_id, menu_item)
        return menu_item

    async def invalidate_menu_cache(self, item_id: str | None = None) -> int:
        """Invalidate menu cache entries; returns how many keys were removed."""
        if item_id:
            cache_key = f"{self.cache_prefix}:item:{item_id}"
            return await self.redis.delete_async(cache_key)
        pattern = f"{self.cache_prefix}:item:*"
        return await self.redis.delete_pattern_async(pattern)

    async def load_menu_item_from_db(self, item_id: str) -> JsonDict | None:
        """The cache-miss path."""
        return await self.database.load(item_id)


class CustomerSessionService:
    """The page's "Customer Session Management" service (hashes)."""

    def __init__(self, service_provider: ServiceProvider) -> None:
        self.redis = service_provider.get_service(RedisRepository)
        self.session_prefix = "mario_pizzeria:sessions"

    async def create_customer_session(self, customer_id: str, session_data: JsonDict) -> None:
        """Create customer session using Redis hash."""
        session_key = f"{self.session_prefix}:{customer_id}"
        session_fields: Mapping[str | bytes, str] = {
            "customer_id": customer_id,
            "login_time": str(_now()),
            "cart_items": json.dumps(session_data.get("cart_items", [])),
            "preferences": json.dumps(session_data.get("preferences", {})),
            "last_activity": str(_now()),
        }
        await self.redis.hset_async(session_key, session_fields)
        await self.redis.expire_async(session_key, timedelta(hours=4))  # 4-hour session

    async def update_customer_cart(self, customer_id: str, cart_items: list[JsonDict]) -> None:
        """Update customer cart in session."""
        session_key = f"{self.session_prefix}:{customer_id}"
        updates: Mapping[str | bytes, str] = {"cart_items": json.dumps(cart_items), "last_activity": str(_now())}
        await self.redis.hset_async(session_key, updates)

    async def get_customer_session(self, customer_id: str) -> JsonDict | None:
        """Retrieve complete customer session."""
        session_key = f"{self.session_prefix}:{customer_id}"
        session_data = await self.redis.hgetall_async(session_key)
        if not session_data:
            return None
        return {
            "customer_id": session_data.get("customer_id"),
            "login_time": session_data.get("login_time"),
            "cart_items": json.loads(session_data.get("cart_items", "[]")),
            "preferences": json.loads(session_data.get("preferences", "{}")),
            "last_activity": session_data.get("last_activity"),
        }

    async def get_customer_cart(self, customer_id: str) -> list[JsonDict]:
        """Get only the cart items from customer session."""
        session_key = f"{self.session_prefix}:{customer_id}"
        cart_json = await self.redis.hget_async(session_key, "cart_items")
        return cast(list[JsonDict], json.loads(cart_json)) if cart_json else []


class KitchenQueueService:
    """The queue part of the page's "Kitchen Queue Management" (sorted set + hash)."""

    def __init__(self, service_provider: ServiceProvider) -> None:
        self.redis = service_provider.get_service(RedisRepository)
        self.queue_key = "mario_pizzeria:kitchen_queue"
        self.processing_key = "mario_pizzeria:kitchen_processing"

    async def add_order_to_queue(self, order_id: str, priority: int = 0) -> None:
        """Add order to kitchen queue with priority."""
        order_data = {"order_id": order_id, "queued_at": _now().isoformat(), "priority": priority}
        await self.redis.zadd_async(self.queue_key, {json.dumps(order_data): priority})

    async def get_next_order(self, kitchen_station_id: str) -> JsonDict | None:
        """Get next order for kitchen processing with distributed coordination."""
        lock_key = "mario_pizzeria:queue_lock"

        async with DistributedLock(self.redis, lock_key, timeout=5):
            orders = await self.redis.zrange_async(self.queue_key, 0, 0, desc=True, withscores=True)
            if not orders:
                return None
            order_json, _priority = orders[0]
            order_data = cast(JsonDict, json.loads(order_json))
            # Move from queue to processing
            await self.redis.zrem_async(self.queue_key, order_json)
            processing_data = {
                **order_data,
                "kitchen_station": kitchen_station_id,
                "started_at": _now().isoformat(),
            }
            await self.redis.hset_async(self.processing_key, order_data["order_id"], json.dumps(processing_data))
            return order_data

    async def complete_order_processing(self, order_id: str) -> None:
        """Mark order processing as complete."""
        await self.redis.hdel_async(self.processing_key, order_id)


class InventoryShortageError(Exception):
    """An ingredient of the order is out of stock (the page leaves it undefined)."""


class PaymentError(Exception):
    """The customer could not be charged (the page leaves it undefined)."""


class InsufficientInventoryError(Exception):
    """The page's error for a stock change that would go below zero."""


class ConcurrentUpdateError(Exception):
    """The page's error when the inventory lock could not be had."""


@dataclass
class Order:
    """An order as the order database returns it."""

    order_id: str
    status: str
    amount: float
    ingredient: str


class OrderProcessingService:
    """The page's "Order Processing Coordination" service.

    ``process_order_safely`` and ``coordinate_inventory_update`` are the
    page's code; they return what the page prints. What the page leaves to
    the reader (the order and stock stores, charging, the kitchen) follows
    them, kept in Redis: an order is a hash, a charge an entry in a list, a
    stock a string.
    """

    def __init__(self, service_provider: ServiceProvider) -> None:
        self.redis = service_provider.get_service(RedisRepository)
        self.lock_timeout = 30  # 30 seconds

    async def process_order_safely(self, order_id: str) -> str:
        """Process order with distributed locking to prevent race conditions."""
        lock_key = f"mario_pizzeria:order_lock:{order_id}"

        async with DistributedLock(self.redis, lock_key, timeout=self.lock_timeout):
            try:
                # Critical section - only one service instance can process this order
                order = await self.get_order(order_id)

                if order.status != "pending":
                    return "already processed"

                # Process the order
                await self.validate_inventory(order)
                await self.charge_customer(order)
                await self.update_order_status(order_id, "processing")
                await self.notify_kitchen(order)

                return "processed"

            except InventoryShortageError as e:
                return await self.handle_inventory_shortage(order_id, e)
            except PaymentError as e:
                return await self.handle_payment_failure(order_id, e)

    async def coordinate_inventory_update(self, ingredient_id: str, quantity_change: int) -> int:
        """Update inventory with distributed coordination; returns the new stock."""
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

                return new_stock

        except LockTimeoutError:
            raise ConcurrentUpdateError("Inventory update failed due to concurrent access") from None

    # -- what the page leaves to the reader ---------------------------------

    async def get_order(self, order_id: str) -> Order:
        """Load an order from the order database."""
        data = await self.redis.hgetall_async(f"mario_pizzeria:orders:{order_id}")
        return Order(order_id, data["status"], float(data["amount"]), data["ingredient"])

    async def validate_inventory(self, order: Order) -> None:
        """Check the order's ingredient is in stock (slowly: a race would show)."""
        await asyncio.sleep(0.002)
        if await self.get_ingredient_stock(order.ingredient) <= 0:
            raise InventoryShortageError(f"{order.ingredient} is out of stock")

    async def charge_customer(self, order: Order) -> None:
        """Charge the order's amount."""
        if order.amount <= 0:
            raise PaymentError(f"cannot charge {order.amount:.2f}")
        await self.redis.rpush_async("mario_pizzeria:charges", order.order_id)

    async def update_order_status(self, order_id: str, status: str) -> None:
        """Record the order's new status."""
        await self.redis.hset_async(f"mario_pizzeria:orders:{order_id}", "status", status)

    async def notify_kitchen(self, order: Order) -> None:
        """Tell the kitchen an order is coming."""
        await self.redis.rpush_async("mario_pizzeria:kitchen_notifications", order.order_id)

    async def handle_inventory_shortage(self, order_id: str, error: InventoryShortageError) -> str:
        """Park the order until the ingredient comes back."""
        await self.update_order_status(order_id, "awaiting_stock")
        return "inventory shortage"

    async def handle_payment_failure(self, order_id: str, error: PaymentError) -> str:
        """Mark the order as not paid."""
        await self.update_order_status(order_id, "payment_failed")
        return "payment failed"

    async def get_ingredient_stock(self, ingredient_id: str) -> int:
        """Read a stock from the inventory database (a read-modify-write would lose updates here)."""
        value = await self.redis.get_async(f"mario_pizzeria:stock:{ingredient_id}")
        await asyncio.sleep(0.001)
        return int(value or 0)

    async def update_ingredient_stock(self, ingredient_id: str, new_stock: int) -> None:
        """Write a stock to the inventory database."""
        await self.redis.set_async(f"mario_pizzeria:stock:{ingredient_id}", new_stock)

    async def cache_ingredient_stock(self, ingredient_id: str, new_stock: int) -> None:
        """Cache a stock for readers that tolerate five minutes of staleness."""
        await self.redis.set_async(f"mario_pizzeria:stock_cache:{ingredient_id}", new_stock, timedelta(minutes=5))


class PizzaAnalyticsService:
    """The page's "Real-time Analytics with Sorted Sets" service.

    ``get_top_pizzas`` calls ``pizza.decode()`` as the page does: that needs
    a repository built with ``decode_responses=False`` (bytes replies), which
    is how the demo builds this service's repository.
    """

    def __init__(self, service_provider: ServiceProvider) -> None:
        self.redis = service_provider.get_service(RedisRepository)
        self.analytics_prefix = "mario_pizzeria:analytics"

    async def track_popular_pizzas(self, pizza_name: str) -> None:
        """Track pizza popularity using sorted sets."""
        popularity_key = f"{self.analytics_prefix}:pizza_popularity"
        await self.redis.zincrby_async(popularity_key, 1, pizza_name)
        # Keep only top 50 pizzas
        await self.redis.zremrangebyrank_async(popularity_key, 0, -51)

    async def get_top_pizzas(self, limit: int = 10) -> list[JsonDict]:
        """Get most popular pizzas."""
        popularity_key = f"{self.analytics_prefix}:pizza_popularity"
        top_pizzas = await self.redis.zrevrange_async(popularity_key, 0, limit - 1, withscores=True)
        return [{"name": pizza.decode(), "order_count": int(score)} for pizza, score in top_pizzas]

    async def track_hourly_orders(self, hour: int) -> None:
        """Track orders per hour using hash."""
        today = datetime.now().date().isoformat()
        hourly_key = f"{self.analytics_prefix}:hourly:{today}"
        await self.redis.hincrby_async(hourly_key, str(hour), 1)
        await self.redis.expire_async(hourly_key, timedelta(days=7))  # Keep for a week

    async def get_hourly_distribution(self, date: str | None = None) -> dict[int, int]:
        """Get order distribution by hour."""
        if not date:
            date = datetime.now().date().isoformat()
        hourly_key = f"{self.analytics_prefix}:hourly:{date}"
        hourly_data = await self.redis.hgetall_async(hourly_key)
        return {int(hour): int(count) for hour, count in hourly_data.items()}


class CustomerSegmentationService:
    """The page's "Set Operations for Customer Segmentation" service."""

    def __init__(self, service_provider: ServiceProvider) -> None:
        self.redis = service_provider.get_service(RedisRepository)
        self.segment_prefix = "mario_pizzeria:segments"

    async def add_customer_to_segment(self, customer_id: str, segment: str) -> None:
        """Add customer to marketing segment."""
        segment_key = f"{self.segment_prefix}:{segment}"
        await self.redis.sadd_async(segment_key, customer_id)
        await self.redis.expire_async(segment_key, timedelta(days=30))

    async def get_segment_customers(self, segment: str) -> set[Any]:
        """Get all customers in a segment."""
        segment_key = f"{self.segment_prefix}:{segment}"
        return await self.redis.smembers_async(segment_key)

    async def find_overlapping_customers(self, segment1: str, segment2: str) -> set[Any]:
        """Find customers in both segments."""
        key1 = f"{self.segment_prefix}:{segment1}"
        key2 = f"{self.segment_prefix}:{segment2}"
        return await self.redis.sinter_async([key1, key2])

    async def create_targeted_campaign(self, segments: list[str], campaign_id: str) -> int:
        """Create campaign targeting multiple segments."""
        segment_keys = [f"{self.segment_prefix}:{seg}" for seg in segments]
        campaign_key = f"{self.segment_prefix}:campaign:{campaign_id}"
        await self.redis.sunionstore_async(campaign_key, segment_keys)
        await self.redis.expire_async(campaign_key, timedelta(days=7))
        return await self.redis.scard_async(campaign_key)


class CustomSerializationService:
    """The msgpack half of the page's "Custom Serialization Strategies" service.

    The page's pickle half is left out on purpose: unpickling what a shared
    cache returns runs arbitrary code (see docs/spec-compatibility.md).
    """

    def __init__(self, service_provider: ServiceProvider) -> None:
        self.redis = service_provider.get_service(RedisRepository)

    async def cache_with_msgpack(self, key: str, data: JsonDict) -> None:
        """Cache data using MessagePack serialization."""
        import msgpack

        serialized = msgpack.packb(data)
        await self.redis.set_async(key, serialized)

    async def get_with_msgpack(self, key: str) -> JsonDict | None:
        """Retrieve data with MessagePack deserialization."""
        import msgpack

        serialized = await self.redis.get_async(key)
        if serialized:
            return cast(JsonDict, msgpack.unpackb(serialized, raw=False))
        return None


class ResilientMenuService:
    """The page's "Resilient Cache Operations" service.

    The page creates ``self.circuit_breaker`` in ``__init__`` and decorates
    the method with ``@circuit_breaker.apply`` in the class body, which is a
    ``NameError`` when the class is defined: the working form used here is a
    class-level breaker (docs/resilience.md). The method catches
    ``CacheException`` itself, so that breaker never sees a Redis outage; the
    repository's own breaker is the one that opens. The caught errors are
    kept in :attr:`unavailable` (and :attr:`warm_failures`) where the page
    prints them.
    """

    circuit_breaker = CircuitBreakerPolicy(failure_threshold=5, recovery_timeout=60, success_threshold=3)

    def __init__(self, service_provider: ServiceProvider, database: MenuDatabase) -> None:
        self.redis = service_provider.get_service(RedisRepository)
        self.fallback_cache: dict[str, JsonDict] = {}  # In-memory fallback
        self.database = database
        self.unavailable: list[CacheException] = []
        self.warm_failures: list[str] = []

    @circuit_breaker.apply
    async def get_menu_with_fallback(self, menu_id: str) -> JsonDict:
        """Get menu with circuit breaker and fallback."""
        try:
            # Try Redis cache first
            cache_key = f"mario_pizzeria:menu:{menu_id}"
            cached_menu = await self.redis.get_async(cache_key)

            if cached_menu:
                menu_data = cast(JsonDict, json.loads(cached_menu))
                # Update fallback cache
                self.fallback_cache[menu_id] = menu_data
                return menu_data

            # Cache miss - load from database
            menu_data = await self.load_menu_from_database(menu_id)

            # Cache in Redis
            await self.redis.set_async(cache_key, json.dumps(menu_data), expiration=timedelta(hours=6))

            # Update fallback cache
            self.fallback_cache[menu_id] = menu_data
            return menu_data

        except CacheException as e:
            # The page prints f"Redis unavailable, using fallback cache: {e}"
            self.unavailable.append(e)

            # Use fallback cache
            if menu_id in self.fallback_cache:
                return self.fallback_cache[menu_id]

            # Last resort - load from database
            return await self.load_menu_from_database(menu_id)

    async def warm_fallback_cache(self) -> None:
        """Pre-load frequently accessed items into fallback cache."""
        popular_menus = ["margherita", "pepperoni", "quattro_stagioni"]

        for menu_id in popular_menus:
            try:
                menu_data = await self.get_menu_with_fallback(menu_id)
                self.fallback_cache[menu_id] = menu_data
            except Exception as e:
                # The page prints f"Failed to warm cache for {menu_id}: {e}"
                self.warm_failures.append(f"{menu_id}: {e}")

    async def load_menu_from_database(self, menu_id: str) -> JsonDict:
        """The cache-miss path and the last resort."""
        menu = await self.database.load(menu_id)
        if menu is None:
            raise LookupError(f"no menu {menu_id!r}")
        return menu


class CachePerformanceMonitor:
    """The page's "Cache Performance Metrics" monitor, as written."""

    def __init__(self, redis: RedisRepository) -> None:
        self.redis = redis
        self.metrics = CacheMetrics()

    async def track_cache_operation(self, operation: str, key: str, hit: bool | None = None) -> None:
        """Track cache operation metrics."""
        await self.metrics.increment_counter(f"cache_operations_{operation}")

        if hit is not None:
            status = "hit" if hit else "miss"
            await self.metrics.increment_counter(f"cache_{status}")
            await self.metrics.set_gauge("cache_hit_ratio", self.calculate_hit_ratio())

    async def get_performance_summary(self) -> dict[str, Any]:
        """Get cache performance summary."""
        return {
            "total_operations": await self.metrics.get_counter("cache_operations_total"),
            "cache_hits": await self.metrics.get_counter("cache_hit"),
            "cache_misses": await self.metrics.get_counter("cache_miss"),
            "hit_ratio": await self.metrics.get_gauge("cache_hit_ratio"),
            "active_connections": await self.redis.connection_pool.created_connections,
            "memory_usage": await self.redis.memory_usage(),
        }

    def calculate_hit_ratio(self) -> float:
        """Calculate cache hit ratio."""
        hits = self.metrics.get_counter("cache_hit")
        misses = self.metrics.get_counter("cache_miss")
        total = hits + misses

        return (hits / total) if total > 0 else 0.0


@dataclass
class MenuItem:
    """A typed menu item for the object helpers."""

    name: str
    price: float
    toppings: list[str]
    vegetarian: bool = False


@dataclass
class Customer:
    """A typed customer for :class:`RedisHashRepository`."""

    id: str
    name: str
    loyalty_points: int
    favourite_pizzas: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------
# A simulated outage, and what the sections of one run share
# --------------------------------------------------------------------------


class OutageSwitch:
    """Simulates Redis going down, for the repositories whose transport it wraps.

    While :attr:`active`, every command sent through a wrapped transport fails
    the way a refused connection does (``ConnectionRefusedError``, before
    anything is sent), inside this process. Nothing reaches the server, so an
    outage can be shown against a real, shared server without disturbing it.
    The repository maps the error, retries it, counts it in its circuit
    breaker and its metrics exactly as it would a real refusal.
    """

    def __init__(self) -> None:
        self.active = False
        self.refused = 0
        """Commands refused so far (every attempt, retries included)."""

    def wrap(self, transport: Transport) -> Transport:
        """A transport that delegates to ``transport`` unless the outage is active."""
        return _SwitchedTransport(transport, self)

    def check(self) -> None:
        """Raise a refused connection while the outage is active."""
        if self.active:
            self.refused += 1
            refused = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused (simulated outage)")
            raise NotSentError(refused)


class _SwitchedTransport:
    """A :class:`Transport` behind an :class:`OutageSwitch`."""

    def __init__(self, inner: Transport, switch: OutageSwitch) -> None:
        self._inner = inner
        self._switch = switch

    async def execute(self, args: tuple[Any, ...], deadline: float | None = None) -> Any:
        self._switch.check()
        return await self._inner.execute(args, deadline)

    async def execute_blocking(self, args: tuple[Any, ...], timeout: float) -> Any:
        self._switch.check()
        return await self._inner.execute_blocking(args, timeout)

    async def execute_many(self, commands: Sequence[tuple[Any, ...]], *, transaction: bool) -> list[Any]:
        self._switch.check()
        return await self._inner.execute_many(commands, transaction=transaction)

    async def close(self) -> None:
        await self._inner.close()

    def pool_stats(self) -> PoolStats:
        return self._inner.pool_stats()


DEMO_BREAKER: dict[str, Any] = {"failure_threshold": 3, "recovery_timeout": 0.2, "success_threshold": 2}
"""The demo repositories' circuit breaker: a short recovery so the outage demo stays quick."""

DEMO_RETRY: dict[str, Any] = {"retries": 2, "retry_delay": 0.005, "backoff_factor": 2, "max_retry_delay": 0.02}
"""The demo repositories' retries: the page's shape, with delays of milliseconds."""


def demo_config(
    url: str,
    prefix: str,
    timeout: float,
    *,
    decode_responses: bool = True,
    fallback: Mapping[str, Any] | bool | None = None,
    breaker_name: str = "redis",
) -> RedisConfig:
    """The config of a demo repository: ``url``, the run's key prefix, the given timeouts, metrics on."""
    pool = ConnectionPoolConfig(socket_timeout=timeout, socket_connect_timeout=timeout, pool_timeout=timeout)
    return RedisConfig(
        url=url,
        key_prefix=prefix,
        connection_pool=pool,
        decode_responses=decode_responses,
        enable_metrics=True,
        metrics_prefix="mario_pizzeria_redis",
        circuit_breaker={**DEMO_BREAKER, "name": breaker_name},
        retry_policy=DEMO_RETRY,
        fallback=fallback,
    )


class DemoRun:
    """What the sections of one run share: how to build repositories, the outage switch.

    Every repository it builds uses the run's server and key prefix; they are
    all closed by :meth:`close` at the end of the run.
    """

    def __init__(self, url: str, prefix: str, timeout: float) -> None:
        self.url = url
        self.prefix = prefix
        self.timeout = timeout
        self.outage = OutageSwitch()
        self.repositories: list[RedisRepository] = []
        """Every repository of the run, in the order built (the demo repository first)."""
        self._instances: list[RedisRepository] = []
        self._transports: list[Transport] = []  # injected: a repository does not close them

    def config(self, **options: Any) -> RedisConfig:
        """:func:`demo_config` for this run's server and prefix."""
        return demo_config(self.url, self.prefix, self.timeout, **options)

    def repository(self, *, outage: bool = False, **options: Any) -> RedisRepository:
        """A new repository of the run; ``outage=True`` puts its transport behind :attr:`outage`."""
        config = self.config(**options)
        transport = None
        if outage:
            transport = self.outage.wrap(build_transport(config))
            self._transports.append(transport)
        repository = RedisRepository(config, transport=transport)
        self.repositories.append(repository)
        return repository

    def instances(self, count: int) -> list[RedisRepository]:
        """The repositories of ``count`` service instances ("instance-1"...), built on first use.

        Each has its own connection pool, as separate processes would, so
        what they share goes through Redis only.
        """
        while len(self._instances) < count:
            self._instances.append(self.repository())
        return self._instances[:count]

    async def close(self) -> None:
        """Close every repository of the run, and the transports given to them."""
        for repository in reversed(self.repositories):
            await repository.disconnect()
        for transport in self._transports:
            await transport.close()


class _LogCapture(logging.Handler):
    """Keeps the library's log records of a run, for the report (and off stderr)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


# --------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------


class DemoCheckFailed(Exception):
    """A demo step returned something other than what the page promises."""


class ServerUnreachable(Exception):
    """The configured Redis could not be reached; the message says where and why."""


class ServerRefused(Exception):
    """The configured Redis answered but refused the username or password."""


def _ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.2f} ms" if ms < 10 else f"{ms:.1f} ms"


def _short(value: Any, width: int = 44) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], indent: str = "  ") -> list[str]:
    """Align ``rows`` under ``headers``; columns of numbers or timings align right."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    numeric = [
        bool(rows)
        and all(
            (isinstance(row[i], int | float) and not isinstance(row[i], bool))
            or (isinstance(row[i], str) and row[i].endswith(" ms"))
            for row in rows
        )
        for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return (indent + "  ".join(parts)).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(row) for row in cells)]


@dataclass
class SectionOutcome:
    """What one section did."""

    title: str
    checks: int = 0
    elapsed: float = 0.0


@dataclass
class DemoResult:
    """The outcome of a whole run (also what the in-process tests inspect)."""

    url: str
    prefix: str
    sections: list[SectionOutcome] = field(default_factory=list)
    removed_keys: int = 0
    remaining_keys: int = -1
    failure: str | None = None

    @property
    def checks(self) -> int:
        """Checks passed over every section."""
        return sum(s.checks for s in self.sections)

    @property
    def ok(self) -> bool:
        """Whether every section ran and every check passed, and nothing was left behind."""
        return self.failure is None and self.remaining_keys == 0


class DemoContext:
    """What a section gets: the repositories, the page's service provider, the report."""

    def __init__(
        self,
        repo: RedisRepository,
        bytes_repo: RedisRepository,
        out: TextIO,
        title: str = "",
        *,
        run: DemoRun,
    ) -> None:
        self.repo = repo
        """The demo repository: text replies are ``str``, metrics on, its transport behind the outage switch."""
        self.bytes_repo = bytes_repo
        """Same server and prefix, ``decode_responses=False``: replies are ``bytes``."""
        self.services = ServiceProvider(repo)
        """Resolves ``RedisRepository`` for the page's services."""
        self.run = run
        """What the sections of the run share: more repositories, the outage switch."""
        self.out = out
        self.outcome = SectionOutcome(title)
        """The section's checks and time, filled in as it runs."""

    def check(self, condition: bool, what: str) -> None:
        """Count a passed check, or stop the demo with ``what`` as the reason."""
        if not condition:
            raise DemoCheckFailed(what)
        self.outcome.checks += 1

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Print an aligned table."""
        for text in format_table(headers, rows):
            self.out.write(text + "\n")
        self.out.write("\n")

    def note(self, text: str) -> None:
        """Print one line of explanation."""
        self.out.write(f"  {text}\n")

    async def timed(self, call: Awaitable[S]) -> tuple[S, float]:
        """Await ``call``; returns its result and the seconds it took."""
        start = time.perf_counter()
        result = await call
        return result, time.perf_counter() - start


SectionFn = Callable[[DemoContext], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Section:
    """One part of the demo: a title, the page's service it shows, and the code."""

    title: str
    service: str
    run: SectionFn


# --------------------------------------------------------------------------
# The sections
# --------------------------------------------------------------------------


async def menu_cache_section(ctx: DemoContext) -> None:
    """Cache-aside reads, expiration, single and pattern invalidation."""
    db = MenuDatabase()
    menu = MenuCacheService(ctx.services, db)
    repo = ctx.repo
    rows: list[list[Any]] = []

    async def read(item_id: str, label: str = "") -> JsonDict | None:
        loads = db.loads
        item, took = await ctx.timed(menu.get_cached_menu_item(item_id))
        source = "database (miss)" if db.loads > loads else "cache (hit)"
        shown = f"{item['name']} {item['price']:.2f}" if item else "None"
        rows.append([f"get_cached_menu_item({item_id!r}){label}", source, shown, _ms(took)])
        return item

    for item_id in ("margherita", "pepperoni", "quattro_stagioni"):
        item = MenuDatabase.ITEMS[item_id]
        _, took = await ctx.timed(menu.cache_menu_item(item_id, item))
        rows.append([f"cache_menu_item({item_id!r})", "redis", "stored, expires in 24h", _ms(took)])
    await repo.set_async("mario_pizzeria:menu:version", "2024-06")

    loads = db.loads
    margherita = await read("margherita")
    ctx.check(db.loads == loads and margherita == MenuDatabase.ITEMS["margherita"], "a cached item is a hit")
    ttl = await repo.ttl_async("mario_pizzeria:menu:item:margherita")
    ctx.check(86_390 <= ttl <= 86_400, f"ttl of a 24h item is about 86400 s (got {ttl})")

    loads = db.loads
    await read("diavola")
    ctx.check(db.loads == loads + 1, "an item not cached yet is loaded from the database")
    loads = db.loads
    await read("diavola", " again")
    ctx.check(db.loads == loads, "the loaded item was cached")

    removed, took = await ctx.timed(menu.invalidate_menu_cache("margherita"))
    rows.append(["invalidate_menu_cache('margherita')", "delete_async", f"removed {removed} key", _ms(took)])
    ctx.check(removed == 1, "invalidating one item removes its key")
    loads = db.loads
    await read("margherita", " after")
    ctx.check(db.loads == loads + 1, "an invalidated item is a miss")

    removed, took = await ctx.timed(menu.invalidate_menu_cache())
    rows.append(["invalidate_menu_cache()", "delete_pattern_async", f"removed {removed} keys", _ms(took)])
    ctx.check(removed == 4, f"pattern invalidation removes the 4 cached items (removed {removed})")
    left = [k async for k in repo.scan_async("mario_pizzeria:menu:item:*")]
    ctx.check(left == [], "no menu item is left after invalidating all")
    version = await repo.get_async("mario_pizzeria:menu:version")
    ctx.check(version == "2024-06", "a key outside the pattern is untouched")
    await read("unknown_pizza")
    ctx.check(await repo.get_async("mario_pizzeria:menu:item:unknown_pizza") is None, "a missing item is not cached")

    ctx.table(["call", "served by", "result", "time"], rows)
    ctx.note("delete_pattern_async uses SCAN + UNLINK in batches (never KEYS);")
    ctx.note("'mario_pizzeria:menu:version' (outside the pattern) is still there: " + repr(version))


async def sessions_section(ctx: DemoContext) -> None:
    """Hash-based sessions: both hset forms, partial updates, TTL."""
    sessions = CustomerSessionService(ctx.services)
    repo = ctx.repo
    await sessions.create_customer_session(
        "c-1001",
        {"cart_items": [{"pizza": "margherita", "qty": 2}], "preferences": {"crust": "thin", "extra_basil": True}},
    )
    await sessions.create_customer_session("c-1002", {"preferences": {"crust": "classic"}})
    await sessions.update_customer_cart("c-1001", [{"pizza": "margherita", "qty": 2}, {"pizza": "diavola", "qty": 1}])
    await sessions.update_customer_cart("c-1002", [{"pizza": "pepperoni", "qty": 1}])

    rows: list[list[Any]] = []
    for customer_id in ("c-1001", "c-1002"):
        session = await sessions.get_customer_session(customer_id)
        key = f"{sessions.session_prefix}:{customer_id}"
        ttl = await repo.ttl_async(key)
        fields = await repo.hlen_async(key)
        ctx.check(session is not None and session["customer_id"] == customer_id, f"session {customer_id} reads back")
        ctx.check(14_390 <= ttl <= 14_400, f"a 4-hour session has a ttl of about 14400 s (got {ttl})")
        assert session is not None
        items = ", ".join(f"{i['qty']}x {i['pizza']}" for i in session["cart_items"])
        prefs = ", ".join(f"{k}={v}" for k, v in session["preferences"].items())
        rows.append([customer_id, fields, items, prefs, ttl])
    ctx.table(["customer", "fields", "cart", "preferences", "ttl (s)"], rows)

    cart = await sessions.get_customer_cart("c-1001")
    ctx.check(len(cart) == 2 and cart[1]["pizza"] == "diavola", "hget_async reads one field (the cart)")
    missing = await sessions.get_customer_session("c-9999")
    ctx.check(missing is None, "a session that does not exist reads as None")
    key = f"{sessions.session_prefix}:c-1002"
    added = await repo.hset_async(key, "coupon", "PIZZA10")
    coupon = await repo.hget_async(key, "coupon")
    ctx.check(added == 1 and coupon == "PIZZA10", "hset_async(key, field, value) sets one field")
    ctx.note(f"get_customer_cart('c-1001') -> {len(cart)} items via hget_async (one field, not the hash)")
    ctx.note("get_customer_session('c-9999') -> None (a miss is None; an outage would raise)")
    ctx.note("hset_async(key, {...}) and hset_async(key, 'coupon', 'PIZZA10') both work")


async def kitchen_queue_section(ctx: DemoContext) -> None:
    """A priority queue on a sorted set, a processing hash."""
    kitchen = KitchenQueueService(ctx.services)
    repo = ctx.repo
    orders = {"o-101": 1, "o-102": 5, "o-103": 3, "o-104": 8}
    for order_id, priority in orders.items():
        await kitchen.add_order_to_queue(order_id, priority)
    queue = await repo.zrange_async(kitchen.queue_key, 0, -1, desc=True, withscores=True)
    rows = [[i + 1, json.loads(member)["order_id"], int(score)] for i, (member, score) in enumerate(queue)]
    ctx.table(["position", "order", "priority"], rows)
    expected = sorted(orders, key=lambda o: -orders[o])
    ctx.check([r[1] for r in rows] == expected, "zrange_async(desc=True, withscores=True) lists by priority")
    same = await repo.zrevrange_async(kitchen.queue_key, 0, -1, withscores=True)
    ctx.check(same == queue, "zrevrange_async returns the same as zrange_async(desc=True)")

    taken: list[list[Any]] = []
    for station in ("oven-1", "oven-2"):
        order, took = await ctx.timed(kitchen.get_next_order(station))
        ctx.check(order is not None, f"{station} gets an order")
        assert order is not None
        taken.append([station, order["order_id"], order["priority"], _ms(took)])
    ctx.check([t[1] for t in taken] == expected[:2], "stations take the highest priorities first")
    processing = await repo.hgetall_async(kitchen.processing_key)
    ctx.check(sorted(processing) == sorted(expected[:2]), "taken orders are in the processing hash")
    await kitchen.complete_order_processing(expected[0])
    left_processing = await repo.hlen_async(kitchen.processing_key)
    left_queued = await repo.zcard_async(kitchen.queue_key)
    ctx.check(left_processing == 1 and left_queued == 2, "completing an order removes it from processing")
    ctx.table(["station", "order", "priority", "get_next_order"], taken)
    ctx.note(
        f"complete_order_processing({expected[0]!r}) -> hdel_async; processing: {left_processing}, "
        f"queued: {left_queued}"
    )


async def _update_without_lock(service: OrderProcessingService, ingredient_id: str, quantity_change: int) -> None:
    """``coordinate_inventory_update``'s read-modify-write without its DistributedLock."""
    current_stock = await service.get_ingredient_stock(ingredient_id)
    await service.update_ingredient_stock(ingredient_id, current_stock + quantity_change)


async def locks_section(ctx: DemoContext) -> None:
    """The page's OrderProcessingService: several instances racing on the same orders and stock."""
    repos = ctx.run.instances(3)
    names = [f"instance-{n}" for n in range(1, len(repos) + 1)]
    services = [OrderProcessingService(ServiceProvider(r)) for r in repos]
    redis = ctx.repo
    ctx.note(f"{len(services)} service instances, each with its own repository and connection pool (as")
    ctx.note("separate processes would have): whatever they share goes through Redis.")
    ctx.out.write("\n")

    stock = {"mozzarella": 40, "basil": 12, "truffle": 0}
    for ingredient, count in stock.items():
        await redis.set_async(f"mario_pizzeria:stock:{ingredient}", count)
    orders = {
        "o-201": ("24.50", "mozzarella"),
        "o-202": ("18.00", "basil"),
        "o-203": ("0.00", "mozzarella"),  # cannot be charged
        "o-204": ("31.00", "truffle"),  # out of stock
    }
    for order_id, (amount, ingredient) in orders.items():
        fields = {"status": "pending", "amount": amount, "ingredient": ingredient}
        await redis.hset_async(f"mario_pizzeria:orders:{order_id}", fields)

    # Every instance receives every order twice (a redelivered message, a retried request), all at once.
    calls = [(order_id, n) for order_id in orders for n in range(len(services)) for _ in range(2)]
    outcomes, took = await ctx.timed(
        asyncio.gather(*(services[n].process_order_safely(order_id) for order_id, n in calls))
    )
    rows: list[list[Any]] = []
    charges = await redis.lrange_async("mario_pizzeria:charges")
    for order_id, (amount, ingredient) in orders.items():
        mine = [(names[n], outcome) for (o, n), outcome in zip(calls, outcomes, strict=True) if o == order_id]
        worked = [(who, outcome) for who, outcome in mine if outcome != "already processed"]
        ctx.check(len(worked) == 1, f"exactly one of the {len(mine)} calls for {order_id} did the work")
        status = await redis.hget_async(f"mario_pizzeria:orders:{order_id}", "status")
        rows.append(
            [
                order_id,
                f"{amount} {ingredient}",
                f"{len(mine)} calls",
                f"{worked[0][1]} ({worked[0][0]})",
                f"{len(mine) - 1}x already processed",
                status,
                charges.count(order_id),
            ]
        )
    ctx.table(["order", "amount, needs", "received", "the one that ran", "the others", "status", "charged"], rows)
    ctx.check(sorted(charges) == ["o-201", "o-202"], "each payable order is charged once, the others never")
    notified = await redis.lrange_async("mario_pizzeria:kitchen_notifications")
    ctx.check(sorted(notified) == ["o-201", "o-202"], "the kitchen hears of each processed order once")
    statuses = [row[5] for row in rows]
    ctx.check(
        statuses == ["processing", "processing", "payment_failed", "awaiting_stock"],
        "a failed payment and a shortage are handled inside the lock",
    )
    held = [o for o in orders if await redis.exists_async(f"mario_pizzeria:order_lock:{o}")]
    ctx.check(held == [], "every order lock is released")
    ctx.note(f"{len(calls)} concurrent calls of process_order_safely() took {_ms(took)} in all.")
    ctx.out.write("\n")

    # coordinate_inventory_update: the same read-modify-write, without and with the lock.
    changes = [+5, -3, +2, -4, +1, +3, -2, +4] * 3  # 24 updates, net +18
    expected = 50 + sum(changes)
    await redis.set_async("mario_pizzeria:stock:flour", 50)
    await asyncio.gather(
        *(_update_without_lock(services[i % len(services)], "flour", c) for i, c in enumerate(changes))
    )
    unlocked = int(await redis.get_async("mario_pizzeria:stock:flour") or 0)
    await redis.set_async("mario_pizzeria:stock:flour", 50)
    _, took = await ctx.timed(
        asyncio.gather(
            *(services[i % len(services)].coordinate_inventory_update("flour", c) for i, c in enumerate(changes))
        )
    )
    locked = int(await redis.get_async("mario_pizzeria:stock:flour") or 0)
    cached = int(await redis.get_async("mario_pizzeria:stock_cache:flour") or 0)
    ctx.check(locked == expected and cached == expected, f"concurrent updates under the lock end exact ({expected})")
    try:
        await services[0].coordinate_inventory_update("flour", -1000)
        refusal = "accepted"
    except InsufficientInventoryError as exc:
        refusal = f"{type(exc).__name__}: {exc}"
    after = int(await redis.get_async("mario_pizzeria:stock:flour") or 0)
    ctx.check(refusal.startswith("InsufficientInventoryError") and after == expected, "a change below zero is refused")
    ctx.check(
        not await redis.exists_async("mario_pizzeria:inventory_lock:flour"), "the lock is released after a refusal"
    )
    ctx.table(
        ["flour: 50, then 24 concurrent changes (net +18)", "stock", "expected", "lost updates"],
        [
            [
                "the same read-modify-write without the lock",
                unlocked,
                expected,
                "yes" if unlocked != expected else "no",
            ],
            ["coordinate_inventory_update() (DistributedLock)", locked, expected, "no"],
        ],
    )
    ctx.note(f"coordinate_inventory_update('flour', -1000) -> {refusal}")
    ctx.note(f"24 locked updates from {len(services)} instances took {_ms(took)}.")


async def kitchen_stations_section(ctx: DemoContext) -> None:
    """The page's get_next_order and its lock: several stations pulling from one queue at once."""
    repos = ctx.run.instances(3)
    kitchens = [KitchenQueueService(ServiceProvider(r)) for r in repos]
    redis = ctx.repo
    queue_key, processing_key = kitchens[0].queue_key, kitchens[0].processing_key
    waiting = [json.loads(m)["order_id"] for m in await redis.zrange_async(queue_key, 0, -1)]
    in_processing = sorted(await redis.hkeys_async(processing_key))
    new_orders = {f"o-3{n:02d}": priority for n, priority in enumerate([4, 9, 1, 7, 3, 8, 2, 6, 5, 10])}
    for n, (order_id, priority) in enumerate(new_orders.items()):
        await kitchens[n % len(kitchens)].add_order_to_queue(order_id, priority)
    queued = waiting + list(new_orders)
    ctx.note(f"{len(queued)} orders queued ({len(waiting)} left by the kitchen queue section, {len(new_orders)} new);")
    ctx.note(f"{2 * len(kitchens)} stations on {len(kitchens)} instances take them all at once, each in a loop of")
    ctx.note("get_next_order() (ZRANGE + ZREM + HSET under DistributedLock 'mario_pizzeria:queue_lock').")
    ctx.out.write("\n")

    taken: list[tuple[str, str, JsonDict]] = []

    async def station(name: str, instance: str, kitchen: KitchenQueueService) -> None:
        while (order := await kitchen.get_next_order(name)) is not None:
            taken.append((name, instance, order))
            await asyncio.sleep(0.001)  # cooking
            await kitchen.complete_order_processing(order["order_id"])

    stations = [(f"oven-{2 * i + j + 1}", f"instance-{i + 1}", k) for i, k in enumerate(kitchens) for j in range(2)]
    _, took = await ctx.timed(asyncio.gather(*(station(*s) for s in stations)))
    ids = [order["order_id"] for _, _, order in taken]
    ctx.check(sorted(ids) == sorted(queued), f"each of the {len(queued)} orders went to exactly one station")
    rows: list[list[Any]] = []
    for name, instance, _ in stations:
        mine = [order for who, _, order in taken if who == name]
        priorities = [int(order["priority"]) for order in mine]
        ctx.check(priorities == sorted(priorities, reverse=True), f"{name} took its orders highest priority first")
        rows.append([name, instance, len(mine), ", ".join(o["order_id"] for o in mine) or "-", priorities or "-"])
    ctx.table(["station", "on", "orders", "taken", "priorities"], rows)
    ctx.check(await redis.zcard_async(queue_key) == 0, "the queue is empty")
    ctx.check(
        sorted(await redis.hkeys_async(processing_key)) == in_processing, "completed orders left the processing hash"
    )
    ctx.check(not await redis.exists_async("mario_pizzeria:queue_lock"), "the queue lock is released")
    first = [order["order_id"] for _, _, order in sorted(taken, key=lambda t: -int(t[2]["priority"]))][:3]
    ctx.note(f"{len(queued)} orders served in {_ms(took)}; the three most urgent: {', '.join(first)}.")


async def fencing_section(ctx: DemoContext) -> None:
    """A holder paused past its lease: a newer holder takes over, the late write is refused."""
    one, two = ctx.run.instances(2)
    lock_key, target = "mario_pizzeria:specials_lock", "mario_pizzeria:menu:special"
    loop = asyncio.get_running_loop()
    start = loop.time()
    steps: list[list[Any]] = []
    seen: dict[str, Any] = {}
    first_wrote, second_wrote, first_done = asyncio.Event(), asyncio.Event(), asyncio.Event()

    def step(who: str, what: str, token: int | None, result: str) -> None:
        steps.append([f"{(loop.time() - start) * 1000:.0f} ms", who, what, token, result])

    async def paused_holder() -> None:
        lock = DistributedLock(one, lock_key, timeout=0.2, auto_renew=False)
        token: int | None = None
        try:
            async with lock:
                token = seen["first"] = lock.fencing_token
                assert token is not None
                step("instance-1", "acquires (lease 0.2 s, no renewal)", token, "held")
                written = await fenced_set_async(one, target, "Margherita Speciale", token)
                step("instance-1", "fenced write of menu:special", token, "written" if written else "refused")
                first_wrote.set()
                # A stop-the-world pause, a swapped-out VM: no renewal runs, the lease runs out.
                await asyncio.wait_for(second_wrote.wait(), 10)
                owned = seen["first_owned"] = await lock.is_owned()
                step("instance-1", "resumes; is_owned()", token, str(owned))
                late = seen["late"] = await fenced_set_async(one, target, "Stale Special", token)
                step("instance-1", "late fenced write of menu:special", token, "written" if late else "refused")
        except LockLostError:
            seen["lost"] = True
            step("instance-1", "leaves the block", token, "LockLostError")
        finally:
            first_done.set()

    async def next_holder() -> None:
        await first_wrote.wait()
        lock = DistributedLock(two, lock_key, timeout=5)
        async with lock:
            token = seen["second"] = lock.fencing_token
            step("instance-2", "acquires once the lease ran out", token, "held")
            written = seen["written"] = await lock.fenced_set_async(target, "Diavola Speciale")
            step("instance-2", "fenced write of menu:special", token, "written" if written else "refused")
            second_wrote.set()
            await asyncio.wait_for(first_done.wait(), 10)
            owned = seen["second_owned"] = await lock.is_owned()
            step("instance-2", "after instance-1 left: is_owned()", token, str(owned))
        step("instance-2", "releases", token, "released")

    await asyncio.gather(paused_holder(), next_holder())
    ctx.table(["t", "who", "what", "fencing token", "result"], steps)
    first, second = seen["first"], seen["second"]
    ctx.check(second > first, f"the newer holder has the higher fencing token ({second} > {first})")
    ctx.check(seen["written"] and not seen["late"], "the stale holder's late write is refused")
    ctx.check(not seen["first_owned"] and seen.get("lost", False), "the stale holder learns it lost the lock")
    ctx.check(seen["second_owned"], "the stale holder's exit did not release the newer holder's lock")
    value = await ctx.repo.get_async(target)
    ctx.check(value == "Diavola Speciale", "menu:special holds the newer holder's value")
    ctx.check(not await ctx.repo.exists_async(lock_key), "no lock key is left")
    ctx.note(f"menu:special = {value!r}. A lease alone cannot stop a paused process from writing late;")
    ctx.note("fenced_set_async refuses any write carrying an older token than the last one accepted.")
    ctx.note("See docs/locks.md (Guarantees, Limits).")


async def analytics_section(ctx: DemoContext) -> None:
    """Sorted-set leaderboard and an hourly hash, on a bytes repository."""
    analytics = PizzaAnalyticsService(ServiceProvider(ctx.bytes_repo))
    rng = random.Random(2024)
    pizzas = ["Margherita", "Pepperoni", "Diavola", "Quattro Stagioni", "Capricciosa", "Marinara"]
    weights = [30, 22, 15, 12, 8, 5]
    placed = rng.choices(pizzas, weights, k=60)
    hours = rng.choices(range(11, 23), [2, 6, 5, 2, 1, 1, 3, 8, 10, 7, 4, 2], k=60)
    for pizza, hour in zip(placed, hours, strict=True):
        await analytics.track_popular_pizzas(pizza)
        await analytics.track_hourly_orders(hour)

    top, took = await ctx.timed(analytics.get_top_pizzas(5))
    counts = Counter(placed)
    most = max(counts.values())
    rows = [[i + 1, p["name"], p["order_count"], "#" * round(20 * p["order_count"] / most)] for i, p in enumerate(top)]
    ctx.table(["rank", "pizza", "orders", ""], rows)
    ctx.check(all(counts[p["name"]] == p["order_count"] for p in top), "scores equal the orders tracked")
    ctx.check([p["order_count"] for p in top] == sorted(counts.values(), reverse=True)[:5], "highest first")
    everything = await analytics.get_top_pizzas(50)
    ctx.check(sum(p["order_count"] for p in everything) == len(placed), "every order is counted once")

    distribution = await analytics.get_hourly_distribution()
    ctx.check(distribution == dict(Counter(hours)), "the hourly hash matches the orders tracked")
    peak = max(distribution.values())
    rows = [[f"{h:02d}:00", n, "#" * round(20 * n / peak)] for h, n in sorted(distribution.items())]
    ctx.table(["hour", "orders", ""], rows)

    key = f"{analytics.analytics_prefix}:pizza_popularity"
    as_text = (await ctx.repo.zrevrange_async(key, 0, 0))[0]
    as_bytes = (await ctx.bytes_repo.zrevrange_async(key, 0, 0))[0]
    ctx.check(isinstance(as_text, str) and isinstance(as_bytes, bytes), "text vs bytes follows decode_responses")
    ctx.note(f"get_top_pizzas(5) took {_ms(took)}; the page's pizza.decode() runs as written because this")
    ctx.note("service's repository has decode_responses=False. The same member read with the defaults:")
    ctx.table(
        ["repository", "zrevrange_async(key, 0, 0)[0]", "type"],
        [
            ["RedisConfig() (default)", repr(as_text), type(as_text).__name__],
            ["RedisConfig(decode_responses=False)", repr(as_bytes), type(as_bytes).__name__],
        ],
    )


async def segmentation_section(ctx: DemoContext) -> None:
    """Set algebra: members, intersection, union stored with a TTL."""
    segments = CustomerSegmentationService(ctx.services)
    repo = ctx.repo
    membership = {
        "vegetarian": {"c-1001", "c-1002", "c-1005"},
        "weekend": {"c-1002", "c-1003", "c-1005", "c-1006"},
        "loyalty": {"c-1004", "c-1005"},
    }
    for segment, customers in membership.items():
        for customer_id in sorted(customers):
            await segments.add_customer_to_segment(customer_id, segment)

    rows: list[list[Any]] = []
    for segment, customers in membership.items():
        stored = await segments.get_segment_customers(segment)
        ctx.check(stored == customers, f"segment {segment} holds its customers")
        ttl = await repo.ttl_async(f"{segments.segment_prefix}:{segment}")
        rows.append([segment, len(stored), ", ".join(sorted(stored)), round(ttl / 86_400)])
    ctx.table(["segment", "size", "customers", "ttl (days)"], rows)

    both = await segments.find_overlapping_customers("vegetarian", "weekend")
    ctx.check(both == membership["vegetarian"] & membership["weekend"], "sinter_async is the intersection")
    target = await segments.create_targeted_campaign(["vegetarian", "loyalty"], "spring_veggie")
    campaign_key = f"{segments.segment_prefix}:campaign:spring_veggie"
    union = membership["vegetarian"] | membership["loyalty"]
    stored = await repo.smembers_async(campaign_key)
    ctx.check(target == len(union) and stored == union, "sunionstore_async stores the union")
    ttl = await repo.ttl_async(campaign_key)
    ctx.check(604_790 <= ttl <= 604_800, f"the campaign expires in 7 days (ttl {ttl})")
    weekend_only = await repo.sdiff_async([f"{segments.segment_prefix}:weekend", f"{segments.segment_prefix}:loyalty"])
    ctx.check(weekend_only == membership["weekend"] - membership["loyalty"], "sdiff_async is the difference")
    ctx.table(
        ["operation", "result"],
        [
            ["find_overlapping_customers(vegetarian, weekend)", ", ".join(sorted(both))],
            ["create_targeted_campaign([vegetarian, loyalty])", f"{target} customers, ttl {ttl} s"],
            ["sdiff_async([weekend, loyalty])", ", ".join(sorted(weekend_only))],
        ],
    )


async def serialization_section(ctx: DemoContext) -> None:
    """msgpack bytes through the plain API; typed objects; objects as hashes."""
    repo = ctx.repo
    rows: list[list[Any]] = []
    order = {
        "order_id": "o-104",
        "customer_id": "c-1001",
        "items": [{"pizza": "Diavola", "qty": 1, "price": 11.0}, {"pizza": "Margherita", "qty": 2, "price": 8.5}],
        "total": 28.0,
        "paid": True,
    }
    try:
        import msgpack  # noqa: F401 - only probing for the extra
    except ImportError:
        ctx.note("msgpack is not installed: pip install 'neuroglia-redis[msgpack]' to run this part")
    else:
        service = CustomSerializationService(ctx.services)
        key = "mario_pizzeria:orders:o-104:msgpack"
        await service.cache_with_msgpack(key, order)
        back = await service.get_with_msgpack(key)
        ctx.check(back == order, "a msgpack value round-trips through set_async/get_async")
        raw = await repo.get_async(key)
        ctx.check(isinstance(raw, bytes), "a value that is not UTF-8 comes back as bytes, unchanged")
        assert isinstance(raw, bytes)
        rows.append(["cache_with_msgpack / get_with_msgpack", f"{len(raw)} bytes", "msgpack", "dict equal"])
        ctx.check(await service.get_with_msgpack("mario_pizzeria:orders:nope") is None, "a msgpack miss is None")

    special = MenuItem(
        name="Pizza del Giorno", price=13.5, toppings=["burrata", "pesto", "cherry tomatoes"], vegetarian=True
    )
    key = "mario_pizzeria:menu:special"
    await repo.set_object_async(key, special, expiration=timedelta(hours=12))
    loaded = await repo.get_object_async(key, MenuItem)
    ctx.check(loaded == special, "set_object_async/get_object_async round-trip a dataclass")
    stored = await repo.get_async(key)
    envelope = read_envelope(stored) if isinstance(stored, bytes) else None
    ctx.check(
        envelope is not None and envelope.strategy == "json" and json.loads(envelope.payload)["name"] == special.name,
        "objects are stored as JSON in the versioned envelope",
    )
    assert isinstance(stored, bytes)
    rows.append(
        [
            "set_object_async / get_object_async(MenuItem)",
            f"{len(stored)} bytes",
            repo.serializer.name,
            "MenuItem equal",
        ]
    )
    ctx.check(await repo.get_object_async("mario_pizzeria:menu:nope", MenuItem) is None, "a typed miss is None")

    customers = RedisHashRepository(repo, Customer, key_prefix="mario_pizzeria:customers")
    luigi = Customer(id="c-1001", name="Luigi", loyalty_points=120, favourite_pizzas=["Margherita"])
    await customers.add_async(luigi)
    ctx.check(await customers.get_async("c-1001") == luigi, "RedisHashRepository round-trips a dataclass")
    points = await customers.increment_field_async("c-1001", "loyalty_points", 15)
    await customers.set_field_async("c-1001", "favourite_pizzas", ["Margherita", "Diavola"])
    updated = await customers.get_async("c-1001")
    ctx.check(
        points == 135
        and updated == dataclasses.replace(luigi, loyalty_points=135, favourite_pizzas=["Margherita", "Diavola"]),
        "single fields update in place (hincrby, hset)",
    )
    ctx.check(await customers.get_async("c-4242") is None, "a missing entity is None")
    rows.append(
        [
            "RedisHashRepository[Customer]",
            f"{await repo.hlen_async(customers.key('c-1001'))} fields",
            repo.serializer.name,
            "Customer equal",
        ]
    )
    ctx.table(["what", "stored", "format", "read back"], rows)

    raw_fields = await repo.hgetall_async(customers.key("c-1001"))
    ctx.table(["hash field", "stored value"], [[k, _short(v)] for k, v in raw_fields.items()])
    ctx.note("The page's pickle examples are not run: unpickling what a shared cache returns")
    ctx.note("executes arbitrary code. See docs/spec-compatibility.md.")


def _breaker_text(breaker: CircuitBreakerPolicy) -> str:
    state = breaker.state
    if state is CircuitState.CLOSED and breaker.failure_count:
        return f"closed ({breaker.failure_count}/{breaker.failure_threshold} failures)"
    return state.value


async def resilience_section(ctx: DemoContext) -> None:
    """A simulated outage: the repository's breaker opens, fails fast, falls back, recovers."""
    repo = ctx.repo
    breaker = repo.circuit_breaker
    outage = ctx.run.outage
    ctx.check(breaker is not None, "the demo repository has its own circuit breaker")
    assert breaker is not None
    breaker.reset()
    db = MenuDatabase()
    service = ResilientMenuService(ctx.services, db)
    # A second repository of the same process, with the stale-read fallback on (off by default).
    board = ctx.run.repository(outage=True, fallback={"max_entries": 100, "max_staleness": 60}, breaker_name="board")
    board_key = "mario_pizzeria:menu:margherita"
    loop = asyncio.get_running_loop()
    events: list[tuple[float, CircuitState, CircuitState]] = []

    def on_change(old: CircuitState, new: CircuitState) -> None:
        events.append((loop.time(), old, new))

    breaker.add_listener(on_change)
    rows: list[list[Any]] = []

    async def call(label: str, menu_id: str) -> tuple[CacheException | None, int]:
        loads, caught, refused = db.loads, len(service.unavailable), outage.refused
        menu, took = await ctx.timed(service.get_menu_with_fallback(menu_id))
        error = service.unavailable[-1] if len(service.unavailable) > caught else None
        if error is None:
            source = "database (miss), then Redis" if db.loads > loads else "Redis"
        else:
            source = "database (last resort)" if db.loads > loads else "the service's fallback_cache"
        ctx.check(menu == MenuDatabase.ITEMS[menu_id], f"{label} returns the menu")
        attempts = outage.refused - refused
        caught_name = type(error).__name__ if error else "-"
        rows.append([label, source, caught_name, attempts, _ms(took), _breaker_text(breaker)])
        return error, attempts

    def table(title: str) -> None:
        ctx.note(title)
        ctx.table(["call", "answered by", "error caught", "refused", "time", "repository breaker"], rows)
        rows.clear()

    try:
        # Healthy.
        await service.warm_fallback_cache()
        ctx.check(db.loads == 3 and len(service.fallback_cache) == 3, "warm_fallback_cache() loads 3 menus")
        rows.append(["warm_fallback_cache()", "database x3, cached in Redis", "-", 0, "", _breaker_text(breaker)])
        await call("get_menu_with_fallback('margherita')", "margherita")
        seen = await board.get_async(board_key)
        ctx.check(seen is not None and not board.served_stale(), "the board reads the menu from Redis")
        rows.append(["board.get_async(menu:margherita)", "Redis", "-", 0, "", "-"])
        ctx.note("The service runs on the demo repository. 'board' is a second repository of this process,")
        ctx.note("a menu board with the stale-read fallback on (fallback=True; off by default).")
        ctx.out.write("\n")
        table("Redis up:")

        # The outage: every command of these repositories is refused, in this process only.
        outage.active = True
        outage_started = loop.time()
        refused = outage.refused
        stale, took = await ctx.timed(board.get_async(board_key))
        served_stale = board.served_stale()
        ctx.check(stale == seen and served_stale, "fallback=True: the board's read is served stale")
        rows.append(
            [
                "board.get_async(menu:margherita)",
                "the repository's stale fallback",
                "-",
                outage.refused - refused,
                _ms(took),
                f"served_stale() {served_stale}",
            ]
        )
        refused = outage.refused
        try:
            await board.set_async(board_key, "{}")
            write = "written"
        except CacheUnavailableError as exc:
            write = type(exc).__name__
        ctx.check(write == "CacheUnavailableError", "a write is never answered from the fallback")
        rows.append(["board.set_async(menu:margherita)", f"raises {write}", "-", outage.refused - refused, "", "-"])
        threshold = breaker.failure_threshold
        attempts_per_call = repo.config.retry.retries + 1
        for n in range(1, threshold + 3):
            error, attempts = await call(f"get_menu_with_fallback('pepperoni') #{n}", "pepperoni")
            if n <= threshold:
                ctx.check(
                    type(error) is CacheUnavailableError and attempts == attempts_per_call,
                    f"call #{n} fails after {attempts_per_call} attempts (retries) and is caught by the service",
                )
            else:
                ctx.check(isinstance(error, CircuitOpenError) and attempts == 0, f"call #{n} fails fast, nothing sent")
            expected = CircuitState.OPEN if n >= threshold else CircuitState.CLOSED
            ctx.check(breaker.state is expected, f"the breaker is {expected.value} after {n} failed operations")
        fail_fast = service.unavailable[-1]
        await call("get_menu_with_fallback('diavola')", "diavola")
        ctx.check(db.loads == 4, "a menu the service never read comes from the database, as a last resort")
        ctx.check(
            ResilientMenuService.circuit_breaker.state is CircuitState.CLOSED,
            "the method's breaker stays closed: the page's method catches CacheException itself",
        )
        table("Redis down (simulated: the transport refuses every command; the server is not touched):")

        # Recovery.
        outage.active = False
        opened_at = next(t for t, _, new in events if new is CircuitState.OPEN)
        if loop.time() - opened_at < breaker.recovery_timeout / 2:  # (always, unless the machine is very slow)
            await call("get_menu_with_fallback('margherita')", "margherita")
            ctx.check(breaker.state is CircuitState.OPEN, "right after the outage the breaker still fails fast")
        await asyncio.sleep(max(0.0, opened_at + breaker.recovery_timeout - loop.time()) + 0.01)
        ctx.check(breaker.state is CircuitState.HALF_OPEN, "after recovery_timeout the breaker is half-open")
        for n, menu_id in enumerate(["margherita", "pepperoni"], 1):
            error, _ = await call(f"get_menu_with_fallback('{menu_id}') (trial {n})", menu_id)
            ctx.check(error is None, f"trial {n} reaches Redis")
        ctx.check(breaker.state is CircuitState.CLOSED, f"{breaker.success_threshold} good trials close the breaker")
        fresh = await board.get_async(board_key)
        ctx.check(fresh == seen and not board.served_stale(), "the board reads from Redis again")
        rows.append(["board.get_async(menu:margherita)", "Redis", "-", 0, "", f"served_stale() {board.served_stale()}"])
        table(
            f"Redis back (recovery_timeout {breaker.recovery_timeout:g} s, success_threshold "
            f"{breaker.success_threshold}):"
        )
    finally:
        outage.active = False
        breaker.remove_listener(on_change)

    transitions = [(old.value, new.value) for _, old, new in events]
    ctx.check(
        transitions == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")],
        "the breaker went closed -> open -> half_open -> closed",
    )
    why = {
        "open": f"{threshold} consecutive failed operations",
        "half_open": f"recovery_timeout ({breaker.recovery_timeout:g} s) elapsed",
        "closed": f"{breaker.success_threshold} successful trial calls",
    }
    ctx.table(
        ["t", "breaker event (listener)", "why"],
        [
            [f"{(t - outage_started) * 1000:.0f} ms", f"{old.value} -> {new.value}", why[new.value]]
            for t, old, new in events
        ],
    )
    first_error = service.unavailable[0]
    ctx.note(f"The service caught: {type(first_error).__name__}: {first_error}")
    ctx.note(f"             then: {type(fail_fast).__name__}: {fail_fast}")
    ctx.note(f"The outage refused {outage.refused} commands in this process; none reached the server.")
    ctx.note("The page's @circuit_breaker.apply on an instance attribute is a NameError; the class-level")
    ctx.note("breaker used here is the working form (docs/resilience.md).")


def _merged(histograms: Iterable[Histogram]) -> Histogram:
    """One histogram holding every observation of ``histograms`` (same buckets)."""
    total = Histogram()
    for histogram in histograms:
        if histogram.buckets != total.buckets:
            continue
        total.counts = [a + b for a, b in zip(total.counts, histogram.counts, strict=True)]
        total.total += histogram.total
        total.count += histogram.count
    return total


@dataclass
class _Figures:
    """What a report needs from one or more :class:`CacheMetrics`."""

    commands: Counter[str] = field(default_factory=Counter)
    latency: dict[str, Histogram] = field(default_factory=dict)
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)
    hits: int = 0
    misses: int = 0
    lock_acquired: int = 0
    lock_timeouts: int = 0
    lock_wait: Histogram = field(default_factory=Histogram)
    lock_hold: Histogram = field(default_factory=Histogram)

    @classmethod
    def of(cls, metrics: Iterable[CacheMetrics]) -> _Figures:
        figures = cls()
        waits: list[Histogram] = []
        holds: list[Histogram] = []
        for m in metrics:
            for kind, name, labels, value in m.samples():
                label = dict(labels)
                if kind == "counter" and name == "commands_total":
                    figures.commands[label["command"]] += value
                elif kind == "counter" and name == "errors_total":
                    figures.errors[(label["type"], label["command"])] += value
                elif kind == "counter" and name == "lock_acquisitions_total":
                    if label["outcome"] == "acquired":
                        figures.lock_acquired += value
                    else:
                        figures.lock_timeouts += value
                elif kind == "histogram" and name == "command_duration_seconds":
                    command = label["command"]
                    figures.latency[command] = _merged([figures.latency.get(command, Histogram()), value])
                elif kind == "histogram" and name == "lock_wait_seconds" and label.get("outcome") == "acquired":
                    waits.append(value)
                elif kind == "histogram" and name == "lock_hold_seconds":
                    holds.append(value)
            figures.hits += m.get_counter("cache_hits_total")
            figures.misses += m.get_counter("cache_misses_total")
        figures.lock_wait = _merged(waits)
        figures.lock_hold = _merged(holds)
        return figures

    @property
    def hit_ratio(self) -> float:
        return self.hits / (self.hits + self.misses) if self.hits + self.misses else 0.0

    @property
    def all_latency(self) -> Histogram:
        return _merged(self.latency.values())


def _quantiles(histogram: Histogram) -> str:
    if not histogram.count:
        return "-"
    return f"{_ms(histogram.quantile(0.5))} / {_ms(histogram.quantile(0.99))}"


async def metrics_section(ctx: DemoContext) -> None:
    """The page's CachePerformanceMonitor, then what the repositories measured by themselves."""
    repo = ctx.repo
    metrics = repo.metrics
    ctx.check(metrics is not None, "the demo repository runs with enable_metrics=True")
    assert metrics is not None

    # The page's monitor, fed by hand, beside the repository's own counting.
    monitor = CachePerformanceMonitor(repo)
    reads = ["margherita", "pepperoni", "margherita", "quattro_stagioni", "pepperoni", "margherita"]
    await repo.delete_async([f"mario_pizzeria:menu:item:{item_id}" for item_id in set(reads)])
    hits_before, misses_before = metrics.get_counter("cache_hits_total"), metrics.get_counter("cache_misses_total")
    for item_id in reads:
        key = f"mario_pizzeria:menu:item:{item_id}"
        hit = await repo.get_async(key) is not None
        await monitor.track_cache_operation("get", key, hit=hit)
        if not hit:
            await repo.set_async(key, json.dumps(MenuDatabase.ITEMS[item_id]), expiration=timedelta(hours=24))
            await monitor.track_cache_operation("set", key)
    hits = metrics.get_counter("cache_hits_total") - hits_before
    misses = metrics.get_counter("cache_misses_total") - misses_before
    summary = await monitor.get_performance_summary()
    ctx.check(summary["cache_hits"] == 3 and summary["cache_misses"] == 3, "the monitor counts 3 hits, 3 misses")
    ctx.check(summary["hit_ratio"] == 0.5, "the monitor's hit ratio is 0.5")
    ctx.check((hits, misses) == (3, 3), "repo.metrics counted the same hits and misses by itself")
    ctx.check(summary["active_connections"] >= 1 and summary["memory_usage"] > 0, "pool and memory figures are read")
    ctx.table(
        ["get_performance_summary()", "value"],
        [[name, value] for name, value in summary.items()],
    )
    ctx.note("total_operations is 0 as on the page: its code counts cache_operations_get/_set,")
    ctx.note(
        f"never cache_operations_total (get: {monitor.metrics.get_counter('cache_operations_get')}, "
        f"set: {monitor.metrics.get_counter('cache_operations_set')})."
    )
    ctx.out.write("\n")

    # What the repositories measured by themselves over the whole run.
    everyone = [r.metrics for r in ctx.run.repositories if r.metrics is not None]
    own, run = _Figures.of([metrics]), _Figures.of(everyone)
    snapshot = metrics.snapshot()
    ctx.check(abs(snapshot["hit_ratio"] - own.hit_ratio) < 1e-9, "snapshot()['hit_ratio'] = hits / (hits + misses)")
    ctx.check(sum(own.commands.values()) == own.all_latency.count, "every counted command has its latency observed")
    breaker = repo.circuit_breaker
    transitions = Counter(
        {
            dict(labels)["to"]: value
            for kind, name, labels, value in metrics.samples()
            if kind == "counter" and name == "circuit_breaker_transitions_total"
        }
    )
    breaker_text = "off"
    if breaker is not None:
        breaker_text = (
            f"{breaker.state.value} (opened {breaker.opened_count}x, {sum(transitions.values())} transitions)"
        )
    pool = repo.connection_pool

    def both(own_value: Any, run_value: Any) -> list[Any]:
        return [own_value, run_value]

    ctx.table(
        ["figure", "demo repository", f"all {len(everyone)} repositories of the run"],
        [
            ["commands", *both(sum(own.commands.values()), sum(run.commands.values()))],
            ["reads: hits / misses", *both(f"{own.hits} / {own.misses}", f"{run.hits} / {run.misses}")],
            ["hit ratio", *both(f"{own.hit_ratio:.1%}", f"{run.hit_ratio:.1%}")],
            ["latency p50 / p99", *both(_quantiles(own.all_latency), _quantiles(run.all_latency))],
            ["errors", *both(sum(own.errors.values()), sum(run.errors.values()))],
            [
                "locks acquired / timed out",
                *both(f"{own.lock_acquired} / {own.lock_timeouts}", f"{run.lock_acquired} / {run.lock_timeouts}"),
            ],
            ["lock wait p50 / p99", *both(_quantiles(own.lock_wait), _quantiles(run.lock_wait))],
            ["lock hold p50 / p99", *both(_quantiles(own.lock_hold), _quantiles(run.lock_hold))],
            ["circuit breaker", breaker_text, ""],
            ["connections created", f"{pool.created_connections} of {pool.max_connections}", ""],
        ],
    )

    top = own.commands.most_common(10)
    rows: list[list[Any]] = [
        [command, count, _ms(own.latency[command].quantile(0.5)), _ms(own.latency[command].quantile(0.99))]
        for command, count in top
    ]
    rest = [c for c in own.commands if c not in dict(top)]
    if rest:
        rest_latency = _merged(own.latency[c] for c in rest)
        rows.append(
            [
                f"{len(rest)} other commands",
                sum(own.commands[c] for c in rest),
                _ms(rest_latency.quantile(0.5)),
                _ms(rest_latency.quantile(0.99)),
            ]
        )
    ctx.table(["command (demo repository)", "calls", "p50", "p99"], rows)

    if own.errors:
        ctx.table(
            ["error type (demo repository)", "command", "count"],
            [[kind, command, count] for (kind, command), count in sorted(own.errors.items())],
        )
    latency = own.all_latency
    peak = max(latency.counts)
    bounds = [*latency.buckets, float("inf")]
    bars = [
        [f"<= {_ms(bound)}" if bound != float("inf") else "> 10 s", n, "#" * max(1, round(30 * n / peak))]
        for bound, n in zip(bounds, latency.counts, strict=True)
        if n
    ]
    ctx.table(["latency (all commands)", "calls", ""], bars)
    ctx.note(f"Latencies are histogram bucket bounds (prefix {metrics.prefix!r}); the same figures export to")
    ctx.note("Prometheus and OpenTelemetry (docs/framework.md, Metrics).")


SECTIONS: tuple[Section, ...] = (
    Section("Menu cache", "MenuCacheService", menu_cache_section),
    Section("Customer sessions", "CustomerSessionService", sessions_section),
    Section("Kitchen queue", "KitchenQueueService", kitchen_queue_section),
    Section("Distributed locking", "OrderProcessingService", locks_section),
    Section("Kitchen stations", "KitchenQueueService", kitchen_stations_section),
    Section("Fencing tokens", "DistributedLock", fencing_section),
    Section("Real-time analytics", "PizzaAnalyticsService", analytics_section),
    Section("Customer segmentation", "CustomerSegmentationService", segmentation_section),
    Section("Custom serialization", "CustomSerializationService", serialization_section),
    Section("Resilience", "ResilientMenuService", resilience_section),
    Section("Cache layer", "RedisCache", caching_section),
    Section("Metrics", "CachePerformanceMonitor", metrics_section),
)
"""The demo's parts, in order. Metrics comes last: it reports on everything before it."""


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------


async def run_demo(
    url: str = "memory://",
    *,
    out: TextIO,
    timeout: float = 5.0,
    sections: Sequence[Section] = SECTIONS,
) -> DemoResult:
    """Run ``sections`` against ``url`` and write the report to ``out``.

    Raises :class:`~neuroglia.data.redis.ConfigurationError` for a bad URL,
    :class:`ServerUnreachable` when Redis cannot be reached and
    :class:`ServerRefused` when it rejects the credentials. A failed check
    or a library error during the run is recorded in
    :attr:`DemoResult.failure`; the demo's keys are removed either way.
    """
    token = secrets.token_hex(4)
    prefix = f"demo:{token}:"
    config = demo_config(url, prefix, timeout)
    if config.scheme == "memory" and config.memory_name is None:
        # Name the embedded server so the run's other repositories share its data.
        url = f"memory://demo-{token}"
        config = demo_config(url, prefix, timeout)
    shown_url = config.redacted_url
    result = DemoResult(url=shown_url, prefix=prefix)
    run = DemoRun(url, prefix, timeout)
    repo = run.repository(outage=True)
    bytes_repo = run.repository(decode_responses=False)
    # The library logs on its own loggers (a breaker opening, a lock lost); the
    # report shows those lines under the section that caused them.
    library_log = logging.getLogger("neuroglia.data.redis")
    captured = _LogCapture()
    library_log.addHandler(captured)
    try:
        try:
            await repo.connect()
            info = await repo.info("server")
        except CacheUnavailableError as exc:
            raise ServerUnreachable(f"cannot reach Redis at {shown_url}: {exc}") from exc
        except CacheAuthenticationError as exc:
            raise ServerRefused(f"Redis at {shown_url} refused the credentials: {exc}") from exc
        _header(out, config, info, prefix, len(sections))
        current = ""
        try:
            for number, section in enumerate(sections, 1):
                current = section.title
                ctx = DemoContext(repo, bytes_repo, out, section.title, run=run)
                result.sections.append(await _run_section(ctx, section, number, len(sections), captured))
        except (DemoCheckFailed, CacheException) as exc:
            kind = "check failed" if isinstance(exc, DemoCheckFailed) else type(exc).__name__
            result.failure = f"{current}: {kind}: {exc}"
        finally:
            # Also on Ctrl-C (a cancelled task may still await here): never leave keys behind,
            # even if a section stopped in the middle of its simulated outage.
            run.outage.active = False
            if repo.circuit_breaker is not None:
                repo.circuit_breaker.reset()
            await _clean_up(repo, result)
        _summary(out, result)
        return result
    finally:
        library_log.removeHandler(captured)
        await run.close()


async def _run_section(
    ctx: DemoContext, section: Section, number: int, total: int, captured: _LogCapture
) -> SectionOutcome:
    out = ctx.out
    title = f"[{number}/{total}] {section.title} - {section.service}"
    out.write(f"\n{title}\n{'-' * len(title)}\n")
    out.flush()  # progress: the title shows as the section starts, also through a pipe
    logged = len(captured.records)
    start = time.perf_counter()
    try:
        await section.run(ctx)
    finally:
        for record in captured.records[logged:]:
            ctx.note(f"logged: {record.levelname} {record.name}: {record.getMessage()}")
    ctx.outcome.elapsed = time.perf_counter() - start
    out.write(f"  ok: {ctx.outcome.checks} checks passed in {_ms(ctx.outcome.elapsed)}\n")
    out.flush()
    return ctx.outcome


def _header(out: TextIO, config: RedisConfig, info: dict[str, Any], prefix: str, sections: int) -> None:
    title = "neuroglia-redis demo: Mario's Pizzeria on the Redis Cache Repository"
    if config.scheme == "memory":
        server = f"{config.redacted_url} (embedded backend, no server needed)"
    else:
        server = f"{config.redacted_url} (Redis {info.get('redis_version', '?')}, {info.get('redis_mode', '?')})"
    out.write(f"{title}\n{'=' * len(title)}\n")
    for label, value in (
        ("server", server),
        ("key prefix", f"{prefix} (removed at the end)"),
        ("sections", str(sections)),
    ):
        out.write(f"  {label:<11} {value}\n")


async def _clean_up(repo: RedisRepository, result: DemoResult) -> None:
    try:
        result.removed_keys = await repo.delete_pattern_async("*")
        result.remaining_keys = len([k async for k in repo.scan_async("*")])
    except CacheException as exc:
        result.failure = result.failure or f"clean-up: {type(exc).__name__}: {exc}"


def _summary(out: TextIO, result: DemoResult) -> None:
    title = "Summary"
    out.write(f"\n{title}\n{'-' * len(title)}\n")
    rows: list[list[Any]] = [[s.title, s.checks, _ms(s.elapsed)] for s in result.sections]
    rows.append(["total", result.checks, _ms(sum(s.elapsed for s in result.sections))])
    for text in format_table(["section", "checks", "time"], rows):
        out.write(text + "\n")
    out.write("\n")
    if result.remaining_keys >= 0:
        out.write(
            f"  clean-up: removed {result.removed_keys} demo keys under {result.prefix}*; "
            f"{result.remaining_keys} remain\n"
        )
    if result.failure:
        out.write(f"\nFAILED: {result.failure}\n")
    elif result.remaining_keys != 0:
        out.write(f"\nFAILED: {result.remaining_keys} demo keys were left behind\n")
    else:
        out.write(f"\nAll {result.checks} checks passed in {len(result.sections)} sections.\n")
