"""The pizzeria's HTTP API: the framework's controllers, each request sent through the mediator.

Mounted under ``/api`` (``/api/menu``, ``/api/orders``, ``/api/kitchen``);
``ControllerBase.process`` turns each ``OperationResult`` into the response
(its status code, the data as JSON, or the problem details).
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations.

from decimal import Decimal
from typing import Any

from classy_fastapi import get, post, put
from neuroglia.mvc import ControllerBase
from pydantic import BaseModel, Field

from .application import (
    AddPizzaCommand,
    ChangePizzaPriceCommand,
    GetKitchenStatusQuery,
    GetMenuQuery,
    GetOrderQuery,
    PlaceOrderCommand,
)

__all__ = ["KitchenController", "MenuController", "NewOrder", "NewPizza", "NewPrice", "OrdersController"]


class NewPizza(BaseModel):
    name: str
    price: Decimal
    toppings: list[str] = Field(default_factory=list)


class NewPrice(BaseModel):
    price: Decimal


class NewOrder(BaseModel):
    customer: str
    pizzas: list[str]


class MenuController(ControllerBase):
    """``GET /api/menu`` (cached), ``POST /api/menu``, ``PUT /api/menu/{pizza_id}/price``."""

    @get("")
    async def get_menu(self) -> Any:
        return self.process(await self.mediator.execute_async(GetMenuQuery()))

    @post("", status_code=201)
    async def add_pizza(self, pizza: NewPizza) -> Any:
        command = AddPizzaCommand(pizza.name, pizza.price, list(pizza.toppings))
        return self.process(await self.mediator.execute_async(command))

    @put("/{pizza_id}/price")
    async def change_price(self, pizza_id: str, change: NewPrice) -> Any:
        return self.process(await self.mediator.execute_async(ChangePizzaPriceCommand(pizza_id, change.price)))


class OrdersController(ControllerBase):
    """``POST /api/orders``, ``GET /api/orders/{order_id}``."""

    @post("", status_code=201)
    async def place_order(self, order: NewOrder) -> Any:
        return self.process(await self.mediator.execute_async(PlaceOrderCommand(order.customer, list(order.pizzas))))

    @get("/{order_id}")
    async def get_order(self, order_id: str) -> Any:
        return self.process(await self.mediator.execute_async(GetOrderQuery(order_id)))


class KitchenController(ControllerBase):
    """``GET /api/kitchen``: this instance's view of the kitchen (leader? token? queue)."""

    @get("")
    async def get_status(self) -> Any:
        return self.process(await self.mediator.execute_async(GetKitchenStatusQuery()))
