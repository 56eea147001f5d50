"""The page's CustomSerializationService (msgpack through the plain API), then typed objects:
dataclasses through ``set_object_async`` and, field by field, through ``RedisHashRepository``."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ... import RedisHashRepository, read_envelope
from ..context import DemoContext
from ..pizzeria import CustomSerializationService
from ..report import short

__all__ = ["Customer", "MenuItem", "serialization_section"]


@dataclass
class MenuItem:
    """A typed menu item for the object helpers."""

    name: str
    price: float
    toppings: list[str]
    vegetarian: bool = False


@dataclass
class Customer:
    """A typed customer for :class:`~neuroglia.data.redis.RedisHashRepository`."""

    id: str
    name: str
    loyalty_points: int
    favourite_pizzas: list[str] = field(default_factory=list)


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
    if importlib.util.find_spec("msgpack") is None:
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
    ctx.table(["hash field", "stored value"], [[k, short(v)] for k, v in raw_fields.items()])
    ctx.note("The page's pickle examples are not run: unpickling what a shared cache returns")
    ctx.note("executes arbitrary code. See docs/spec-compatibility.md.")
