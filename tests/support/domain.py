"""The domain the framework-adapter tests share: Mario's orders as aggregates, and event recording.

``Order`` is an aggregate root in the framework's style (``AggregateRoot``
over an ``AggregateState``), with what a state carries in practice: nested
value objects (frozen dataclasses), enums, ``Decimal`` money, a ``UUID``,
aware and naive datetimes, a date, a duration, optionals, a dict of value
objects, a set and a tuple. ``EventLog`` is a real notification handler of
the framework's mediator that records what was published.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from neuroglia.data.abstractions import AggregateRoot, AggregateState, DomainEvent, Entity
from neuroglia.data.infrastructure.abstractions import Repository
from neuroglia.dependency_injection import ServiceCollection
from neuroglia.mediation.mediator import DomainEventHandler, Mediator, NotificationHandler


class OrderStatus(enum.Enum):
    PLACED = "placed"
    BAKING = "baking"
    DELIVERED = "delivered"


class Size(enum.IntEnum):
    SMALL = 26
    LARGE = 33


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str = "EUR"


@dataclass(frozen=True)
class Address:
    street: str
    city: str
    floor: int | None = None


@dataclass
class OrderLine:
    pizza: str
    size: Size
    price: Money
    toppings: list[str] = field(default_factory=list)


class OrderState(AggregateState[str]):
    customer: str
    status: OrderStatus
    lines: list[OrderLine]
    delivery: Address | None
    reference: uuid.UUID
    promised_at: datetime | None
    kitchen_clock: datetime  # naive on purpose: it must come back naive
    business_day: date
    prep_time: timedelta
    discounts: dict[str, Money]
    tags: set[str]
    coordinates: tuple[float, float]
    notes: str | None

    def __init__(self) -> None:
        super().__init__()
        self.lines = []
        self.delivery = None
        self.promised_at = None
        self.discounts = {}
        self.tags = set()
        self.notes = None


class OrderPlaced(DomainEvent[str]):
    def __init__(self, aggregate_id: str, customer: str) -> None:
        super().__init__(aggregate_id)
        self.customer = customer


class PizzaAdded(DomainEvent[str]):
    def __init__(self, aggregate_id: str, pizza: str) -> None:
        super().__init__(aggregate_id)
        self.pizza = pizza


class StatusChanged(DomainEvent[str]):
    def __init__(self, aggregate_id: str, status: OrderStatus) -> None:
        super().__init__(aggregate_id)
        self.status = status


class Order(AggregateRoot[OrderState, str]):
    def __init__(self, order_id: str, customer: str) -> None:
        super().__init__()
        self.state.id = order_id
        self.state.customer = customer
        self.state.status = OrderStatus.PLACED
        self.state.reference = uuid.uuid4()
        self.state.kitchen_clock = datetime(2026, 3, 1, 18, 30, 15, 250000)
        self.state.business_day = date(2026, 3, 1)
        self.state.prep_time = timedelta(minutes=12, seconds=30)
        self.state.coordinates = (45.4642, 9.19)
        self.register_event(OrderPlaced(order_id, customer))

    def add_pizza(self, pizza: str, size: Size, price: str, *toppings: str) -> None:
        self.state.lines.append(OrderLine(pizza, size, Money(Decimal(price)), list(toppings)))
        self.register_event(PizzaAdded(self.id(), pizza))

    def set_status(self, status: OrderStatus) -> None:
        self.state.status = status
        self.register_event(StatusChanged(self.id(), status))


class OrderRepository(Repository[Order, str]):
    """A domain-layer repository interface, as the framework's applications declare them."""


class Customer(Entity[str]):
    """A plain entity (not an aggregate): stored whole, without a version."""

    name: str
    loyalty_points: int
    favourite: OrderStatus | None

    def __init__(self, customer_id: str, name: str, loyalty_points: int = 0) -> None:
        super().__init__()
        self.id = customer_id
        self.name = name
        self.loyalty_points = loyalty_points
        self.favourite = None


@dataclass
class Coupon:
    """A dataclass entity with its own version field."""

    id: str
    code: str
    value: Money
    revision: int = 0


@dataclass
class Nameless:
    """A type that cannot be stored: it has no id."""

    label: str


class Recorded:
    """What one EventLog saw."""

    def __init__(self) -> None:
        self.events: list[DomainEvent[Any]] = []


EventTypes = OrderPlaced | PizzaAdded | StatusChanged


class EventLog(DomainEventHandler[EventTypes]):  # type: ignore[type-var]
    """A real handler of the framework's mediator that records every order event it is given."""

    def __init__(self, recorded: Recorded) -> None:
        self.recorded = recorded

    async def handle_async(self, notification: Any) -> None:
        self.recorded.events.append(notification)


def mediator_with_log() -> tuple[Mediator, Recorded]:
    """A framework mediator (on its own container) whose only handler records the events."""
    recorded = Recorded()
    services = ServiceCollection()
    services.add_singleton(NotificationHandler, singleton=EventLog(recorded))
    services.add_singleton(Mediator)
    provider = services.build()
    return provider.get_required_service(Mediator), recorded


def new_order(order_id: str = "o-1", customer: str = "Luigi") -> Order:
    """An order with every kind of attribute filled in."""
    order = Order(order_id, customer)
    order.add_pizza("margherita", Size.LARGE, "8.50", "basil")
    order.add_pizza("diavola", Size.SMALL, "9.90", "salami", "chili")
    order.state.delivery = Address("Via Roma 1", "Milano", floor=3)
    order.state.promised_at = datetime.fromisoformat("2026-03-01T19:00:00+01:00")
    order.state.discounts = {"loyalty": Money(Decimal("1.50")), "weekday": Money(Decimal("0.99"), "USD")}
    order.state.tags = {"phone", "regular"}
    return order


def state_of(order: Order) -> dict[str, Any]:
    """The state's attributes, for comparing two orders."""
    return dict(vars(order.state))
