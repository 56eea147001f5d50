"""The pizzeria's commands, queries and their handlers: what the mediator runs.

``GetMenuQuery`` is declared :func:`~neuroglia.data.redis.integration.cacheable`:
the query caching behavior answers it from Redis, and its handler runs only
on a miss. ``AddPizzaCommand`` declares that it makes the menu stale
(:func:`~neuroglia.data.redis.integration.invalidates`); a price change makes
it stale through its domain event, ``PizzaPriceChanged``, which the
application declares at registration (the domain knows nothing of caching).

Handlers are registered by ``Mediator.configure(builder, [this module])``,
the framework's way, and built by its container, which injects the
repositories by their annotations.
"""

# No ``from __future__ import annotations``: the framework's container reads
# the handlers' constructor annotations.

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from neuroglia.core import OperationResult
from neuroglia.mediation import Command, CommandHandler, DomainEventHandler, Query, QueryHandler

from ...integration import (
    EntityAlreadyExistsError,
    EntityConcurrencyError,
    RedisEntityRepository,
    cacheable,
    invalidates,
)
from .domain import Order, OrderLine, OrderPlaced, Pizza, pizza_id
from .kitchen import KitchenLeader, KitchenQueue

__all__ = [
    "AddPizzaCommand",
    "ChangePizzaPriceCommand",
    "CookOrderCommand",
    "GetKitchenStatusQuery",
    "GetMenuQuery",
    "GetOrderQuery",
    "KitchenStatusDto",
    "MenuDto",
    "OrderDto",
    "PizzaDto",
    "PlaceOrderCommand",
]

_log = logging.getLogger("neuroglia.data.redis.demo.app")

MENU_TAG = "menu"


# -- what the API returns -------------------------------------------------------------


@dataclass
class PizzaDto:
    id: str
    name: str
    price: Decimal
    toppings: list[str] = field(default_factory=list)


@dataclass
class MenuDto:
    pizzas: list[PizzaDto]


@dataclass
class OrderDto:
    id: str
    customer: str
    pizzas: list[str]
    total: Decimal
    status: str
    placed_at: datetime
    ready_at: datetime | None = None
    cooked_by: str | None = None
    fencing_token: int | None = None


@dataclass
class KitchenStatusDto:
    instance: str
    leader: bool
    fencing_token: int | None
    queued: int
    cooked: int


def pizza_dto(pizza: Pizza) -> PizzaDto:
    state = pizza.state
    return PizzaDto(state.id, state.name, state.price, list(state.toppings))


def order_dto(order: Order) -> OrderDto:
    state = order.state
    return OrderDto(
        state.id,
        state.customer,
        [line.pizza_id for line in state.lines],
        order.total,
        state.status.value,
        state.placed_at,
        state.ready_at,
        state.cooked_by,
        state.fencing_token,
    )


# -- the menu -------------------------------------------------------------------------


@cacheable(key="menu", tags=[MENU_TAG], expiration=timedelta(minutes=10))
@dataclass
class GetMenuQuery(Query[OperationResult[MenuDto]]):
    """The whole menu, by name: read often, changed rarely, so cached."""


@invalidates(tags=[MENU_TAG])
@dataclass
class AddPizzaCommand(Command[OperationResult[PizzaDto]]):
    name: str
    price: Decimal
    toppings: list[str] = field(default_factory=list)


@dataclass
class ChangePizzaPriceCommand(Command[OperationResult[PizzaDto]]):
    """Invalidates the menu through its domain event, ``PizzaPriceChanged`` (declared at registration)."""

    pizza_id: str
    price: Decimal


class GetMenuHandler(QueryHandler[GetMenuQuery, OperationResult[MenuDto]]):
    def __init__(self, pizzas: RedisEntityRepository[Pizza, str]) -> None:
        self.pizzas = pizzas

    async def handle_async(self, request: GetMenuQuery) -> OperationResult[MenuDto]:
        pizzas = sorted(await self.pizzas.get_all_async(), key=lambda p: p.state.name)
        return self.ok(MenuDto([pizza_dto(p) for p in pizzas]))


class AddPizzaHandler(CommandHandler[AddPizzaCommand, OperationResult[PizzaDto]]):
    def __init__(self, pizzas: RedisEntityRepository[Pizza, str]) -> None:
        self.pizzas = pizzas

    async def handle_async(self, request: AddPizzaCommand) -> OperationResult[PizzaDto]:
        try:
            pizza = Pizza(request.name, Decimal(request.price), request.toppings)
        except ValueError as exc:
            return self.bad_request(str(exc))
        try:
            await self.pizzas.add_async(pizza)
        except EntityAlreadyExistsError:
            return self.conflict(f"{request.name} is on the menu already")
        return self.created(pizza_dto(pizza))


class ChangePizzaPriceHandler(CommandHandler[ChangePizzaPriceCommand, OperationResult[PizzaDto]]):
    def __init__(self, pizzas: RedisEntityRepository[Pizza, str]) -> None:
        self.pizzas = pizzas

    async def handle_async(self, request: ChangePizzaPriceCommand) -> OperationResult[PizzaDto]:
        pizza = await self.pizzas.get_async(request.pizza_id)
        if pizza is None:
            return self.not_found(Pizza, request.pizza_id)
        try:
            pizza.change_price(Decimal(request.price))
        except ValueError as exc:
            return self.bad_request(str(exc))
        try:
            await self.pizzas.update_async(pizza)  # publishes PizzaPriceChanged
        except EntityConcurrencyError:
            return self.conflict(f"{pizza.state.name} was changed meanwhile: read the menu and try again")
        return self.ok(pizza_dto(pizza))


# -- orders ---------------------------------------------------------------------------


@dataclass
class PlaceOrderCommand(Command[OperationResult[OrderDto]]):
    customer: str
    pizzas: list[str]


@dataclass
class CookOrderCommand(Command[OperationResult[OrderDto]]):
    """Sent by the kitchen's leader only, with the fencing token of its lease."""

    order_id: str
    cook: str
    fencing_token: int


@dataclass
class GetOrderQuery(Query[OperationResult[OrderDto]]):
    """Not cached: an order changes as the kitchen works on it."""

    order_id: str


class PlaceOrderHandler(CommandHandler[PlaceOrderCommand, OperationResult[OrderDto]]):
    def __init__(self, pizzas: RedisEntityRepository[Pizza, str], orders: RedisEntityRepository[Order, str]) -> None:
        self.pizzas = pizzas
        self.orders = orders

    async def handle_async(self, request: PlaceOrderCommand) -> OperationResult[OrderDto]:
        if not request.customer.strip():
            return self.bad_request("customer: a name is needed")
        if not request.pizzas:
            return self.bad_request("pizzas: an order needs at least one pizza")
        wanted = [pizza_id(name) for name in request.pizzas]
        found = {p.state.id: p for p in await self.pizzas.get_many_async(wanted)}
        unknown = [name for name, key in zip(request.pizzas, wanted, strict=True) if key not in found]
        if unknown:
            return self.bad_request(f"pizzas: not on the menu: {', '.join(unknown)}")
        lines = [OrderLine(key, found[key].state.name, found[key].state.price) for key in wanted]
        order = Order(uuid.uuid4().hex[:12], request.customer.strip(), lines)
        await self.orders.add_async(order)  # publishes OrderPlaced: the kitchen queues it
        return self.created(order_dto(order))


class CookOrderHandler(CommandHandler[CookOrderCommand, OperationResult[OrderDto]]):
    def __init__(self, orders: RedisEntityRepository[Order, str]) -> None:
        self.orders = orders

    async def handle_async(self, request: CookOrderCommand) -> OperationResult[OrderDto]:
        order = await self.orders.get_async(request.order_id)
        if order is None:
            return self.not_found(Order, request.order_id)
        if order.cook(request.cook, request.fencing_token):
            try:
                await self.orders.update_async(order)
            except EntityConcurrencyError:
                return self.conflict(f"order {request.order_id} was changed meanwhile")
        return self.ok(order_dto(order))


class GetOrderHandler(QueryHandler[GetOrderQuery, OperationResult[OrderDto]]):
    def __init__(self, orders: RedisEntityRepository[Order, str]) -> None:
        self.orders = orders

    async def handle_async(self, request: GetOrderQuery) -> OperationResult[OrderDto]:
        order = await self.orders.get_async(request.order_id)
        if order is None:
            return self.not_found(Order, request.order_id)
        return self.ok(order_dto(order))


class QueueOrderForKitchen(DomainEventHandler[OrderPlaced]):
    """Puts each placed order in the kitchen's queue, which the kitchen's leader works through."""

    def __init__(self, queue: KitchenQueue) -> None:
        self.queue = queue

    async def handle_async(self, event: OrderPlaced) -> None:
        await self.queue.push_async(event.order_id)


# -- the kitchen --------------------------------------------------------------------


@dataclass
class GetKitchenStatusQuery(Query[OperationResult[KitchenStatusDto]]):
    """This instance's view of the kitchen: does it lead, with which token, how much is queued."""


class GetKitchenStatusHandler(QueryHandler[GetKitchenStatusQuery, OperationResult[KitchenStatusDto]]):
    def __init__(self, kitchen: KitchenLeader, queue: KitchenQueue) -> None:
        self.kitchen = kitchen
        self.queue = queue

    async def handle_async(self, request: GetKitchenStatusQuery) -> OperationResult[KitchenStatusDto]:
        kitchen = self.kitchen
        return self.ok(
            KitchenStatusDto(
                kitchen.identity,
                kitchen.is_leader(),
                kitchen.fencing_token,
                await self.queue.length_async(),
                kitchen.cooked,
            )
        )
