"""The page's data-structure services: the menu cache (strings), sessions (hashes), the kitchen
queue (a sorted set), analytics (sorted sets, hashes) and segmentation (sets)."""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any

from ..context import DemoContext, provider
from ..pizzeria import (
    MENU,
    CustomerSegmentationService,
    CustomerSessionService,
    KitchenQueueService,
    MenuCacheService,
    PizzaAnalyticsService,
)
from ..report import ms

__all__ = [
    "analytics_section",
    "kitchen_queue_section",
    "menu_cache_section",
    "segmentation_section",
    "sessions_section",
]

JsonDict = dict[str, Any]


async def _count(ctx: DemoContext, pattern: str) -> int:
    return len([k async for k in ctx.repo.scan_async(pattern)])


async def menu_cache_section(ctx: DemoContext) -> None:
    """Cache-aside reads, expiration, single and pattern invalidation."""
    menu = MenuCacheService(ctx.services)
    repo = ctx.repo
    items = f"{menu.cache_prefix}:item:*"
    rows: list[list[Any]] = []

    async def read(item_id: str, label: str = "") -> tuple[JsonDict | None, bool]:
        """The page's read; whether the database was asked (the repository counted a miss)."""
        misses = ctx.misses()
        done = await ctx.call(menu.get_cached_menu_item(item_id))
        item: JsonDict | None = done.result
        loaded = ctx.misses() > misses
        shown = f"{item['name']} {item['price']:.2f}" if item else "None"
        source = "database (miss)" if loaded else "cache (hit)"
        rows.append([f"get_cached_menu_item({item_id!r}){label}", source, shown, ms(done.seconds)])
        return item, loaded

    for item_id in ("margherita", "pepperoni", "quattro_stagioni"):
        done = await ctx.call(menu.cache_menu_item(item_id, MENU[item_id]))
        printed = done.printed[0] if done.printed else "-"
        rows.append([f"cache_menu_item({item_id!r})", "redis", printed, ms(done.seconds)])
    await repo.set_async("mario_pizzeria:menu:version", "2024-06")

    margherita, loaded = await read("margherita")
    ctx.check(not loaded and margherita == MENU["margherita"], "a cached item is a hit")
    ttl = await repo.ttl_async("mario_pizzeria:menu:item:margherita")
    ctx.check(86_390 <= ttl <= 86_400, f"ttl of a 24h item is about 86400 s (got {ttl})")

    _, loaded = await read("diavola")
    ctx.check(loaded, "an item not cached yet is loaded from the database")
    _, loaded = await read("diavola", " again")
    ctx.check(not loaded, "the loaded item was cached")

    invalidated: list[str] = []
    before = await _count(ctx, items)
    done = await ctx.call(menu.invalidate_menu_cache("margherita"))
    removed = before - await _count(ctx, items)
    invalidated += done.printed
    rows.append(["invalidate_menu_cache('margherita')", "delete_async", f"removed {removed} key", ms(done.seconds)])
    ctx.check(removed == 1, "invalidating one item removes its key")
    _, loaded = await read("margherita", " after")
    ctx.check(loaded, "an invalidated item is a miss")

    before = await _count(ctx, items)
    done = await ctx.call(menu.invalidate_menu_cache())
    removed = before - await _count(ctx, items)
    invalidated += done.printed
    rows.append(["invalidate_menu_cache()", "delete_pattern_async", f"removed {removed} keys", ms(done.seconds)])
    ctx.check(removed == 4, f"pattern invalidation removes the 4 cached items (removed {removed})")
    left = [k async for k in repo.scan_async(items)]
    ctx.check(left == [], "no menu item is left after invalidating all")
    version = await repo.get_async("mario_pizzeria:menu:version")
    ctx.check(version == "2024-06", "a key outside the pattern is untouched")
    await read("unknown_pizza")
    ctx.check(await repo.get_async("mario_pizzeria:menu:item:unknown_pizza") is None, "a missing item is not cached")

    ctx.table(["call", "served by", "result", "time"], rows)
    ctx.note("delete_pattern_async uses SCAN + UNLINK in batches (never KEYS);")
    ctx.note("'mario_pizzeria:menu:version' (outside the pattern) is still there: " + repr(version))
    ctx.note("invalidate_menu_cache printed: " + " / ".join(invalidated))


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
        done = await ctx.call(kitchen.get_next_order(station))
        order: JsonDict | None = done.result
        ctx.check(order is not None, f"{station} gets an order")
        assert order is not None
        taken.append([station, order["order_id"], order["priority"], ms(done.seconds)])
    ctx.check([t[1] for t in taken] == expected[:2], "stations take the highest priorities first")
    processing = await repo.hgetall_async(kitchen.processing_key)
    ctx.check(sorted(processing) == sorted(expected[:2]), "taken orders are in the processing hash")
    completed = await ctx.call(kitchen.complete_order_processing(expected[0]))
    left_processing = await repo.hlen_async(kitchen.processing_key)
    left_queued = await repo.zcard_async(kitchen.queue_key)
    ctx.check(left_processing == 1 and left_queued == 2, "completing an order removes it from processing")
    ctx.table(["station", "order", "priority", "get_next_order"], taken)
    ctx.note(
        f"complete_order_processing({expected[0]!r}) -> hdel_async; processing: {left_processing}, "
        f"queued: {left_queued}"
    )
    ctx.note("it printed: " + " / ".join(completed.printed))


async def analytics_section(ctx: DemoContext) -> None:
    """Sorted-set leaderboard and an hourly hash, on a bytes repository."""
    analytics = PizzaAnalyticsService(provider(ctx.bytes_repo))
    rng = random.Random(2024)
    pizzas = ["Margherita", "Pepperoni", "Diavola", "Quattro Stagioni", "Capricciosa", "Marinara"]
    weights = [30, 22, 15, 12, 8, 5]
    placed = rng.choices(pizzas, weights, k=60)
    hours = rng.choices(range(11, 23), [2, 6, 5, 2, 1, 1, 3, 8, 10, 7, 4, 2], k=60)
    for pizza, hour in zip(placed, hours, strict=True):
        await analytics.track_popular_pizzas(pizza)
        await analytics.track_hourly_orders(hour)

    done = await ctx.call(analytics.get_top_pizzas(5))
    top: list[JsonDict] = done.result
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
    ctx.note(f"get_top_pizzas(5) took {ms(done.seconds)}; the page's pizza.decode() runs as written because this")
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
    campaign = await ctx.call(segments.create_targeted_campaign(["vegetarian", "loyalty"], "spring_veggie"))
    target = campaign.result
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
    ctx.note("create_targeted_campaign printed: " + " / ".join(campaign.printed))
