"""Pickle, signed or not at all.

Every rejection below is proven to happen before unpickling: the hostile
payload's unpickling would create a file (``open(path, "w")`` run by
``__reduce__``), and ``pickle.loads`` / the restricted unpickler are replaced
by spies that fail the test if called.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import pickle
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from neuroglia.data.redis import (
    ConfigurationError,
    JsonSerializer,
    PickleSerializer,
    RedisConfig,
    RedisHashRepository,
    RedisRepository,
    SerializationError,
)
from neuroglia.data.redis.serialization import signed_pickle as pickle_module

SECRET = "s3cr3t-" + "k" * 40
OLD_SECRET = b"old-" + bytes(range(40))
OTHER_SECRET = "other-" + "x" * 40


@dataclasses.dataclass
class Order:
    id: str
    placed_at: datetime
    items: list[str]
    total: float


class Exploit:
    """Unpickling this creates ``path``: proof that untrusted bytes reached the unpickler."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


@pytest.fixture
def marker(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "pwned"
    yield path
    # Belt and braces: whatever the assertions said, the exploit never ran.
    assert not path.exists(), "a hostile pickle was unpickled"


@pytest.fixture
def no_unpickling(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail if anything is unpickled while the fixture is active."""
    calls: list[str] = []

    def forbidden_loads(*args: Any, **kwargs: Any) -> Any:
        calls.append("pickle.loads")
        raise AssertionError("pickle.loads was called on an unverified value")

    def forbidden_load(self: Any) -> Any:
        calls.append("Unpickler.load")
        raise AssertionError("the restricted unpickler ran on an unverified value")

    monkeypatch.setattr(pickle, "loads", forbidden_loads)
    monkeypatch.setattr(pickle_module._RestrictedUnpickler, "load", forbidden_load)
    return calls


def signed_exploit(serializer: PickleSerializer, marker: Path) -> bytes:
    return serializer.dumps(Exploit(marker))


# -- round trips ----------------------------------------------------------------------------


def test_round_trip_and_layout() -> None:
    strategy = PickleSerializer(SECRET)
    order = Order("o-1", datetime(2024, 6, 1, 19, 45), ["margherita"], 12.99)
    data = strategy.dumps(order)
    assert data[:4] == b"NGPK"
    assert data[4] == 1
    assert data[5] == 1
    assert data[6:14].hex() == strategy.key_id
    tag = hmac.new(SECRET.encode(), data[:14] + data[46:], hashlib.sha256).digest()
    assert hmac.compare_digest(data[14:46], tag)
    assert strategy.loads(data) == order
    assert strategy.name == "pickle-hmac-sha256"


async def test_through_the_repository_and_the_hash_repository() -> None:
    strategy = PickleSerializer(SECRET)
    async with RedisRepository(RedisConfig(url="memory://", serializer=strategy)) as repo:
        order = Order("o-2", datetime(2024, 6, 2), ["diavola", "marinara"], 21.5)
        await repo.set_object_async("order", order)
        assert await repo.get_object_async("order") == order
        hashes = RedisHashRepository[Order](repo, Order, key_prefix="order")
        await hashes.add_async(order)
        assert await hashes.get_async("o-2") == order
        # Every field is signed, integers included: nothing in the hash is bare.
        raw = await repo.hgetall_async("order:o-2")
        assert all(isinstance(v, bytes) and b"NGPK" in v for v in raw.values())


# -- rejections, never unpickled ------------------------------------------------------------


def test_unsigned_raw_pickle_is_refused(marker: Path, no_unpickling: list[str]) -> None:
    with pytest.raises(SerializationError, match="not a signed pickle"):
        PickleSerializer(SECRET).loads(pickle.dumps(Exploit(marker)))
    assert no_unpickling == []


def test_tampered_payload_is_refused(marker: Path) -> None:
    strategy = PickleSerializer(SECRET)
    data = bytearray(strategy.dumps({"role": "user", "pad": "x" * 50}))
    data[60] ^= 0x01
    hostile = strategy.dumps(Exploit(marker))
    # Splice a hostile payload behind a genuine header and tag.
    good = strategy.dumps("harmless")
    spliced = good[:46] + hostile[46:]
    with pytest.MonkeyPatch.context() as patch:
        calls = _forbid(patch)
        for value in (bytes(data), spliced):
            with pytest.raises(SerializationError, match="signature does not match"):
                strategy.loads(value)
        assert calls == []


def test_tampered_tag_or_key_id_is_refused(marker: Path, no_unpickling: list[str]) -> None:
    strategy = PickleSerializer(SECRET)
    data = bytearray(signed_exploit(strategy, marker))
    flipped_tag = bytearray(data)
    flipped_tag[20] ^= 0x80
    with pytest.raises(SerializationError, match="signature does not match"):
        strategy.loads(bytes(flipped_tag))
    unknown_key = bytearray(data)
    unknown_key[7] ^= 0x01
    with pytest.raises(SerializationError, match="not accepted"):
        strategy.loads(bytes(unknown_key))
    assert no_unpickling == []


def test_a_digest_downgrade_is_refused(marker: Path, no_unpickling: list[str]) -> None:
    """A value claiming another algorithm (here a valid HMAC-SHA1) is refused: the config decides."""
    strategy = PickleSerializer(SECRET)
    payload = pickle.dumps(Exploit(marker))
    key_id = bytes.fromhex(strategy.key_id)
    header = b"NGPK" + bytes((1, 2)) + key_id
    sha1_tag = hmac.new(SECRET.encode(), header + payload, hashlib.sha1).digest()
    with pytest.raises(SerializationError, match="digest downgrade"):
        strategy.loads(header + sha1_tag + payload)
    # Keeping the HMAC-SHA256 label but a shorter (SHA-1 sized) tag fails the signature check.
    header = b"NGPK" + bytes((1, 1)) + key_id
    sha1_tag = hmac.new(SECRET.encode(), header + payload, hashlib.sha1).digest()
    with pytest.raises(SerializationError, match="signature does not match"):
        strategy.loads(header + sha1_tag + payload)
    assert no_unpickling == []


@pytest.mark.parametrize("keep", [0, 3, 4, 13, 14, 45, 46, 47, -1])
def test_a_truncated_value_is_refused(keep: int, marker: Path, no_unpickling: list[str]) -> None:
    strategy = PickleSerializer(SECRET)
    signed = strategy.dumps(Exploit(marker))  # dumps never unpickles: the spies stay silent
    with pytest.raises(SerializationError, match="refusing to unpickle"):
        strategy.loads(signed[:keep])
    assert no_unpickling == []


def test_a_value_signed_with_a_retired_key_is_refused(marker: Path) -> None:
    old = PickleSerializer(OLD_SECRET)
    value_signed_by_old = old.dumps({"cart": ["margherita"]})
    hostile_signed_by_old = old.dumps(Exploit(marker))
    # Rotation: the new key signs, the old one is still accepted.
    rotating = PickleSerializer(SECRET, accepted_secrets=[OLD_SECRET])
    assert rotating.loads(value_signed_by_old) == {"cart": ["margherita"]}
    assert rotating.dumps("x")[6:14].hex() == rotating.key_id == PickleSerializer(SECRET).key_id
    # Retired: the old key is no longer accepted.
    retired = PickleSerializer(SECRET)
    with pytest.MonkeyPatch.context() as patch:
        calls = _forbid(patch)
        for value in (value_signed_by_old, hostile_signed_by_old):
            with pytest.raises(SerializationError, match="retired or foreign"):
                retired.loads(value)
        assert calls == []


def test_a_value_signed_by_another_application_is_refused(marker: Path) -> None:
    foreign = PickleSerializer(OTHER_SECRET).dumps(Exploit(marker))
    with pytest.MonkeyPatch.context() as patch:
        calls = _forbid(patch)
        with pytest.raises(SerializationError, match="not accepted"):
            PickleSerializer(SECRET).loads(foreign)
        assert calls == []


async def test_raw_pickles_stored_with_set_async_are_never_unpickled_by_the_repository(marker: Path) -> None:
    """The page stores pickle.dumps(obj) through set_async: the bytes round-trip, and the
    repository itself never unpickles them, not even through get_object_async."""
    async with RedisRepository(RedisConfig(url="memory://", serializer=PickleSerializer(SECRET))) as repo:
        hostile = pickle.dumps(Exploit(marker))
        await repo.set_async("page:complex", hostile)
        assert await repo.get_async("page:complex") == hostile  # the page's own pickle.loads is its choice
        with pytest.MonkeyPatch.context() as patch:
            calls = _forbid(patch)
            with pytest.raises(SerializationError, match="not a signed pickle"):
                await repo.get_object_async("page:complex")
            assert calls == []
    async with RedisRepository(RedisConfig(url="memory://")) as repo:  # the default (JSON) never unpickles
        await repo.set_async("page:complex", hostile)
        with pytest.MonkeyPatch.context() as patch:
            calls = _forbid(patch)
            with pytest.raises(SerializationError):
                await repo.get_object_async("page:complex")
            assert calls == []


async def test_a_hash_field_replaced_by_a_raw_pickle_is_refused(marker: Path) -> None:
    strategy = PickleSerializer(SECRET)
    async with RedisRepository(RedisConfig(url="memory://", serializer=strategy)) as repo:
        orders = RedisHashRepository[Order](repo, Order, key_prefix="order")
        await orders.add_async(Order("o-3", datetime(2024, 1, 1), [], 0.0))
        await repo.hset_async("order:o-3", "total", pickle.dumps(Exploit(marker)))
        await repo.hset_async("order:o-3", "items", b"17")  # a bare integer is not accepted either
        with pytest.MonkeyPatch.context() as patch:
            # The genuine, signed fields are unpickled; the hostile one must never be.
            calls = _forbid(patch, needle=str(marker).encode())
            with pytest.raises(SerializationError, match="refusing to unpickle"):
                await orders.get_async("o-3")
            for field in ("items", "total"):
                with pytest.raises(SerializationError, match="refusing to unpickle"):
                    await orders.get_field_async("o-3", field)
            assert calls == []


# -- the allow-list -------------------------------------------------------------------------


def test_allowed_classes_restrict_what_a_verified_value_may_build(marker: Path) -> None:
    strategy = PickleSerializer(SECRET, allowed_classes=[Order, datetime])
    order = Order("o-4", datetime(2024, 6, 3), ["bianca"], 9.0)
    assert strategy.loads(strategy.dumps(order)) == order
    assert strategy.loads(strategy.dumps({"a": [1, 2.5, "x", b"y", (1,), {3}, frozenset({4})]})) == {
        "a": [1, 2.5, "x", b"y", (1,), {3}, frozenset({4})]
    }
    # Signed with the right secret, but it names builtins.open: refused before it is called.
    with pytest.raises(SerializationError, match=r"(builtins|io)\.open is refused"):
        strategy.loads(strategy.dumps(Exploit(marker)))
    with pytest.raises(SerializationError, match="not in allowed_classes"):
        strategy.loads(strategy.dumps(Path("/etc/passwd")))


# -- never a default, and the secret stays secret ------------------------------------------------


def test_pickle_is_never_a_default_nor_a_name() -> None:
    assert isinstance(RedisConfig().serialization, JsonSerializer)
    with pytest.raises(ConfigurationError, match=r"pickle exists only signed: serializer=PickleSerializer\(secret"):
        RedisConfig(serializer="pickle")


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"secret": "short"}, "at least 32 bytes"),
        ({"secret": 12345}, "expected str or bytes"),
        ({"secret": SECRET, "accepted_secrets": ["tiny"]}, "accepted_secrets[0]: a signing secret must be"),
        ({"secret": SECRET, "accepted_secrets": OTHER_SECRET}, "a single secret"),
        ({"secret": SECRET, "allowed_classes": ["builtins.dict"]}, "expected classes"),
        ({"secret": SECRET, "protocol": 1}, "protocol"),
    ],
)
def test_bad_settings_are_refused_without_echoing_secrets(kwargs: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        PickleSerializer(**kwargs)
    assert problem in str(info.value)
    for secret in ("short", "tiny", SECRET, OTHER_SECRET):
        assert secret not in str(info.value)


def test_the_secret_never_shows(marker: Path) -> None:
    strategy = PickleSerializer(SECRET, accepted_secrets=[OLD_SECRET], allowed_classes=[Order])
    config = RedisConfig(url="memory://", serializer=strategy)
    repo = RedisRepository(config)
    shown = [repr(strategy), str(strategy), repr(config), str(config), repr(repo), repr(repo.codec)]
    for bad in (b"garbage", strategy.dumps("x")[:-1], PickleSerializer(OTHER_SECRET).dumps(1)):
        with pytest.raises(SerializationError) as info:
            strategy.loads(bad)
        shown.append(str(info.value))
    text = "\n".join(shown)
    assert strategy.key_id in text
    assert SECRET not in text
    assert OLD_SECRET.hex() not in text
    assert repr(OLD_SECRET) not in text
    assert SECRET.encode().hex() not in text


# -- helpers --------------------------------------------------------------------------------


def _forbid(patch: pytest.MonkeyPatch, needle: bytes | None = None) -> list[str]:
    """Spy on the unpicklers: fail on every call, or (``needle``) on calls whose data holds it."""
    calls: list[str] = []
    real_loads = pickle.loads

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        calls.append("unpickled")
        raise AssertionError("an unverified value reached the unpickler")

    def loads_unless_hostile(data: Any, *args: Any, **kwargs: Any) -> Any:
        if needle is not None and needle in bytes(data):
            calls.append("unpickled")
            raise AssertionError("an unverified value reached the unpickler")
        return real_loads(data, *args, **kwargs)

    patch.setattr(pickle, "loads", forbidden if needle is None else loads_unless_hostile)
    patch.setattr(pickle_module._RestrictedUnpickler, "load", forbidden)
    return calls
