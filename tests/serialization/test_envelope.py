"""The versioned envelope of the typed helpers: detection, compression, damage, hashes.

Runs on memory:// and on a private redis-server (``repo_factory``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import zlib
from typing import TYPE_CHECKING, Any

import msgpack
import pytest
import zstandard

from neuroglia.data.redis import (
    ConfigurationError,
    EnvelopePolicy,
    EnvelopeSerializer,
    InvalidArgumentError,
    JsonSerializer,
    MsgPackSerializer,
    PickleSerializer,
    RawSerializer,
    RedisConfig,
    RedisHashRepository,
    SerializationError,
    read_envelope,
)
from neuroglia.data.redis.serialization import compression as compression_module
from neuroglia.data.redis.serialization import envelope as envelope_module

if TYPE_CHECKING:
    from tests.support.repositories import RepositoryFactory

SECRET = "envelope-test-secret-" + "0" * 32


@dataclasses.dataclass
class Pizza:
    id: str
    name: str
    price: float
    orders: int
    toppings: list[str]


MARGHERITA = Pizza("margherita", "Margherita", 8.5, 0, ["tomato", "mozzarella", "basil"])


def test_layout() -> None:
    data = EnvelopeSerializer(JsonSerializer()).dumps({"a": 1})
    assert data == b"\xc1NG\x01\x00\x04json" + b'{"a":1}'
    envelope = read_envelope(data)
    assert envelope is not None
    assert (envelope.version, envelope.strategy, envelope.compression, envelope.payload) == (
        1,
        "json",
        "none",
        b'{"a":1}',
    )
    assert read_envelope(b'{"a":1}') is None
    assert read_envelope("text") is None  # type: ignore[arg-type]


# -- a value written by one strategy is detected, not misread, by another ------------------


@pytest.mark.parametrize(
    ("writer", "reader"),
    [
        ("json", "msgpack"),
        ("msgpack", "json"),
        ("json", "raw"),
        ("raw", "json"),
        ("json", "pickle"),
        ("pickle", "json"),
        ("msgpack", "pickle"),
    ],
)
async def test_a_strategy_change_is_detected(
    repo_factory: RepositoryFactory, writer: str, reader: str, backend_url: str
) -> None:
    def strategy(name: str) -> Any:
        return PickleSerializer(SECRET) if name == "pickle" else name

    before = await repo_factory(serializer=strategy(writer))
    after = await repo_factory(serializer=strategy(reader))
    value: Any = "plain text" if "raw" in (writer, reader) else {"name": "Margherita", "price": 8.5}
    await before.set_object_async("menu:special", value)
    with pytest.raises(SerializationError) as info:
        await after.get_object_async("menu:special")
    message = str(info.value)
    assert before.codec.name in message
    assert after.codec.name in message
    assert "was not decoded" in message
    # Switching back reads it again: nothing was corrupted.
    expected = value.encode() if writer == "raw" else value  # the raw strategy reads bytes back
    assert await before.get_object_async("menu:special") == expected


async def test_values_without_an_envelope_go_to_the_strategy(repo_factory: RepositoryFactory, backend_url: str) -> None:
    repo = await repo_factory()
    await repo.set_async("by-hand", json.dumps({"name": "Diavola"}))  # the page's style
    assert await repo.get_object_async("by-hand") == {"name": "Diavola"}
    packed = await repo_factory(serializer="msgpack")
    await packed.set_async("packed", msgpack.packb([1, 2]))
    assert await packed.get_object_async("packed") == [1, 2]


# -- compression ----------------------------------------------------------------------------


@pytest.mark.parametrize(("compression", "expected"), [("auto", "zstd"), ("zstd", "zstd"), ("zlib", "zlib")])
async def test_large_values_are_compressed(
    repo_factory: RepositoryFactory, compression: str, expected: str, backend_url: str
) -> None:
    repo = await repo_factory(envelope={"compression": compression, "compress_threshold": 1024})
    big = {"toppings": ["mozzarella"] * 2000, "note": "é" * 500}
    await repo.set_object_async("big", big)
    raw = await repo.get_async("big")
    envelope = read_envelope(raw)
    assert envelope is not None
    assert envelope.compression == expected
    assert isinstance(raw, bytes)
    assert len(raw) < len(envelope.payload) / 10
    assert await repo.get_object_async("big") == big
    # A reader with another compression setting (or none) reads it all the same.
    plain = await repo_factory(envelope={"compression": "none"})
    assert await plain.get_object_async("big") == big


async def test_small_and_incompressible_values_stay_uncompressed(
    repo_factory: RepositoryFactory, backend_url: str
) -> None:
    repo = await repo_factory(serializer="raw", envelope=EnvelopePolicy(compress_threshold=64))
    await repo.set_object_async("small", b"x" * 63)
    noise = os.urandom(4096)
    await repo.set_object_async("noise", noise)
    for key, value in (("small", b"x" * 63), ("noise", noise)):
        envelope = read_envelope(await repo.get_async(key))
        assert envelope is not None
        assert envelope.compression == "none"
        assert await repo.get_object_async(key) == value


def test_policy_validation() -> None:
    for bad, field in (
        ({"compression": "lz4"}, "envelope.compression"),
        ({"compress_threshold": 0}, "envelope.compress_threshold"),
        ({"level": "max"}, "envelope.level"),
        ({"colour": "red"}, "envelope"),
    ):
        with pytest.raises(ConfigurationError) as info:
            RedisConfig(envelope=bad)
        assert str(info.value).startswith(f"{field}:")


# -- damaged or hostile envelopes -----------------------------------------------------------

HEADER = b"\xc1NG\x01\x00\x04json"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\xc1NG", "truncated"),
        (b"\xc1NG\x01\x00", "truncated"),
        (b"\xc1NG\x01\x00\x09json", "truncated"),
        (b"\xc1NG\x01\x00\x00", "truncated"),
        (b"\xc1NG\x02\x00\x04json{}", "version 2"),
        (b"\xc1NG\x01\x04\x04json{}", "unknown flags"),
        (b"\xc1NG\x01\x03\x04json{}", "unknown flags"),
        (b"\xc1NG\x01\x00\x02\xff\xfe{}", "invalid UTF-8"),
        (b"\xc1NG\x01\x01\x04json" + b"not zlib", "zlib payload is damaged"),
        (b"\xc1NG\x01\x01\x04json" + zlib.compress(b"{}")[:-3], "truncated"),
        (b"\xc1NG\x01\x01\x04json" + zlib.compress(b"{}") + b"extra", "extra bytes"),
        (b"\xc1NG\x01\x02\x04json" + b"not zstd", "zstd payload is damaged"),
        (HEADER + b"{not json", "not valid JSON"),
    ],
)
def test_damaged_envelopes_raise_serialization_error(data: bytes, problem: str) -> None:
    with pytest.raises(SerializationError, match=problem):
        EnvelopeSerializer(JsonSerializer()).loads(data)


def test_decompression_bombs_are_refused() -> None:
    codec = EnvelopeSerializer(RawSerializer(), EnvelopePolicy(max_value_bytes=1024 * 1024, max_ratio=100_000))
    zeros = b"\x00" * (2 * 1024 * 1024)
    zlib_bomb = b"\xc1NG\x01\x01\x03raw" + zlib.compress(zeros, 9)
    zstd_bomb = b"\xc1NG\x01\x02\x03raw" + zstandard.ZstdCompressor().compress(zeros)
    unsized = zstandard.ZstdCompressor(write_content_size=False).compress(b"{}")
    for bomb in (zlib_bomb, zstd_bomb):
        assert len(bomb) < 10_000
        with pytest.raises(SerializationError, match="max_value_bytes"):
            codec.loads(bomb)
    with pytest.raises(SerializationError, match="does not declare its size"):
        codec.loads(b"\xc1NG\x01\x02\x03raw" + unsized)
    # Writing refuses what could not be read back.
    with pytest.raises(InvalidArgumentError, match="max_value_bytes"):
        codec.dumps(zeros)


def test_zstd_values_need_the_extra_to_be_read(monkeypatch: pytest.MonkeyPatch) -> None:
    data = EnvelopeSerializer(JsonSerializer(), EnvelopePolicy(compression="zstd", compress_threshold=1)).dumps(
        ["x"] * 100
    )
    monkeypatch.setattr(envelope_module, "_zstd", lambda: None)
    monkeypatch.setattr(compression_module, "zstd_module", lambda: None)
    with pytest.raises(SerializationError, match=r"neuroglia-redis\[zstd\]"):
        EnvelopeSerializer(JsonSerializer()).loads(data)
    with pytest.raises(ConfigurationError, match="zstd extra"):
        EnvelopePolicy(compression="zstd")
    assert EnvelopePolicy().algorithm == 1  # "auto" falls back to zlib


# -- hashes -----------------------------------------------------------------------------------


async def test_hash_fields_are_enveloped_except_integers(repo_factory: RepositoryFactory, backend_url: str) -> None:
    repo = await repo_factory()
    pizzas = RedisHashRepository[Pizza](repo, Pizza, key_prefix="pizza")
    await pizzas.add_async(MARGHERITA)
    raw = await repo.hgetall_async("pizza:margherita")
    assert raw["orders"] == "0"  # bare decimal text: HINCRBY works on it
    for field in ("id", "name", "price", "toppings"):
        envelope = read_envelope(raw[field])
        assert envelope is not None
        assert envelope.strategy == "json"
    assert await pizzas.increment_field_async("margherita", "orders", 5) == 5
    assert await repo.hincrby_async("pizza:margherita", "orders", 2) == 7  # the plain API too
    assert await pizzas.get_field_async("margherita", "orders") == 7
    assert await pizzas.get_async("margherita") == dataclasses.replace(MARGHERITA, orders=7)


async def test_hash_strategy_change_is_detected(repo_factory: RepositoryFactory, backend_url: str) -> None:
    json_repo = await repo_factory()
    msgpack_repo = await repo_factory(serializer="msgpack")
    await RedisHashRepository[Pizza](json_repo, Pizza, key_prefix="pizza").add_async(MARGHERITA)
    reader = RedisHashRepository[Pizza](msgpack_repo, Pizza, key_prefix="pizza")
    with pytest.raises(SerializationError, match="'json' strategy, but this repository reads with 'msgpack'"):
        await reader.get_async("margherita")
    with pytest.raises(SerializationError, match="'json' strategy"):
        await reader.get_field_async("margherita", "name")
    # Integers are integers whatever the strategy: no misreading b"0" as a msgpack byte.
    assert await reader.get_field_async("margherita", "orders") == 0


async def test_hash_with_an_explicit_serializer(repo_factory: RepositoryFactory, backend_url: str) -> None:
    repo = await repo_factory()
    pizzas = RedisHashRepository[Pizza](repo, Pizza, key_prefix="pizza", serializer=MsgPackSerializer())
    await pizzas.add_async(MARGHERITA)
    envelope = read_envelope(await repo.hget_async("pizza:margherita", "toppings"))
    assert envelope is not None
    assert envelope.strategy == "msgpack"
    assert await pizzas.get_async("margherita") == MARGHERITA


async def test_big_integers_and_bools_in_hashes(repo_factory: RepositoryFactory, backend_url: str) -> None:
    repo = await repo_factory()
    things = RedisHashRepository[dict](repo, dict, key_prefix="thing")  # type: ignore[type-arg]
    entity = {"id": "t", "big": 2**63 + 5, "neg": -(2**63), "flag": True, "zero": 0, "text": "42"}
    await things.add_async(entity)
    assert await things.get_async("t") == entity
    raw = await repo.hgetall_async("thing:t")
    assert raw["neg"] == str(-(2**63))
    assert isinstance(raw["big"], bytes)  # beyond HINCRBY's range: enveloped
    assert isinstance(raw["text"], bytes)  # the string "42" is not mistaken for a number
