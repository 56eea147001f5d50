"""The ``demo`` command: the framework page's Mario's Pizzeria services, end to end.

``python -m neuroglia.data.redis demo [--url URL]`` runs the services of the
Redis Cache Repository page (menu cache, customer sessions, kitchen queue,
analytics, segmentation, custom serialization) against ``memory://`` (the
embedded backend, the default) or a real server, checks what each step
returns, and prints a report.

Every key the demo writes lives under a fresh prefix (``demo:<random>:``),
and the clean-up at the end deletes that prefix only: the demo never flushes
a database and never touches keys it did not write.

Structure: one async function per section, each taking a :class:`DemoContext`
and listed in :data:`SECTIONS`. To add a section (locks, resilience,
metrics...), write ``async def my_section(ctx: DemoContext) -> None`` that
reports with ``ctx.table``/``ctx.note``/``ctx.check`` and append
``Section("Title", "ServiceName", my_section)`` to :data:`SECTIONS`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TextIO, TypeVar, cast

from ._config import ConnectionPoolConfig, RedisConfig
from ._envelope import read_envelope
from ._hash_repository import RedisHashRepository
from ._lock import DistributedLock, fenced_set_async
from ._repository import RedisRepository
from .exceptions import CacheAuthenticationError, CacheException, CacheUnavailableError, LockTimeoutError

__all__ = [
    "SECTIONS",
    "DemoCheckFailed",
    "DemoContext",
    "DemoResult",
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


class InsufficientInventoryError(Exception):
    """The page's error for a stock change that would go below zero."""


class ConcurrentUpdateError(Exception):
    """The page's error when the inventory lock could not be had."""


class OrderProcessingService:
    """The page's "Order Processing Coordination", with orders and stock kept in Redis.

    The page leaves loading, charging and the stock store to the reader; here
    an order is a hash, a charge is an entry in a list, a stock is a string.
    """

    def __init__(self, service_provider: ServiceProvider) -> None:
        self.redis = service_provider.get_service(RedisRepository)
        self.lock_timeout = 30  # 30 seconds

    async def process_order_safely(self, order_id: str) -> bool:
        """Process order with distributed locking; whether this call processed it."""
        lock_key = f"mario_pizzeria:order_lock:{order_id}"

        async with DistributedLock(self.redis, lock_key, timeout=self.lock_timeout):
            # Critical section - only one service instance can process this order
            order_key = f"mario_pizzeria:orders:{order_id}"
            if await self.redis.hget_async(order_key, "status") != "pending":
                return False  # already processed
            await self.redis.rpush_async("mario_pizzeria:charges", order_id)
            await self.redis.hset_async(order_key, "status", "processing")
            return True

    async def coordinate_inventory_update(self, ingredient_id: str, quantity_change: int) -> int:
        """Update inventory with distributed coordination; returns the new stock."""
        lock_key = f"mario_pizzeria:inventory_lock:{ingredient_id}"
        stock_key = f"mario_pizzeria:stock:{ingredient_id}"
        try:
            async with DistributedLock(self.redis, lock_key, timeout=10):
                current_stock = int(await self.redis.get_async(stock_key) or 0)
                new_stock = current_stock + quantity_change
                if new_stock < 0:
                    raise InsufficientInventoryError(
                        f"Cannot reduce {ingredient_id} by {abs(quantity_change)}. Current stock: {current_stock}"
                    )
                await self.redis.set_async(stock_key, new_stock)
                return new_stock
        except LockTimeoutError:
            raise ConcurrentUpdateError("Inventory update failed due to concurrent access") from None


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

    def __init__(self, repo: RedisRepository, bytes_repo: RedisRepository, out: TextIO, title: str = "") -> None:
        self.repo = repo
        """The repository with the default config: text replies are ``str``."""
        self.bytes_repo = bytes_repo
        """Same server and prefix, ``decode_responses=False``: replies are ``bytes``."""
        self.services = ServiceProvider(repo)
        """Resolves ``RedisRepository`` for the page's services."""
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


async def locks_section(ctx: DemoContext) -> None:
    """The page's three uses of DistributedLock, with concurrent callers, and fencing."""
    repo = ctx.repo
    instances = [OrderProcessingService(ctx.services) for _ in range(3)]
    await repo.hset_async("mario_pizzeria:orders:o-201", {"status": "pending", "total": "24.50"})
    outcome = await asyncio.gather(*(s.process_order_safely("o-201") for s in instances for _ in range(2)))
    charges = await repo.lrange_async("mario_pizzeria:charges")
    ctx.check(sum(outcome) == 1 and charges == ["o-201"], "six concurrent calls process the order once")
    ctx.table(
        ["calls of process_order_safely('o-201')", "processed", "charges"],
        [["3 instances x 2, at once", f"{sum(outcome)} of {len(outcome)}", len(charges)]],
    )

    await repo.set_async("mario_pizzeria:stock:flour", 50)
    changes = [+3, -2] * 10
    await asyncio.gather(*(instances[i % 3].coordinate_inventory_update("flour", c) for i, c in enumerate(changes)))
    stock = int(await repo.get_async("mario_pizzeria:stock:flour") or 0)
    ctx.check(stock == 50 + sum(changes), "concurrent read-modify-write updates lose nothing")
    try:
        await instances[0].coordinate_inventory_update("flour", -1000)
        refused = False
    except InsufficientInventoryError:
        refused = True
    ctx.check(refused, "a change below zero is refused under the lock")
    ctx.table(
        ["coordinate_inventory_update('flour', ...)", "stock"],
        [[f"{len(changes)} concurrent changes, net {sum(changes):+d}", stock], ["-1000", "refused"]],
    )

    kitchen = KitchenQueueService(ctx.services)
    # A second kitchen of its own, so the queue section's leftovers stay out of it.
    kitchen.queue_key, kitchen.processing_key = "mario_pizzeria:rush_queue", "mario_pizzeria:rush_processing"
    for n in range(6):
        await kitchen.add_order_to_queue(f"o-30{n}", priority=n)
    taken: list[tuple[str, str]] = []

    async def station(name: str) -> None:
        while (order := await kitchen.get_next_order(name)) is not None:
            taken.append((name, order["order_id"]))
            await kitchen.complete_order_processing(order["order_id"])

    await asyncio.gather(*(station(f"oven-{i}") for i in range(1, 4)))
    ids = [order_id for _, order_id in taken]
    ctx.check(sorted(ids) == [f"o-30{n}" for n in range(6)], "three stations take each queued order once")
    per_station = Counter(name for name, _ in taken)
    ctx.table(["station", "orders taken"], [[name, per_station[name]] for name in sorted(per_station)])

    lock = DistributedLock(repo, "mario_pizzeria:menu_lock", timeout=5)
    async with lock:
        first = lock.fencing_token
    async with lock:
        second = lock.fencing_token
    assert first is not None
    assert second is not None
    written = await fenced_set_async(repo, "mario_pizzeria:menu:special", "truffle", second)
    stale = await fenced_set_async(repo, "mario_pizzeria:menu:special", "stale", first)
    ctx.check(second > first and written and not stale, "a write with an older fencing token is refused")
    ctx.table(
        ["fenced_set_async('menu:special', ...)", "fencing token", "written"],
        [["by the newer holder", second, written], ["by the older holder, late", first, stale]],
    )
    ctx.note("One holder at a time across instances; leases renew themselves; see docs/locks.md.")


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


SECTIONS: tuple[Section, ...] = (
    Section("Menu cache", "MenuCacheService", menu_cache_section),
    Section("Customer sessions", "CustomerSessionService", sessions_section),
    Section("Kitchen queue", "KitchenQueueService", kitchen_queue_section),
    Section("Distributed locking", "OrderProcessingService", locks_section),
    Section("Real-time analytics", "PizzaAnalyticsService", analytics_section),
    Section("Customer segmentation", "CustomerSegmentationService", segmentation_section),
    Section("Custom serialization", "CustomSerializationService", serialization_section),
)
"""The demo's parts, in order. Later work appends its own (locks, resilience, metrics)."""


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------


def demo_config(url: str, prefix: str, timeout: float, *, decode_responses: bool = True) -> RedisConfig:
    """The config of a demo repository: ``url``, the run's key prefix, the given timeouts."""
    pool = ConnectionPoolConfig(socket_timeout=timeout, socket_connect_timeout=timeout, pool_timeout=timeout)
    return RedisConfig(url=url, key_prefix=prefix, connection_pool=pool, decode_responses=decode_responses)


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
        # Name the embedded server so the bytes repository shares its data.
        url = f"memory://demo-{token}"
        config = demo_config(url, prefix, timeout)
    shown_url = config.redacted_url
    result = DemoResult(url=shown_url, prefix=prefix)
    repo = RedisRepository(config)
    bytes_repo = RedisRepository(demo_config(url, prefix, timeout, decode_responses=False))
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
                result.sections.append(await _run_section(out, section, number, len(sections), repo, bytes_repo))
        except (DemoCheckFailed, CacheException) as exc:
            kind = "check failed" if isinstance(exc, DemoCheckFailed) else type(exc).__name__
            result.failure = f"{current}: {kind}: {exc}"
        finally:
            # Also on Ctrl-C (a cancelled task may still await here): never leave keys behind.
            await _clean_up(repo, result)
        _summary(out, result)
        return result
    finally:
        await bytes_repo.disconnect()
        await repo.disconnect()


async def _run_section(
    out: TextIO, section: Section, number: int, total: int, repo: RedisRepository, bytes_repo: RedisRepository
) -> SectionOutcome:
    ctx = DemoContext(repo, bytes_repo, out, section.title)
    title = f"[{number}/{total}] {section.title} - {section.service}"
    out.write(f"\n{title}\n{'-' * len(title)}\n")
    start = time.perf_counter()
    await section.run(ctx)
    ctx.outcome.elapsed = time.perf_counter() - start
    out.write(f"  ok: {ctx.outcome.checks} checks passed in {_ms(ctx.outcome.elapsed)}\n")
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
