"""Every strategy stores a value faithfully or refuses it; typed objects read back equal.

"Faithfully" is exact: the value read back has the same types (``True`` is
not ``1``), the same keys and the same numbers (``NaN`` compared as NaN).
JSON is checked twice, with orjson and with the standard library (orjson
hidden), since the rules must not depend on which extras are installed.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import sys
import uuid
import zlib
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson
import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuroglia.data.redis import (
    ConfigurationError,
    EnvelopeSerializer,
    JsonSerializer,
    MsgPackSerializer,
    PickleSerializer,
    RedisHashRepository,
    SerializationError,
    SerializationStrategy,
)
from neuroglia.data.redis.serialization import from_plain, to_plain
from neuroglia.data.redis.serialization import typed as typed_module

if TYPE_CHECKING:
    from tests.support.repositories import RepositoryFactory

SECRET = "faithful-values-secret-" + "f" * 32


def stdlib_json(monkeypatch: pytest.MonkeyPatch) -> JsonSerializer:
    """A JsonSerializer built as it is where orjson is not installed."""
    monkeypatch.setitem(sys.modules, "orjson", None)
    serializer = JsonSerializer()
    assert serializer._orjson is None
    return serializer


@pytest.fixture(params=["json-orjson", "json-stdlib", "msgpack", "pickle"])
def strategy(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> SerializationStrategy:
    if request.param == "json-orjson":
        return JsonSerializer()
    if request.param == "json-stdlib":
        return stdlib_json(monkeypatch)
    if request.param == "msgpack":
        return MsgPackSerializer()
    return PickleSerializer(SECRET)


def same(a: Any, b: Any) -> bool:
    """Equal, with the same types all the way down (and NaN equal to NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, dict):
        if len(a) != len(b):
            return False
        b_items = list(b.items())
        return all(any(same(ka, kb) and same(va, vb) for kb, vb in b_items) for ka, va in a.items())
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def faithful_or_refused(strategy: SerializationStrategy, value: Any) -> str:
    codec = EnvelopeSerializer(strategy)
    try:
        stored = codec.dumps(value)
    except SerializationError:
        return "refused"
    back = codec.loads(stored)
    assert same(back, value), f"{strategy.name} stored {value!r} and read back {back!r}"
    return "kept"


# -- what the issue found, on every strategy -------------------------------------------------------

TRICKY: list[tuple[str, Any]] = [
    ("nan", float("nan")),
    ("inf", float("inf")),
    ("-inf", float("-inf")),
    ("nan in a list", [1.0, float("nan")]),
    ("inf in a dict", {"price": float("inf")}),
    ("colliding keys", {1: "a", "1": "b"}),
    ("bool key", {True: "x"}),
    ("int key", {1: "a"}),
    ("None key", {None: "n"}),
    ("float key", {1.5: "f"}),
    ("nested int key", {"menu": [{7: "seven"}]}),
    ("tuple key", {(1, "a"): "t"}),
    ("big int", 2**70),
]


@pytest.mark.parametrize(("label", "value"), TRICKY, ids=[label for label, _ in TRICKY])
def test_every_strategy_keeps_or_refuses(strategy: SerializationStrategy, label: str, value: Any) -> None:
    faithful_or_refused(strategy, value)


@pytest.mark.parametrize("flavour", ["orjson", "stdlib"])
def test_json_refuses_what_it_cannot_hold(flavour: str, monkeypatch: pytest.MonkeyPatch) -> None:
    json = JsonSerializer() if flavour == "orjson" else stdlib_json(monkeypatch)
    for value, problem in (
        (float("nan"), "read back as null"),
        ({"price": float("-inf")}, "read back as null"),
        ({1: "a", "1": "b"}, "key 1"),
        ({True: "x"}, "key True"),
        ([{"ok": 1}, {None: 1}], "key None"),
    ):
        with pytest.raises(SerializationError, match=problem):
            json.dumps(value)
    # What JSON does hold comes back as it was.
    for value in ({"a": None, "b": [1, 2.5, "x", True]}, None, [], {}, "null", -0.0, 2**63 - 1):
        assert same(json.loads(json.dumps(value)), value)


class Colour(enum.StrEnum):
    RED = "red"
    GREEN = "green"


def test_str_subclass_keys_are_stored_as_their_text(monkeypatch: pytest.MonkeyPatch) -> None:
    for json in (JsonSerializer(), stdlib_json(monkeypatch)):
        stored = json.dumps({Colour.RED: 1, "plain": Colour.GREEN})
        assert same(json.loads(stored), {"red": 1, "plain": "green"})


def test_msgpack_keeps_what_json_cannot() -> None:
    msgpack = MsgPackSerializer()
    for value in ({1: "a", "1": "b"}, {True: "x"}, float("nan"), {(1, (2, "b")): "nested tuple key"}):
        assert same(msgpack.loads(msgpack.dumps(value)), value)


JSONLIKE = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80) | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.one_of(st.text(max_size=4), st.integers(-3, 3), st.booleans(), st.none(), st.floats(allow_nan=False)),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=JSONLIKE)
def test_property_no_strategy_changes_a_value_silently(value: Any) -> None:
    """Whatever the value, each strategy either refuses it or gives back exactly the same."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        strategies: list[SerializationStrategy] = [
            JsonSerializer(),
            stdlib_json(monkeypatch),
            MsgPackSerializer(),
            PickleSerializer(SECRET),
        ]
        outcomes = [faithful_or_refused(s, value) for s in strategies]
    assert outcomes[-1] == "kept", "pickle holds every one of these values"


async def test_a_nan_is_refused_not_read_back_as_a_miss(repo_factory: RepositoryFactory, backend_url: str) -> None:
    repo = await repo_factory()
    with pytest.raises(SerializationError, match="null"):
        await repo.set_object_async("price", float("nan"))
    assert await repo.exists_async("price") is False
    with pytest.raises(SerializationError, match="key"):
        await repo.set_object_async("menu", {1: "a", "1": "b"})
    assert await repo.exists_async("menu") is False


# -- typed objects round-trip --------------------------------------------------------------------


class Size(enum.Enum):
    SMALL = "s"
    LARGE = "l"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass
class Topping:
    name: str
    price: Decimal
    colour: Colour


@dataclasses.dataclass
class Delivery:
    address: str
    window: tuple[datetime, datetime]
    courier: uuid.UUID | None = None


@dataclasses.dataclass
class Order:
    id: uuid.UUID
    size: Size
    priority: Priority
    toppings: list[Topping]
    tags: set[str]
    dimensions: tuple[int, int]
    placed_at: datetime
    baked_on: date
    prep: timedelta
    delivery: Delivery
    by_name: dict[str, Topping]
    frozen_tags: frozenset[str] = frozenset()
    notes: str | None = None
    naive: datetime = datetime(2024, 1, 2, 3, 4, 5, 600_000)


class Customer(pydantic.BaseModel):
    id: uuid.UUID
    name: str
    favourite: Topping
    orders: list[Order]
    since: datetime
    balance: Decimal
    visits: set[date]


def make_order() -> Order:
    basil = Topping("basil", Decimal("0.50"), Colour.GREEN)
    tomato = Topping("tomato", Decimal("1.25"), Colour.RED)
    start = datetime(2024, 5, 1, 18, 30, tzinfo=UTC)
    return Order(
        id=uuid.UUID("12345678-1234-5678-1234-567812345678"),
        size=Size.LARGE,
        priority=Priority.HIGH,
        toppings=[basil, tomato],
        tags={"vegetarian", "spicy"},
        dimensions=(30, 40),
        placed_at=datetime(2024, 5, 1, 18, 0, 0, 123_456, tzinfo=timezone(timedelta(hours=2))),
        baked_on=date(2024, 5, 1),
        prep=timedelta(minutes=12, seconds=30),
        delivery=Delivery("Via Roma 1", (start, start + timedelta(minutes=30)), uuid.uuid4()),
        by_name={"basil": basil},
        frozen_tags=frozenset({"a", "b"}),
    )


def make_customer() -> Customer:
    return Customer(
        id=uuid.uuid4(),
        name="Luigi",
        favourite=Topping("basil", Decimal("0.50"), Colour.GREEN),
        orders=[make_order()],
        since=datetime(2020, 1, 1, tzinfo=UTC),
        balance=Decimal("12.30"),
        visits={date(2024, 1, 1), date(2024, 2, 1)},
    )


TYPED_STRATEGIES = ["json", "msgpack", "pickle"]


def serializer_named(name: str) -> Any:
    return PickleSerializer(SECRET) if name == "pickle" else name


@pytest.mark.parametrize("serializer", TYPED_STRATEGIES)
async def test_typed_objects_round_trip(repo_factory: RepositoryFactory, backend_url: str, serializer: str) -> None:
    repo = await repo_factory(serializer=serializer_named(serializer))
    order, customer = make_order(), make_customer()
    await repo.set_object_async("order", order)
    await repo.set_object_async("customer", customer)
    assert await repo.get_object_async("order", Order) == order
    assert await repo.get_object_async("customer", Customer) == customer
    assert await repo.get_object_async("missing", Order) is None
    back = await repo.get_object_async("order", Order)
    assert back is not None
    assert isinstance(back.toppings[0], Topping)
    assert isinstance(back.delivery.window[0], datetime)
    assert back.placed_at.utcoffset() == timedelta(hours=2)
    # Generic types too.
    await repo.set_object_async("orders", [order, order])
    assert await repo.get_object_async("orders", list[Order]) == [order, order]
    await repo.set_object_async("ids", {order.id, customer.id})
    assert await repo.get_object_async("ids", set[uuid.UUID]) == {order.id, customer.id}


@pytest.mark.parametrize("serializer", TYPED_STRATEGIES)
async def test_typed_entities_in_hashes_round_trip(
    repo_factory: RepositoryFactory, backend_url: str, serializer: str
) -> None:
    repo = await repo_factory(serializer=serializer_named(serializer))
    orders = RedisHashRepository(repo, Order, key_prefix="order")
    order = make_order()
    await orders.add_async(order)
    assert await orders.get_async(order.id) == order
    assert await orders.get_field_async(order.id, "size") == "l" or serializer == "pickle"
    customers = RedisHashRepository(repo, Customer, key_prefix="customer")
    customer = make_customer()
    await customers.add_async(customer)
    assert await customers.get_async(customer.id) == customer


def test_a_wrong_shape_is_a_serialization_error_naming_the_field() -> None:
    with pytest.raises(SerializationError, match=r"Order.*toppings\.0\.price"):
        from_plain({**to_plain_order(), "toppings": [{"name": "x", "price": "cheap", "colour": "red"}]}, Order)


def to_plain_order() -> dict[str, Any]:
    data = orjson.loads(JsonSerializer().dumps(make_order()))
    assert isinstance(data, dict)
    return data


def test_values_written_by_0_1_read_back_typed() -> None:
    """0.1 wrote typed objects with orjson (OPT_NON_STR_KEYS) and this hook, in the same envelope."""

    def hook_0_1(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return dataclasses.asdict(value)
        if isinstance(value, datetime | date):
            return value.isoformat()
        if isinstance(value, timedelta):
            return value.total_seconds()
        if isinstance(value, uuid.UUID | Decimal):
            return str(value)
        if isinstance(value, enum.Enum):
            return value.value
        if isinstance(value, set | frozenset | tuple):
            return list(value)
        raise TypeError

    order = make_order()
    payload = orjson.dumps(order, default=hook_0_1, option=orjson.OPT_NON_STR_KEYS)
    codec = EnvelopeSerializer(JsonSerializer())
    for stored in (b"\xc1NG\x01\x00\x04json" + payload, b"\xc1NG\x01\x01\x04json" + zlib.compress(payload)):
        assert from_plain(codec.loads(stored), Order) == order


def test_without_pydantic_plain_dataclasses_still_read_and_others_say_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    @dataclasses.dataclass
    class MenuItem:
        name: str
        price: float
        tags: list[str]
        extra: dict[str, int] | None = None

    monkeypatch.setattr(typed_module, "_pydantic", lambda: None)
    typed_module._adapter.cache_clear()
    try:
        assert from_plain({"name": "Diavola", "price": 11.0, "tags": ["hot"]}, MenuItem) == MenuItem(
            "Diavola", 11.0, ["hot"]
        )
        with pytest.raises(ConfigurationError, match=r"reading Order.*neuroglia-redis\[typed\]"):
            from_plain(to_plain_order(), Order)
        assert from_plain({"a": 1}, dict) == {"a": 1}
        assert from_plain({"a": 1}, None) == {"a": 1}
    finally:
        typed_module._adapter.cache_clear()


def test_to_plain_is_still_the_hook_of_0_1() -> None:
    hook: Callable[[Any], Any] = to_plain
    assert hook({1, 2}) in ([1, 2], [2, 1])
    assert hook(Size.SMALL) == "s"
    assert JsonSerializer(default=hook).dumps({"when": date(2024, 1, 1)}) == b'{"when":"2024-01-01"}'
