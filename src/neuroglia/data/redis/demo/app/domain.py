"""The pizzeria's domain: pizzas on the menu and orders, as the framework's aggregates.

Both are ``AggregateRoot``\\ s stored by
:class:`~neuroglia.data.redis.integration.RedisEntityRepository`; their
changes are domain events the repository publishes through the mediator
after each successful write. The domain knows nothing of Redis or of the
cache: which events make the cached menu stale is said where the application
registers the query caching behavior.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from neuroglia.data.abstractions import AggregateRoot, AggregateState, DomainEvent

__all__ = [
    "Order",
    "OrderCooked",
    "OrderLine",
    "OrderPlaced",
    "OrderState",
    "OrderStatus",
    "Pizza",
    "PizzaAdded",
    "PizzaPriceChanged",
    "PizzaState",
    "pizza_id",
]


def pizza_id(name: str) -> str:
    """The id of a pizza: its name in lower case, words joined by ``-`` ("Quattro Formaggi" -> ``quattro-formaggi``)."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


# -- pizzas -------------------------------------------------------------------------


class PizzaState(AggregateState[str]):
    name: str
    price: Decimal
    toppings: list[str]

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # (the framework's __init__ is not annotated)
        self.toppings = []


class PizzaAdded(DomainEvent[str]):
    def __init__(self, pizza_id: str, name: str, price: Decimal) -> None:
        super().__init__(pizza_id)
        self.pizza_id = pizza_id
        self.name = name
        self.price = price


class PizzaPriceChanged(DomainEvent[str]):
    def __init__(self, pizza_id: str, old_price: Decimal, new_price: Decimal) -> None:
        super().__init__(pizza_id)
        self.pizza_id = pizza_id
        self.old_price = old_price
        self.new_price = new_price


class Pizza(AggregateRoot[PizzaState, str]):
    """A pizza on the menu."""

    def __init__(self, name: str, price: Decimal, toppings: list[str]) -> None:
        super().__init__()
        if price <= 0:
            raise ValueError(f"the price of {name} must be positive, got {price}")
        self.state.id = pizza_id(name)
        self.state.name = name
        self.state.price = price
        self.state.toppings = list(toppings)
        self.register_event(PizzaAdded(self.state.id, name, price))

    def change_price(self, price: Decimal) -> None:
        if price <= 0:
            raise ValueError(f"the price of {self.state.name} must be positive, got {price}")
        if price != self.state.price:
            old, self.state.price = self.state.price, price
            self.register_event(PizzaPriceChanged(self.state.id, old, price))


# -- orders -------------------------------------------------------------------------


class OrderStatus(enum.Enum):
    PLACED = "placed"
    READY = "ready"


@dataclass(frozen=True)
class OrderLine:
    pizza_id: str
    name: str
    price: Decimal


class OrderState(AggregateState[str]):
    customer: str
    lines: list[OrderLine]
    status: OrderStatus
    placed_at: datetime
    ready_at: datetime | None
    cooked_by: str | None
    fencing_token: int | None

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # (the framework's __init__ is not annotated)
        self.lines = []
        self.ready_at = None
        self.cooked_by = None
        self.fencing_token = None


class OrderPlaced(DomainEvent[str]):
    def __init__(self, order_id: str, customer: str) -> None:
        super().__init__(order_id)
        self.order_id = order_id
        self.customer = customer


class OrderCooked(DomainEvent[str]):
    def __init__(self, order_id: str, cooked_by: str, fencing_token: int) -> None:
        super().__init__(order_id)
        self.order_id = order_id
        self.cooked_by = cooked_by
        self.fencing_token = fencing_token


class Order(AggregateRoot[OrderState, str]):
    """A customer's order: placed, then cooked by the kitchen."""

    def __init__(self, order_id: str, customer: str, lines: list[OrderLine]) -> None:
        super().__init__()
        if not lines:
            raise ValueError("an order needs at least one pizza")
        self.state.id = order_id
        self.state.customer = customer
        self.state.lines = list(lines)
        self.state.status = OrderStatus.PLACED
        self.state.placed_at = datetime.now(UTC)
        self.register_event(OrderPlaced(order_id, customer))

    @property
    def total(self) -> Decimal:
        return sum((line.price for line in self.state.lines), Decimal(0))

    def cook(self, cook: str, fencing_token: int) -> bool:
        """Mark the order ready; ``False`` when it was ready already (cooked once, whoever asks again)."""
        if self.state.status is OrderStatus.READY:
            return False
        self.state.status = OrderStatus.READY
        self.state.ready_at = datetime.now(UTC)
        self.state.cooked_by = cook
        self.state.fencing_token = fencing_token
        self.register_event(OrderCooked(self.state.id, cook, fencing_token))
        return True
