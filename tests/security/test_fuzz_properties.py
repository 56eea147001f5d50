"""Property-based tests (hypothesis): keys, values, patterns, envelopes, signatures, configurations.

Each property runs a fixed number of generated cases, on memory:// and on the
private ``plain`` redis-server where it touches Redis; together they generate
more than 10,000 cases (the last test checks the count). Only documented
exceptions may come out, and every round trip must be exact.

The repositories live on one event loop owned by this module (hypothesis
drives plain functions), so no example pays for a new connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import string
from collections import Counter
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuroglia.data.redis import (
    ConfigurationError,
    EnvelopePolicy,
    EnvelopeSerializer,
    InvalidArgumentError,
    JsonSerializer,
    MsgPackSerializer,
    PickleSerializer,
    RedisConfig,
    RedisHashRepository,
    RedisRepository,
    SerializationError,
    build_key,
    build_pattern,
    escape_pattern,
)
from neuroglia.data.redis.testing import RedisEndpoint

T = TypeVar("T")
GENERATED: Counter[str] = Counter()
MINIMUM_TOTAL = 10_000


def cases(n: int) -> settings:
    return settings(
        max_examples=n,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


class Loop:
    """One event loop for the whole module, and the repositories that live on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.repos: dict[str, RedisRepository] = {}

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def repo(self, name: str, url: str, **settings: Any) -> RedisRepository:
        if name not in self.repos:
            repo = RedisRepository(RedisConfig(url=url, **settings))
            self.run(repo.connect())
            self.repos[name] = repo
        return self.repos[name]

    def close(self) -> None:
        for repo in self.repos.values():
            self.run(repo.disconnect())
        self.loop.close()


@pytest.fixture(scope="module")
def loop() -> Iterator[Loop]:
    runner = Loop()
    try:
        yield runner
    finally:
        runner.close()


@pytest.fixture(scope="module", params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
def backend(request: pytest.FixtureRequest, loop: Loop, redis_server: RedisEndpoint) -> str:
    """The URL of a clean backend: a private memory:// server, or the ``plain`` server's db 3."""
    url = "memory://fuzz" if request.param == "memory" else redis_server.url[: -len("/0")] + "/3"
    loop.run(loop.repo(f"{request.param}:admin", url).flushdb())
    return url


# -- strategies ------------------------------------------------------------------------------------

GLOB_HEAVY = st.text(
    alphabet=st.sampled_from("*?[]\\^!-:%a b\x00é\n") | st.characters(exclude_categories=("Cs",)),
    min_size=1,
    max_size=24,
)
KEYS = st.one_of(st.text(min_size=1, max_size=64), st.binary(min_size=1, max_size=64), GLOB_HEAVY)
VALUES = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=600),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(),
)
JSONABLE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=30,
)


def as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return str(value).encode()


# -- keys and values round-trip exactly ---------------------------------------------------------------


@cases(1500)
@given(key=KEYS, value=VALUES, prefixed=st.booleans())
def _keys_and_values(loop: Loop, url: str, key: str | bytes, value: Any, prefixed: bool) -> None:
    GENERATED["keys_and_values"] += 1
    repo = loop.repo(f"{url}:bytes:{prefixed}", url, decode_responses=False, key_prefix="fz:" if prefixed else "")

    async def scenario() -> None:
        assert await repo.set_async(key, value) is True
        assert await repo.get_async(key) == as_bytes(value)
        assert await repo.exists_async(key) is True
        assert await repo.delete_async(key) == 1

    loop.run(scenario())


def test_keys_and_values_round_trip(loop: Loop, backend: str) -> None:
    _keys_and_values(loop, backend)


@cases(700)
@given(key=st.text(min_size=1, max_size=20), field=st.text(max_size=20), value=VALUES)
def _text_replies(loop: Loop, url: str, key: str, field: str, value: Any) -> None:
    """With decode_responses (the default), UTF-8 comes back as str and anything else as the same bytes."""
    GENERATED["text_replies"] += 1
    repo = loop.repo(f"{url}:text", url)
    expected_raw = as_bytes(value)
    try:
        expected: Any = expected_raw.decode()
    except UnicodeDecodeError:
        expected = expected_raw

    async def scenario() -> None:
        await repo.hset_async(key, field or "f", value)
        assert await repo.hget_async(key, field or "f") == expected
        await repo.rpush_async(key + ":l", value)
        assert await repo.lrange_async(key + ":l") == [expected]
        await repo.delete_async(key, key + ":l")

    loop.run(scenario())


def test_text_replies_are_exact(loop: Loop, backend: str) -> None:
    _text_replies(loop, backend)


@cases(300)
@given(
    text=st.text(min_size=0, max_size=10),
    surrogate=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
    where=st.sampled_from(["key", "value", "field", "pattern"]),
)
def _surrogates(loop: Loop, url: str, text: str, surrogate: str, where: str) -> None:
    GENERATED["surrogates"] += 1
    repo = loop.repo(f"{url}:text", url)
    bad = text + surrogate

    async def attempt() -> Any:
        if where == "key":
            return await repo.set_async(bad, "v")
        if where == "value":
            return await repo.set_async("k", bad)
        if where == "field":
            return await repo.hset_async("h", bad, "v")
        return await repo.delete_pattern_async(bad)

    async def scenario() -> None:
        with pytest.raises(InvalidArgumentError):
            await attempt()
        assert await repo.ping() is True

    loop.run(scenario())


def test_text_that_is_not_unicode_is_refused(loop: Loop, backend: str) -> None:
    _surrogates(loop, backend)


# -- patterns cannot be widened ----------------------------------------------------------------------


@cases(1000)
@given(part=GLOB_HEAVY, others=st.lists(GLOB_HEAVY, min_size=1, max_size=4))
def _patterns(loop: Loop, url: str, part: str, others: list[str]) -> None:
    GENERATED["patterns"] += 1
    repo = loop.repo(f"{url}:patterns", url, key_prefix="pat:")
    mine = build_key("orders", part, "cart")
    decoys = {build_key("orders", other, "cart") for other in others if other != part}
    decoys |= {build_key("orders", part), build_key("orders", part + "x", "cart"), "orders"}
    literal = "lit:" + part

    async def scenario() -> None:
        for key in (mine, *decoys, literal, literal + "x"):
            await repo.set_async(key, "v")
        assert {k async for k in repo.scan_async(build_pattern("orders", part))} == {mine}
        assert {k async for k in repo.scan_async(escape_pattern(literal))} == {literal}
        assert await repo.delete_pattern_async(build_pattern("orders", part)) == 1
        assert await repo.delete_async(*decoys, literal, literal + "x") == len(decoys) + 2

    loop.run(scenario())


def test_hostile_parts_never_widen_a_pattern(loop: Loop, backend: str) -> None:
    _patterns(loop, backend)


@cases(1000)
@given(
    a=st.lists(st.text(min_size=1, max_size=8) | st.integers(min_value=0), min_size=1, max_size=4),
    b=st.lists(st.text(min_size=1, max_size=8) | st.integers(min_value=0), min_size=1, max_size=4),
)
def test_build_key_is_injective(a: list[str | int], b: list[str | int]) -> None:
    GENERATED["build_key"] += 1
    key_a, key_b = build_key(*a), build_key(*b)
    assert (key_a == key_b) == ([str(x) for x in a] == [str(x) for x in b])
    # Each part can be read back: split on ':' and unescape.
    parts = [p.replace("%3A", ":").replace("%25", "%") for p in key_a.split(":")]
    assert parts == [str(x) for x in a]


# -- typed values through the envelope --------------------------------------------------------------------


@cases(1000)
@given(
    value=JSONABLE,
    strategy=st.sampled_from(["json", "msgpack"]),
    compression=st.sampled_from(["auto", "zstd", "zlib", "none"]),
    threshold=st.integers(min_value=1, max_value=200),
)
def test_envelope_round_trip(value: Any, strategy: str, compression: str, threshold: int) -> None:
    GENERATED["envelope"] += 1
    inner = JsonSerializer() if strategy == "json" else MsgPackSerializer()
    codec = EnvelopeSerializer(inner, EnvelopePolicy(compression=compression, compress_threshold=threshold))  # type: ignore[arg-type]
    assert codec.loads(codec.dumps(value)) == value
    assert codec.loads_field(codec.dumps_field(value)) == value
    other = EnvelopeSerializer(MsgPackSerializer() if strategy == "json" else JsonSerializer())
    with pytest.raises(SerializationError, match="was not decoded"):
        other.loads(codec.dumps(value))


@cases(1500)
@given(
    data=st.binary(max_size=200) | st.binary(max_size=60).map(lambda b: b"\xc1NG" + b),
    strategy=st.sampled_from(["json", "msgpack", "pickle"]),
)
def test_arbitrary_bytes_only_raise_serialization_error(data: bytes, strategy: str) -> None:
    """Whatever an attacker stores, reading it back either decodes or raises SerializationError."""
    GENERATED["decoder_fuzz"] += 1
    inner: Any = {"json": JsonSerializer(), "msgpack": MsgPackSerializer(), "pickle": PICKLER}[strategy]
    codec = EnvelopeSerializer(inner)
    for read in (codec.loads, codec.loads_field):
        with contextlib.suppress(SerializationError):
            read(data)


PICKLER = PickleSerializer("fuzz-signing-secret-" + "f" * 20)


@cases(800)
@given(
    value=JSONABLE,
    position=st.integers(min_value=0),
    flip=st.integers(min_value=1, max_value=255),
    cut=st.booleans(),
)
def test_any_damage_to_a_signed_pickle_is_refused_before_unpickling(
    value: Any, position: int, flip: int, cut: bool
) -> None:
    GENERATED["pickle_tamper"] += 1
    signed = PICKLER.dumps(value)
    assert PICKLER.loads(signed) == value
    damaged = bytearray(signed)
    index = position % len(damaged)
    if cut:
        del damaged[index:]
    else:
        damaged[index] ^= flip
    real_loads = pickle.loads  # PICKLER has no allow-list: pickle.loads is its only unpickler
    calls: list[int] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        raise AssertionError("unverified bytes reached the unpickler")

    pickle.loads = spy
    try:
        with pytest.raises(SerializationError, match="refusing to unpickle"):
            PICKLER.loads(bytes(damaged))
    finally:
        pickle.loads = real_loads
    assert calls == []


# -- objects and hashes on the backends ------------------------------------------------------------------


FIELD_NAMES = st.text(min_size=1, max_size=12).filter(lambda name: name != "id")


@cases(300)
@given(
    entity_id=st.text(min_size=1, max_size=16),
    fields=st.dictionaries(FIELD_NAMES, JSONABLE, max_size=6),
    value=JSONABLE.filter(lambda v: v is not None),  # None is refused (documented): a miss is None
)
def _objects(loop: Loop, url: str, entity_id: str, fields: dict[str, Any], value: Any) -> None:
    GENERATED["objects"] += 1
    repo = loop.repo(f"{url}:objects", url, key_prefix="obj:", envelope={"compress_threshold": 64})
    hashes = RedisHashRepository[dict](repo, dict, key_prefix="entity")  # type: ignore[type-arg]
    entity = {"id": entity_id, **fields}

    async def scenario() -> None:
        await repo.set_object_async(build_key("value", entity_id), value)
        assert await repo.get_object_async(build_key("value", entity_id)) == value
        await hashes.add_async(entity)
        assert await hashes.get_async(entity_id) == entity
        await repo.delete_async(build_key("value", entity_id), hashes.key(entity_id))

    loop.run(scenario())


def test_objects_and_hashes_round_trip(loop: Loop, backend: str) -> None:
    _objects(loop, backend)


# -- configurations ----------------------------------------------------------------------------------------

PASSWORD_CHARS = string.ascii_letters + string.digits + "@/:#?% &=+!$'()*,;[]~\\"
PASSWORDS = st.text(alphabet=PASSWORD_CHARS, min_size=6, max_size=24).map(lambda p: "Zq9" + p)
HOSTS = st.sampled_from(["localhost", "127.0.0.1", "cache.example", "[::1]", "", "h_st", "bad host"])
PORTS = st.one_of(st.none(), st.integers(min_value=-5, max_value=70_000), st.sampled_from(["6379", "x"]))


@cases(1500)
@given(
    password=PASSWORDS,
    username=st.sampled_from([None, "app", "user:x", "ü"]),
    host=HOSTS,
    port=PORTS,
    db=st.one_of(st.none(), st.integers(min_value=-2, max_value=20), st.just("3")),
    form=st.sampled_from(["fields", "url-quoted", "url-raw", "host-url"]),
    scheme=st.sampled_from(["redis", "rediss", "unix", "memory", "http"]),
    ssl=st.fixed_dictionaries(
        {},
        optional={
            "ssl_cert_reqs": st.sampled_from([None, "required", "optional", "none", "NONE", "maybe"]),
            "ssl_check_hostname": st.booleans(),
            "ssl_insecure_skip_verify": st.booleans(),
            "ssl_ca_certs": st.sampled_from([None, "/nonexistent/ca.pem"]),
        },
    ),
)
def test_configurations_validate_and_never_show_the_password(
    password: str,
    username: str | None,
    host: str,
    port: Any,
    db: Any,
    form: str,
    scheme: str,
    ssl: dict[str, Any],
) -> None:
    GENERATED["configurations"] += 1
    user = quote(username, safe="") if username else ""
    if form == "fields":
        kwargs: dict[str, Any] = {"host": host or None, "port": port, "db": db, "username": username}
        kwargs["password"] = password
    else:
        secret = quote(password, safe="") if form == "url-quoted" else password
        netloc = f"{user}:{secret}@{host}" + (f":{port}" if port is not None else "")
        url = f"{scheme}://{netloc}/{db if db is not None else ''}"
        kwargs = {"host": url} if form == "host-url" else {"url": url}
    try:
        config = RedisConfig(**kwargs, **ssl)
    except ConfigurationError as exc:
        shown = str(exc) + repr(exc.args)
    else:
        shown = "\n".join([repr(config), str(config), config.redacted_url])
        if form in ("fields", "url-quoted") and config.scheme not in ("memory",):
            assert config.password == password
    for form_of_secret in {password, quote(password, safe=""), quote(password)}:
        assert form_of_secret not in shown


# -- the count ----------------------------------------------------------------------------------------------


def test_more_than_ten_thousand_cases_were_generated() -> None:
    """Runs last in this module: checks the properties above generated what they promise."""
    expected = {
        "keys_and_values",
        "text_replies",
        "surrogates",
        "patterns",
        "build_key",
        "envelope",
        "decoder_fuzz",
        "pickle_tamper",
        "objects",
        "configurations",
    }
    # Each property that ran generated cases; the 10,000 total is for a full run
    # of the module (a run narrowed with -k covers only part of it).
    assert all(count > 0 for count in GENERATED.values()), dict(GENERATED)
    if set(GENERATED) != expected:
        return
    total = sum(GENERATED.values())
    print(f"generated cases: {total} {dict(GENERATED)}")
    assert total >= MINIMUM_TOTAL, dict(GENERATED)
