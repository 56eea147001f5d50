"""Contract: text vs bytes, and typed objects through the serialization strategies."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta

import msgpack
import pydantic
import pytest

from neuroglia.data.redis import (
    JsonSerializer,
    MsgPackSerializer,
    RawSerializer,
    RedisRepository,
    SerializationError,
    SerializationStrategy,
)
from tests.support.repositories import RepositoryFactory

NOT_UTF8 = b"\xff\xfe\x00\x80pizza\xc3"


@dataclasses.dataclass
class MenuItem:
    id: str
    name: str
    price: float
    toppings: list[str] = dataclasses.field(default_factory=list)


class Customer(pydantic.BaseModel):
    id: int
    name: str
    joined: datetime
    tags: list[str] = []


# -- text and bytes ------------------------------------------------------------


async def test_text_comes_back_as_str_by_default(backend: RedisRepository) -> None:
    await backend.set_async("s", "città 🍕")
    await backend.set_async("b", b"plain")
    assert await backend.get_async("s") == "città 🍕"
    assert await backend.get_async("b") == "plain"


async def test_non_utf8_bytes_come_back_unchanged(backend: RedisRepository) -> None:
    await backend.set_async("bin", NOT_UTF8)
    value = await backend.get_async("bin")
    assert isinstance(value, bytes)
    assert value == NOT_UTF8


async def test_non_utf8_bytes_in_collections(backend: RedisRepository) -> None:
    await backend.hset_async("h", {"text": "ok", "bin": NOT_UTF8})
    assert await backend.hgetall_async("h") == {"text": "ok", "bin": NOT_UTF8}
    assert await backend.hget_async("h", "bin") == NOT_UTF8
    await backend.rpush_async("l", NOT_UTF8, "ok")
    assert await backend.lrange_async("l") == [NOT_UTF8, "ok"]
    await backend.sadd_async("s", NOT_UTF8, "ok")
    assert await backend.smembers_async("s") == {NOT_UTF8, "ok"}
    await backend.zadd_async("z", {NOT_UTF8: 2, "ok": 1})
    assert await backend.zrange_async("z", 0, -1, withscores=True) == [("ok", 1.0), (NOT_UTF8, 2.0)]
    assert await backend.get_many_async(["missing"]) == {"missing": None}


async def test_msgpack_and_pickle_payloads_survive_the_default_config(backend: RedisRepository) -> None:
    payload = {"name": "Margherita", "price": 12.99, "tags": ["veg"]}
    packed = msgpack.packb(payload)
    await backend.set_async("mp", packed)
    assert msgpack.unpackb(await backend.get_async("mp"), raw=False) == payload


async def test_decode_responses_false_gives_bytes_everywhere(repo_factory: RepositoryFactory, backend_url: str) -> None:
    repo = await repo_factory(decode_responses=False, key_prefix="b:")
    await repo.set_async("s", "text")
    await repo.set_async("bin", NOT_UTF8)
    await repo.hset_async("h", {"f": "v"})
    await repo.rpush_async("l", "a", "b")
    await repo.sadd_async("st", "m")
    await repo.zadd_async("z", {"m": 3})
    assert await repo.get_async("s") == b"text"
    assert await repo.get_async("bin") == NOT_UTF8
    assert await repo.get_many_async(["s"]) == {"s": b"text"}
    assert await repo.hgetall_async("h") == {b"f": b"v"}
    assert await repo.hget_async("h", "f") == b"v"
    assert await repo.hkeys_async("h") == [b"f"]
    assert await repo.lrange_async("l") == [b"a", b"b"]
    assert await repo.lpop_async("l") == b"a"
    assert await repo.smembers_async("st") == {b"m"}
    assert await repo.zrevrange_async("z", 0, -1, withscores=True) == [(b"m", 3.0)]
    assert await repo.blpop_async("l", timeout=1) == (b"l", b"b")
    assert {k async for k in repo.scan_async("*")} == {b"s", b"bin", b"h", b"st", b"z"}


# -- typed objects ---------------------------------------------------------------


async def test_objects_round_trip_as_json_by_default(backend: RedisRepository) -> None:
    assert backend.serializer.name == "json"
    await backend.set_object_async("dict", {"name": "Margherita", "price": 12.99, "nested": {"a": [1, 2]}})
    await backend.set_object_async("list", [1, "two", 3.0, None, True])
    assert await backend.get_object_async("dict") == {"name": "Margherita", "price": 12.99, "nested": {"a": [1, 2]}}
    assert await backend.get_object_async("list") == [1, "two", 3.0, None, True]
    # JSON written by hand with set_async, as the page does, reads back as an object too.
    await backend.set_async("by-hand", json.dumps({"name": "Diavola", "price": 14.5}))
    assert await backend.get_object_async("by-hand") == {"name": "Diavola", "price": 14.5}
    assert await backend.get_object_async("missing") is None


async def test_dataclass_round_trip(backend: RedisRepository) -> None:
    item = MenuItem(id="m1", name="Margherita", price=12.99, toppings=["basil", "mozzarella"])
    assert await backend.set_object_async("item", item, expiration=timedelta(minutes=5)) is True
    assert await backend.get_object_async("item", MenuItem) == item
    assert await backend.get_object_async("item") == dataclasses.asdict(item)
    assert 295 <= await backend.ttl_async("item") <= 300


async def test_pydantic_round_trip(backend: RedisRepository) -> None:
    customer = Customer(id=7, name="Luigi", joined=datetime(2024, 5, 1, 12, 30), tags=["vip"])
    await backend.set_object_async("customer", customer)
    assert await backend.get_object_async("customer", Customer) == customer


async def test_set_object_nx_xx(backend: RedisRepository) -> None:
    assert await backend.set_object_async("o", {"v": 1}, nx=True) is True
    assert await backend.set_object_async("o", {"v": 2}, nx=True) is False
    assert await backend.set_object_async("o", {"v": 3}, xx=True) is True
    assert await backend.get_object_async("o") == {"v": 3}


async def test_get_object_of_a_value_that_is_not_json(backend: RedisRepository) -> None:
    await backend.set_async("k", "not json {")
    with pytest.raises(SerializationError, match="JSON"):
        await backend.get_object_async("k")


async def test_msgpack_serializer(repo_factory: RepositoryFactory, backend_url: str) -> None:
    repo = await repo_factory(serializer="msgpack")
    assert isinstance(repo.serializer, MsgPackSerializer)
    item = MenuItem(id="m2", name="Diavola", price=14.5)
    await repo.set_object_async("item", item)
    await repo.set_object_async("data", {"a": [1, 2, {"b": b"\x00\xff"}]})
    assert await repo.get_object_async("item", MenuItem) == item
    assert await repo.get_object_async("data") == {"a": [1, 2, {"b": b"\x00\xff"}]}
    await repo.set_async("by-hand", msgpack.packb({"x": [1, 2]}))
    assert await repo.get_object_async("by-hand") == {"x": [1, 2]}


async def test_raw_serializer(repo_factory: RepositoryFactory, backend_url: str) -> None:
    repo = await repo_factory(serializer="raw")
    assert isinstance(repo.serializer, RawSerializer)
    await repo.set_object_async("t", "text")
    await repo.set_object_async("b", NOT_UTF8)
    assert await repo.get_object_async("t") == b"text"
    assert await repo.get_object_async("t", str) == "text"
    assert await repo.get_object_async("b") == NOT_UTF8
    with pytest.raises(SerializationError, match="raw"):
        await repo.set_object_async("d", {"a": 1})
    assert await repo.exists_async("d") is False


async def test_a_custom_strategy_instance(repo_factory: RepositoryFactory, backend_url: str) -> None:
    class Upper:
        name = "upper"

        def dumps(self, value: object) -> bytes:
            return str(value).upper().encode()

        def loads(self, data: bytes) -> object:
            return data.decode().lower()

    strategy = Upper()
    assert isinstance(strategy, SerializationStrategy)
    repo = await repo_factory(serializer=strategy)
    await repo.set_object_async("k", "Pizza")
    assert await repo.get_object_async("k") == "pizza"
    await repo.set_async("by-hand", "PASTA")
    assert await repo.get_object_async("by-hand") == "pasta"


async def test_serializers_directly() -> None:
    for strategy in (JsonSerializer(), MsgPackSerializer()):
        assert strategy.loads(strategy.dumps({"a": [1, 2]})) == {"a": [1, 2]}
    assert RawSerializer().dumps("é") == "é".encode()
