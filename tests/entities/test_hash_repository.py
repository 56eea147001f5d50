"""Contract: RedisHashRepository[T], typed objects stored as hashes."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pydantic
import pytest

from neuroglia.data.redis import InvalidArgumentError, RedisHashRepository, RedisRepository
from tests.support.repositories import RepositoryFactory


@dataclasses.dataclass
class Pizza:
    id: str
    name: str
    price: float
    toppings: list[str]
    orders: int = 0


class Order(pydantic.BaseModel):
    id: int
    customer: str
    placed_at: datetime
    items: list[str]
    total: float
    paid: bool = False


def pizzas(backend: RedisRepository) -> RedisHashRepository[Pizza]:
    return RedisHashRepository[Pizza](backend, Pizza, key_prefix="pizza")


async def test_add_get_contains_remove_with_a_dataclass(backend: RedisRepository) -> None:
    repo = pizzas(backend)
    pizza = Pizza(id="margherita", name="Margherita", price=12.99, toppings=["basil", "mozzarella"])
    assert await repo.add_async(pizza) is pizza
    assert await repo.contains_async("margherita") is True
    assert await repo.get_async("margherita") == pizza
    assert await backend.type_async("pizza:margherita") == "hash"
    assert sorted(await backend.hkeys_async("pizza:margherita")) == ["id", "name", "orders", "price", "toppings"]
    assert await repo.remove_async("margherita") is True
    assert await repo.remove_async("margherita") is False
    assert await repo.contains_async("margherita") is False
    assert await repo.get_async("margherita") is None


async def test_update_replaces_the_whole_entity(backend: RedisRepository) -> None:
    repo = pizzas(backend)
    await repo.add_async(Pizza(id="p", name="Old", price=1.0, toppings=["a", "b"]))
    updated = Pizza(id="p", name="New", price=2.0, toppings=[])
    await repo.update_async(updated)
    assert await repo.get_async("p") == updated


async def test_single_fields(backend: RedisRepository) -> None:
    repo = pizzas(backend)
    await repo.add_async(Pizza(id="p", name="Diavola", price=14.5, toppings=["salami"]))
    assert await repo.get_field_async("p", "name") == "Diavola"
    assert await repo.get_field_async("p", "toppings") == ["salami"]
    assert await repo.get_field_async("p", "nope") is None
    await repo.set_field_async("p", "price", 15.0)
    await repo.set_field_async("p", "toppings", ["salami", "chili"])
    assert await repo.increment_field_async("p", "orders") == 1
    assert await repo.increment_field_async("p", "orders", 4) == 5
    expected = Pizza(id="p", name="Diavola", price=15.0, toppings=["salami", "chili"], orders=5)
    assert await repo.get_async("p") == expected
    with pytest.raises(InvalidArgumentError, match="id"):
        await repo.set_field_async("p", "id", "other")


async def test_with_a_pydantic_model_and_expiration(backend: RedisRepository) -> None:
    repo = RedisHashRepository[Order](backend, Order, expiration=timedelta(minutes=10))
    order = Order(id=42, customer="Luigi", placed_at=datetime(2024, 6, 1, 19, 45), items=["margherita"], total=12.99)
    await repo.add_async(order)
    assert repo.key(42) == "order:42"
    assert await repo.contains_async(42) is True
    assert await repo.get_async(42) == order
    assert 590 <= await backend.ttl_async("order:42") <= 600
    await repo.set_field_async(42, "paid", True)
    assert await repo.get_field_async(42, "paid") is True
    fetched = await repo.get_async(42)
    assert fetched is not None
    assert fetched.paid is True
    assert await repo.remove_async(42) is True


async def test_with_a_key_prefix_on_the_repository(backend: RedisRepository, prefixed_backend: RedisRepository) -> None:
    repo = pizzas(prefixed_backend)
    pizza = Pizza(id="x", name="X", price=1.0, toppings=[])
    await repo.add_async(pizza)
    assert await backend.exists_async("app:pizza:x") is True
    assert await repo.get_async("x") == pizza


async def test_entity_without_id_is_refused(backend: RedisRepository) -> None:
    repo = RedisHashRepository[dict](backend, dict, key_prefix="thing")  # type: ignore[type-arg]
    with pytest.raises(InvalidArgumentError, match="'id'"):
        await repo.add_async({"name": "no id"})
    with pytest.raises(InvalidArgumentError, match="empty"):
        await repo.get_async("")
    assert await backend.dbsize() == 0


async def test_with_msgpack_and_bytes_replies(repo_factory: RepositoryFactory, backend_url: str) -> None:
    backend = await repo_factory(serializer="msgpack", decode_responses=False)
    repo = pizzas(backend)
    pizza = Pizza(id="m", name="Marinara", price=9.5, toppings=["garlic", "oregano"], orders=5)
    await repo.add_async(pizza)
    assert await repo.get_async("m") == pizza
    assert await repo.get_field_async("m", "orders") == 5
    assert await repo.get_field_async("m", "name") == "Marinara"
    await repo.set_field_async("m", "price", 10.0)
    assert await repo.get_async("m") == dataclasses.replace(pizza, price=10.0)
