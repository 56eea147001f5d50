"""The page's locked services with several instances racing: orders and stock
(``OrderProcessingService``), kitchen stations (``KitchenQueueService``), and
fencing tokens refusing a stale holder's late write."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ... import DistributedLock, LockLostError, fenced_set_async
from ..context import DemoContext, gathered, provider
from ..pizzeria import InsufficientInventoryError, KitchenQueueService, OrderProcessingService
from ..report import ms

__all__ = ["fencing_section", "kitchen_stations_section", "locks_section"]

JsonDict = dict[str, Any]

# What process_order_safely printed, and the outcome the report names it by: the page's own
# lines, then those of the failure handlers the page leaves to the reader (pizzeria.py).
_OUTCOMES = (
    ("already processed", "already processed"),
    ("processed successfully", "processed"),
    ("payment failed", "payment failed"),
    ("inventory shortage", "inventory shortage"),
)


def _outcome(printed: list[str]) -> str:
    for words, outcome in _OUTCOMES:
        if any(words in line for line in printed):
            return outcome
    return "printed nothing"


async def _update_without_lock(service: OrderProcessingService, ingredient_id: str, quantity_change: int) -> None:
    """``coordinate_inventory_update``'s read-modify-write without its DistributedLock."""
    current_stock = await service.get_ingredient_stock(ingredient_id)
    await service.update_ingredient_stock(ingredient_id, current_stock + quantity_change)


async def locks_section(ctx: DemoContext) -> None:
    """The page's OrderProcessingService: several instances racing on the same orders and stock."""
    repos = ctx.run.instances(3)
    names = [f"instance-{n}" for n in range(1, len(repos) + 1)]
    services = [OrderProcessingService(provider(r)) for r in repos]
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

    # Every instance receives every order twice (a redelivered message, a retried request), all at once;
    # each call's outcome is what it printed.
    calls = [(order_id, n) for order_id in orders for n in range(len(services)) for _ in range(2)]
    done = await ctx.call(gathered(*(ctx.call(services[n].process_order_safely(o)) for o, n in calls)))
    outcomes = [_outcome(call.printed) for call in done.result]
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
    ctx.note(f"{len(calls)} concurrent calls of process_order_safely() took {ms(done.seconds)} in all.")
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
    done = await ctx.call(
        gathered(*(services[i % len(services)].coordinate_inventory_update("flour", c) for i, c in enumerate(changes)))
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
    last = done.printed[-1] if done.printed else "nothing"
    ctx.check(last == f"Inventory updated: flour = {expected}", "the last locked update printed the final stock")
    ctx.note(f"24 locked updates from {len(services)} instances took {ms(done.seconds)}; the last printed {last!r}.")


async def kitchen_stations_section(ctx: DemoContext) -> None:
    """The page's get_next_order and its lock: several stations pulling from one queue at once."""
    repos = ctx.run.instances(3)
    kitchens = [KitchenQueueService(provider(r)) for r in repos]
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
    done = await ctx.call(gathered(*(station(*s) for s in stations)))
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
    ctx.note(f"{len(queued)} orders served in {ms(done.seconds)}; the three most urgent: {', '.join(first)}.")


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
