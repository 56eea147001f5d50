"""RedisEntityRepository held to the framework's repository contract, on memory:// and a real server.

The contract is the one the framework's ``Repository`` base class and its
Mongo repository give a service: ``add_async``/``get_async``/
``update_async``/``remove_async``/``contains_async``; domain events
published through the mediator once per successful write and never on a
failed one; optimistic concurrency on ``state_version`` raising the
framework's ``OptimisticConcurrencyException``; the framework's
``EntityNotFoundException`` for a missing id. Every test runs on both
backends (the ``backend`` fixture).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pydantic
import pytest
from neuroglia.data.exceptions import DataAccessException, EntityNotFoundException, OptimisticConcurrencyException

from neuroglia.data.redis import (
    CacheException,
    InvalidArgumentError,
    MsgPackSerializer,
    RedisRepository,
    SerializationError,
    read_envelope,
)
from neuroglia.data.redis.integration import (
    EntityAlreadyExistsError,
    EntityConcurrencyError,
    EntityNotFoundError,
    RedisEntityRepository,
)
from tests.support.domain import (
    Coupon,
    Customer,
    Money,
    Order,
    OrderPlaced,
    OrderStatus,
    PizzaAdded,
    Size,
    StatusChanged,
    mediator_with_log,
    new_order,
    state_of,
)

if TYPE_CHECKING:
    from neuroglia.data.infrastructure.abstractions import Repository

Orders = RedisEntityRepository[Order, str]


class Menu(pydantic.BaseModel):
    """A pydantic model as an entity."""

    id: str
    pizzas: list[str]
    price: Decimal


@dataclass
class Station:
    """A value object that holds others of its kind."""

    name: str
    backups: list[Station] = field(default_factory=list)
    lead: str | None = None


@dataclass
class Kitchen:
    id: str
    main: Station
    ovens: dict[OrderStatus, int]
    spare: list[Station] | None = None


def orders_on(redis: RedisRepository, **options: Any) -> RedisEntityRepository[Order, str]:
    return RedisEntityRepository[Order, str](redis, Order, str, **options)


# -- storage: what goes in comes back --------------------------------------------------


def stored(kind: str, name: str) -> str:
    """Where the entity key ``order:o-1`` lives on backend ``kind``: on a cluster the
    entity key prefix is the hash tag (``{order}:o-1``), after the repository's own prefix."""
    if kind != "cluster":
        return name
    head, _, rest = name.partition("pizzeria:") if name.startswith("pizzeria:") else ("", "", name)
    return (
        head
        + ("pizzeria:" if head or name.startswith("pizzeria:") else "")
        + re.sub(r"^([^:#{}]+)(?=:)", r"{\1}", rest, count=1)
    )


async def test_an_aggregate_state_round_trips_with_every_kind_of_attribute(backend: RedisRepository) -> None:
    orders = orders_on(backend)
    order = new_order()
    expected = state_of(order)

    await orders.add_async(order)
    loaded = await orders.get_async("o-1")

    assert isinstance(loaded, Order)
    assert state_of(loaded) == expected
    state = loaded.state
    assert isinstance(state.lines[0].price, Money)
    assert state.lines[0].price.amount == Decimal("8.50")
    assert state.lines[1].size is Size.SMALL
    assert state.lines[1].toppings == ["salami", "chili"]
    assert state.status is OrderStatus.PLACED
    assert isinstance(state.reference, uuid.UUID)
    assert state.promised_at is not None
    assert state.promised_at.utcoffset() == timedelta(hours=1)
    assert state.kitchen_clock.tzinfo is None  # naive stays naive
    assert state.discounts["weekday"] == Money(Decimal("0.99"), "USD")
    assert state.tags == {"phone", "regular"}
    assert state.coordinates == (45.4642, 9.19)
    assert loaded.domain_events == []  # events are published, never stored
    assert loaded.id() == "o-1"


async def test_the_document_goes_through_the_repositorys_strategy_in_the_envelope(
    backend: RedisRepository, backend_kind: str
) -> None:
    await orders_on(backend).add_async(new_order())
    raw = await backend.hget_async(stored(backend_kind, "order:o-1"), "data")
    assert isinstance(raw, bytes)
    envelope = read_envelope(raw)
    assert envelope is not None
    assert envelope.strategy == "json"
    assert await backend.hget_async(stored(backend_kind, "order:o-1"), "version") == "0"


async def test_another_strategy_per_entity_type(backend: RedisRepository, backend_kind: str) -> None:
    orders = orders_on(backend, serializer=MsgPackSerializer())
    order = new_order()
    await orders.add_async(order)
    envelope = read_envelope(await backend.hget_async(stored(backend_kind, "order:o-1"), "data"))  # type: ignore[arg-type]
    assert envelope is not None
    assert envelope.strategy == "msgpack"
    loaded = await orders.get_async("o-1")
    assert loaded is not None
    assert state_of(loaded) == state_of(order)
    # The default strategy refuses what msgpack wrote instead of misreading it.
    with pytest.raises(SerializationError, match="msgpack"):
        await orders_on(backend).get_async("o-1")


async def test_plain_entities_and_dataclasses_round_trip(backend: RedisRepository) -> None:
    customers = RedisEntityRepository[Customer, str](backend, Customer, str)
    luigi = Customer("c-1", "Luigi", loyalty_points=120)
    luigi.favourite = OrderStatus.DELIVERED
    await customers.add_async(luigi)
    loaded = await customers.get_async("c-1")
    assert isinstance(loaded, Customer)
    assert vars(loaded) == vars(luigi)
    assert customers.model.version_field is None  # no state_version: last writer wins

    coupons = RedisEntityRepository[Coupon, str](backend, Coupon, str, version_field="revision")  # type: ignore[type-var]
    coupon = Coupon("k-1", "SPRING", Money(Decimal("5")))
    await coupons.add_async(coupon)
    assert await coupons.get_async("k-1") == coupon


async def test_pydantic_models_and_recursive_value_objects_round_trip(backend: RedisRepository) -> None:
    menus = RedisEntityRepository[Menu, str](backend, Menu, str)  # type: ignore[type-var]
    menu = Menu(id="lunch", pizzas=["margherita", "diavola"], price=Decimal("9.90"))
    await menus.add_async(menu)
    assert await menus.get_async("lunch") == menu

    kitchens = RedisEntityRepository[Kitchen, str](backend, Kitchen, str)  # type: ignore[type-var]
    kitchen = Kitchen(
        "milano",
        Station("oven-1", [Station("oven-2", [Station("oven-3")], lead="Mario")]),
        {OrderStatus.BAKING: 2, OrderStatus.PLACED: 5},
    )
    await kitchens.add_async(kitchen)
    loaded = await kitchens.get_async("milano")
    assert loaded == kitchen
    assert loaded is not None
    assert isinstance(loaded.main.backups[0].backups[0], Station)


async def test_a_missing_id_reads_as_none(backend: RedisRepository) -> None:
    orders = orders_on(backend)
    assert await orders.get_async("nope") is None
    assert await orders.contains_async("nope") is False


async def test_ids_with_separators_are_escaped_and_distinct(backend: RedisRepository, backend_kind: str) -> None:
    orders = orders_on(backend)
    for order_id in ("a:b", "a%3Ab", "a", ":index", "::index"):
        await orders.add_async(Order(order_id, "x"))
    for order_id in ("a:b", "a%3Ab", "a", ":index", "::index"):
        loaded = await orders.get_async(order_id)
        assert loaded is not None
        assert loaded.id() == order_id
    assert orders.key("a:b") == stored(backend_kind, "order:a%3Ab")
    assert await orders.count_async() == 5


async def test_a_repository_that_keeps_bytes_works_the_same(repo_factory: Any, backend_url: str) -> None:
    raw = await repo_factory(decode_responses=False)
    orders = orders_on(raw)
    order = new_order()
    await orders.add_async(order)
    await orders.add_async(new_order("o-2"))
    loaded = await orders.get_async("o-1")
    assert loaded is not None
    assert state_of(loaded) == state_of(order)
    assert sorted(o.id() for o in await orders.get_all_async()) == ["o-1", "o-2"]
    stale = await orders.get_async("o-1")
    await orders.update_async(loaded)
    with pytest.raises(EntityConcurrencyError) as caught:
        await orders.update_async(stale)  # type: ignore[arg-type]
    assert caught.value.actual_version == 1


async def test_the_repositorys_own_key_prefix_applies(repo_factory: Any, backend_url: str, backend_kind: str) -> None:
    prefixed = await repo_factory(key_prefix="pizzeria:")
    plain = await repo_factory()
    await orders_on(prefixed, key_prefix="orders").add_async(new_order())
    assert await plain.exists_async(stored(backend_kind, "pizzeria:orders:o-1"))
    assert await plain.exists_async(stored(backend_kind, "pizzeria:orders::index"))


# -- the contract -------------------------------------------------------------------------


async def test_add_get_update_remove_contains(backend: RedisRepository) -> None:
    orders: Repository[Order, str] = orders_on(backend)
    order = new_order()
    assert await orders.add_async(order) is order
    assert await orders.contains_async("o-1")

    loaded = await orders.get_async("o-1")
    assert loaded is not None
    loaded.set_status(OrderStatus.BAKING)
    before = loaded.state.last_modified
    assert await orders.update_async(loaded) is loaded
    assert loaded.state.state_version == 1
    assert loaded.state.last_modified > before

    again = await orders.get_async("o-1")
    assert again is not None
    assert again.state.status is OrderStatus.BAKING
    assert again.state.state_version == 1

    await orders.remove_async("o-1")
    assert not await orders.contains_async("o-1")
    assert await orders.get_async("o-1") is None


async def test_add_of_a_stored_id_raises_and_writes_nothing(backend: RedisRepository) -> None:
    orders = orders_on(backend)
    await orders.add_async(new_order(customer="Luigi"))
    with pytest.raises(EntityAlreadyExistsError) as caught:
        await orders.add_async(new_order(customer="Wario"))
    assert isinstance(caught.value, DataAccessException)
    assert isinstance(caught.value, CacheException)
    assert "'o-1' is already stored" in str(caught.value)
    assert "update_async" in str(caught.value)
    loaded = await orders.get_async("o-1")
    assert loaded is not None
    assert loaded.state.customer == "Luigi"


async def test_remove_and_update_of_a_missing_id_raise_the_frameworks_exception(backend: RedisRepository) -> None:
    orders = orders_on(backend)
    with pytest.raises(EntityNotFoundException) as removing:
        await orders.remove_async("ghost")
    assert isinstance(removing.value, EntityNotFoundError)
    assert isinstance(removing.value, CacheException)
    assert "Order 'ghost' is not stored" in str(removing.value)
    assert "nothing to remove" in str(removing.value)

    ghost = new_order("ghost")
    with pytest.raises(EntityNotFoundError, match="nothing to update"):
        await orders.update_async(ghost)
    assert ghost.state.state_version == 0  # unchanged: nothing was written
    assert not await orders.contains_async("ghost")


async def test_an_entity_of_another_type_is_refused(backend: RedisRepository) -> None:
    orders = orders_on(backend)
    with pytest.raises(InvalidArgumentError, match="stores Order, got Customer"):
        await orders.add_async(Customer("c-1", "Luigi"))  # type: ignore[arg-type]


async def test_a_damaged_document_is_a_serialization_error(backend: RedisRepository, backend_kind: str) -> None:
    orders = orders_on(backend)
    await orders.add_async(new_order())
    await backend.hset_async(stored(backend_kind, "order:o-1"), "data", '{"id": "o-1", "lines": "not a list of lines"}')
    with pytest.raises(SerializationError, match="lines"):
        await orders.get_async("o-1")


# -- domain events ------------------------------------------------------------------------


async def test_events_are_published_once_per_successful_write(backend: RedisRepository) -> None:
    mediator, recorded = mediator_with_log()
    orders = orders_on(backend, mediator=mediator)
    order = new_order()

    await orders.add_async(order)
    assert [type(e) for e in recorded.events] == [OrderPlaced, PizzaAdded, PizzaAdded]
    assert order.domain_events == []  # cleared once published

    order.set_status(OrderStatus.BAKING)
    await orders.update_async(order)
    assert [type(e) for e in recorded.events][3:] == [StatusChanged]

    await orders.update_async(order)  # nothing pending: nothing published
    await orders.remove_async("o-1")  # the framework publishes nothing on remove
    assert len(recorded.events) == 4


async def test_no_event_is_published_when_the_write_fails(backend: RedisRepository) -> None:
    mediator, recorded = mediator_with_log()
    orders = orders_on(backend, mediator=mediator)
    await orders.add_async(new_order())
    published = len(recorded.events)

    duplicate = new_order()
    with pytest.raises(EntityAlreadyExistsError):
        await orders.add_async(duplicate)

    first = await orders.get_async("o-1")
    second = await orders.get_async("o-1")
    assert first is not None
    assert second is not None
    first.set_status(OrderStatus.BAKING)
    await orders.update_async(first)
    second.set_status(OrderStatus.DELIVERED)
    with pytest.raises(EntityConcurrencyError):
        await orders.update_async(second)

    missing = new_order("ghost")
    with pytest.raises(EntityNotFoundError):
        await orders.update_async(missing)

    assert [type(e) for e in recorded.events[published:]] == [StatusChanged]  # first's update only
    # The failed writes keep their events: a retry after a reload decides what to do with them.
    assert [type(e) for e in second.domain_events] == [StatusChanged]
    assert len(duplicate.domain_events) == 3


# -- optimistic concurrency ----------------------------------------------------------------


async def test_a_stale_update_raises_the_frameworks_exception_and_writes_nothing(backend: RedisRepository) -> None:
    orders = orders_on(backend)
    await orders.add_async(new_order())
    first = await orders.get_async("o-1")
    second = await orders.get_async("o-1")
    assert first is not None
    assert second is not None
    first.set_status(OrderStatus.BAKING)
    await orders.update_async(first)

    second.set_status(OrderStatus.DELIVERED)
    stamped = second.state.last_modified
    with pytest.raises(OptimisticConcurrencyException) as caught:
        await orders.update_async(second)
    error = caught.value
    assert isinstance(error, EntityConcurrencyError)
    assert isinstance(error, CacheException)
    assert (error.entity_id, error.expected_version, error.actual_version) == ("o-1", 0, 1)
    assert "loaded at version 0, but version 1 is stored" in str(error)
    # The loser keeps the version (and timestamp) it was loaded at, so that it can reload and retry.
    assert second.state.state_version == 0
    assert second.state.last_modified == stamped
    stored = await orders.get_async("o-1")
    assert stored is not None
    assert stored.state.status is OrderStatus.BAKING
    assert stored.state.state_version == 1


async def test_twenty_concurrent_updaters_one_winner_per_version(backend: RedisRepository) -> None:
    """20 writers load, change and save the same order until each has won once.

    Every round all the writers still trying load the current version and
    update at once: exactly one wins (the version moves on by one), the
    others get the framework's exception and retry on a fresh load. Each
    winner's event is published exactly once, and no loser's ever is.
    """
    mediator, recorded = mediator_with_log()
    await orders_on(backend).add_async(Order("o-1", "Luigi"))
    writers = 20
    won: dict[int, str] = {}  # version -> writer
    conflicts: list[tuple[int, int]] = []  # (expected, actual) of every lost race

    async def writer(name: str, loaded: asyncio.Barrier) -> bool:
        orders = orders_on(backend, mediator=mediator)
        order = await orders.get_async("o-1")
        assert order is not None
        order.add_pizza(name, Size.SMALL, "1.00")
        await loaded.wait()  # every writer of the round holds the same version before anyone writes
        try:
            await orders.update_async(order)
        except EntityConcurrencyError as exc:
            conflicts.append((exc.expected_version, exc.actual_version))
            return False
        assert order.state.state_version not in won
        won[order.state.state_version] = name
        return True

    remaining = [f"writer-{i:02}" for i in range(writers)]
    rounds = 0
    while remaining:
        rounds += 1
        assert rounds <= writers
        loaded = asyncio.Barrier(len(remaining))
        outcomes = await asyncio.wait_for(asyncio.gather(*(writer(n, loaded) for n in remaining)), timeout=30)
        assert sum(outcomes) == 1, f"round {rounds}: {sum(outcomes)} winners"
        remaining = [name for name, ok in zip(remaining, outcomes, strict=True) if not ok]

    assert sorted(won) == list(range(1, writers + 1))
    assert sorted(won.values()) == [f"writer-{i:02}" for i in range(writers)]
    assert len(conflicts) == sum(range(writers))  # 19 + 18 + ... + 0
    assert all(actual == expected + 1 for expected, actual in conflicts)
    final = await orders_on(backend).get_async("o-1")
    assert final is not None
    assert final.state.state_version == writers
    # One PizzaAdded per win, in the order of the wins; nothing from the losers.
    pizzas = [e.pizza for e in recorded.events if isinstance(e, PizzaAdded)]
    assert pizzas == [won[v] for v in sorted(won)]
    assert [line.pizza for line in final.state.lines] == pizzas


async def test_version_check_can_be_turned_off(backend: RedisRepository, backend_kind: str) -> None:
    orders = orders_on(backend, version_field=None)
    await orders.add_async(new_order())
    first = await orders.get_async("o-1")
    second = await orders.get_async("o-1")
    assert first is not None
    assert second is not None
    first.set_status(OrderStatus.BAKING)
    second.set_status(OrderStatus.DELIVERED)
    await orders.update_async(first)
    await orders.update_async(second)  # last writer wins
    last = await orders.get_async("o-1")
    assert last is not None
    assert last.state.status is OrderStatus.DELIVERED
    assert await backend.hget_async(stored(backend_kind, "order:o-1"), "version") is None


async def test_a_configured_version_field_on_a_dataclass(backend: RedisRepository) -> None:
    coupons = RedisEntityRepository[Coupon, str](backend, Coupon, str, version_field="revision")  # type: ignore[type-var]
    await coupons.add_async(Coupon("k-1", "SPRING", Money(Decimal("5"))))
    first = await coupons.get_async("k-1")
    second = await coupons.get_async("k-1")
    assert first is not None
    assert second is not None
    first.code = "SUMMER"
    await coupons.update_async(first)
    assert first.revision == 1
    with pytest.raises(EntityConcurrencyError):
        await coupons.update_async(second)
    assert second.revision == 0


# -- expiration and listing -------------------------------------------------------------------


async def test_expiration_per_entity_type(backend: RedisRepository, backend_kind: str) -> None:
    orders = orders_on(backend, expiration=timedelta(milliseconds=300))
    forever = orders_on(backend, key_prefix="kept")
    await orders.add_async(new_order("o-1"))
    await forever.add_async(new_order("o-1"))
    assert 0 < await backend.pttl_async(stored(backend_kind, "order:o-1")) <= 300
    assert await backend.ttl_async(stored(backend_kind, "kept:o-1")) == -1
    assert await orders.count_async() == 1

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while await orders.contains_async("o-1"):
        assert loop.time() < deadline, "the entity never expired"
        await asyncio.sleep(0.05)
    assert await orders.get_async("o-1") is None
    assert await orders.count_async() == 0
    assert await orders.get_all_async() == []
    # The next write drops the expired entry from the index.
    await orders.add_async(new_order("o-2"))
    assert await backend.zcard_async(stored(backend_kind, "order::index")) == 1
    assert await forever.contains_async("o-1")


async def test_every_write_gives_the_configured_expiration(backend: RedisRepository, backend_kind: str) -> None:
    short = orders_on(backend, expiration=60)
    await short.add_async(new_order())
    order = await short.get_async("o-1")
    assert order is not None
    # Registered again without expiration: the next write makes it permanent.
    await orders_on(backend).update_async(order)
    assert await backend.ttl_async(stored(backend_kind, "order:o-1")) == -1


async def test_listing_uses_the_index_and_returns_each_entity_once(backend: RedisRepository) -> None:
    orders = orders_on(backend)
    ids = [f"o-{i:03}" for i in range(250)]
    for order_id in ids:
        order = Order(order_id, "Luigi" if int(order_id[2:]) % 3 else "Mario")
        await orders.add_async(order)
    assert await orders.count_async() == 250

    listed = await orders.get_all_async()
    assert sorted(o.id() for o in listed) == ids
    paged = [o.id() async for o in orders.iter_async(batch_size=7)]
    assert sorted(paged) == ids
    assert len(paged) == len(set(paged))

    marios = await orders.find_async(lambda o: o.state.customer == "Mario")
    assert sorted(o.id() for o in marios) == [i for i in ids if int(i[2:]) % 3 == 0]
    first_mario = await orders.find_one_async(lambda o: o.state.customer == "Mario")
    assert first_mario is not None
    assert first_mario.state.customer == "Mario"
    assert await orders.find_one_async(lambda o: o.state.customer == "Wario") is None
    fetched = await orders.get_many_async(["o-005", "missing", "o-001"])
    assert [o.id() for o in fetched] == ["o-005", "o-001"]

    with pytest.raises(InvalidArgumentError, match="batch_size"):
        [o async for o in orders.iter_async(batch_size=0)]


async def test_an_entity_deleted_from_outside_leaves_the_listing_and_the_index(
    backend: RedisRepository, backend_kind: str
) -> None:
    orders = orders_on(backend)
    for order_id in ("o-1", "o-2", "o-3"):
        await orders.add_async(Order(order_id, "Luigi"))
    await backend.delete_async(stored(backend_kind, "order:o-2"))
    assert sorted(o.id() for o in await orders.get_all_async()) == ["o-1", "o-3"]
    assert sorted(await backend.zrange_async(stored(backend_kind, "order::index"), 0, -1)) == ["o-1", "o-3"]


async def test_removing_keeps_the_index_in_step(backend: RedisRepository, backend_kind: str) -> None:
    orders = orders_on(backend)
    await orders.add_async(Order("o-1", "Luigi"))
    await orders.add_async(Order("o-2", "Luigi"))
    await orders.remove_async("o-1")
    assert await backend.zrange_async(stored(backend_kind, "order::index"), 0, -1) == ["o-2"]
    assert await orders.count_async() == 1
