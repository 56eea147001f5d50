"""ACL users: the library works for a user restricted to ``~app:*`` without KEYS, FLUSHALL,
FLUSHDB, CONFIG or DEBUG; denials name the missing permission; a wrong password fails
fast and stays visible as an authentication error.

The ``acl`` server (conftest.py) has the admin ``default`` user, used only to clean up
and to read the server's statistics, and the restricted ``app`` user the tests run as.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from neuroglia.data.redis import (
    CacheAuthenticationError,
    CacheCommandError,
    CachePermissionError,
    CircuitBreakerPolicy,
    CircuitState,
    DistributedLock,
    LockTimeoutError,
    RedisConfig,
    RedisHashRepository,
    RedisRepository,
    build_pattern,
    escape_pattern,
)
from neuroglia.data.redis.core import Command
from neuroglia.data.redis.demo import ServiceProvider
from neuroglia.data.redis.demo.pizzeria import (
    CustomerSegmentationService,
    CustomerSessionService,
    CustomSerializationService,
    KitchenQueueService,
    MenuCacheService,
    PizzaAnalyticsService,
)
from tests.support.repositories import clean_repository
from tests.support.security import APP_PASSWORD, APP_USER, STRICT_USER

if TYPE_CHECKING:
    from tests.support.security import AclServer


def app_config(acl: AclServer, user: str = APP_USER, **settings: Any) -> RedisConfig:
    settings.setdefault("key_prefix", "app:")
    return RedisConfig(url=acl.url(user, APP_PASSWORD), **settings)


@pytest.fixture
async def admin(acl_server: AclServer) -> AsyncIterator[RedisRepository]:
    async with clean_repository(RedisConfig(url=acl_server.admin_url)) as repo:
        yield repo


@pytest.fixture(params=[APP_USER, STRICT_USER])
def user(request: pytest.FixtureRequest) -> str:
    """``app`` (+@all minus the five commands) or ``strict`` (+@all -@dangerous +info)."""
    return str(request.param)


@pytest.fixture
async def app(acl_server: AclServer, admin: RedisRepository, user: str) -> AsyncIterator[RedisRepository]:
    repo = RedisRepository(app_config(acl_server, user, enable_metrics=True))
    await repo.connect()
    try:
        yield repo
    finally:
        await repo.disconnect()


async def command_calls(admin: RedisRepository, name: str) -> int:
    stats = await admin.info("commandstats")
    entry = stats.get(f"cmdstat_{name}")
    if isinstance(entry, dict):
        return int(entry.get("calls", 0))
    if isinstance(entry, str):
        return int(dict(part.split("=") for part in entry.split(","))["calls"])
    return 0


# -- the library's normal operations work for the restricted user ----------------------------


async def test_data_structures(app: RedisRepository, admin: RedisRepository) -> None:
    assert await app.set_async("s", "v", expiration=timedelta(minutes=1)) is True
    assert await app.get_async("s") == "v"
    await app.set_many_async({"m1": "1", "m2": "2"})
    assert await app.get_many_async(["m1", "m2", "none"]) == {"m1": "1", "m2": "2", "none": None}
    assert await app.incr_async("counter", 5) == 5
    assert await app.hset_async("h", {"a": "1", "b": "2"}) == 2
    assert await app.hincrby_async("h", "a", 2) == 3
    assert await app.hgetall_async("h") == {"a": "3", "b": "2"}
    assert await app.sadd_async("set", "x", "y") == 2
    assert await app.sinter_async(["set", "set"]) == {"x", "y"}
    assert await app.sunionstore_async("set2", ["set"]) == 2
    assert await app.zadd_async("z", {"a": 1, "b": 2}) == 2
    assert await app.zincrby_async("z", 5, "a") == 6.0
    assert await app.zrevrange_async("z", 0, -1, withscores=True) == [("a", 6.0), ("b", 2.0)]
    assert await app.rpush_async("l", "1", "2", "3") == 3
    assert await app.lpop_async("l") == "1"
    assert await app.blpop_async("l", timeout=1) == ("l", "2")
    assert await app.ttl_async("s") > 0
    assert await app.exists_async("s") is True
    assert await app.type_async("h") == "hash"
    assert await app.memory_usage("s") > 0
    assert await app.ping() is True
    # Everything landed under the user's prefix, as the admin sees it.
    keys = {k async for k in admin.scan_async("*")}
    assert keys
    assert all(str(k).startswith("app:") for k in keys)


async def test_objects_and_hash_repository(app: RedisRepository) -> None:
    await app.set_object_async("obj", {"name": "Margherita", "price": 8.5})
    assert await app.get_object_async("obj") == {"name": "Margherita", "price": 8.5}
    customers = RedisHashRepository[dict](app, dict, key_prefix="customer")  # type: ignore[type-arg]
    await customers.add_async({"id": "c:1", "name": "Luigi", "points": 10})
    assert await customers.increment_field_async("c:1", "points", 5) == 15
    assert await customers.get_async("c:1") == {"id": "c:1", "name": "Luigi", "points": 15}


async def test_pattern_deletion_uses_scan_and_unlink_only(app: RedisRepository, admin: RedisRepository) -> None:
    for i in range(120):
        await app.set_async(f"menu:item:{i}", "x")
    await app.set_async("menu:other", "kept")
    keys_before = await command_calls(admin, "keys")
    assert await app.delete_pattern_async("menu:item:*", batch_size=50) == 120
    assert await app.get_async("menu:other") == "kept"
    assert await command_calls(admin, "keys") == keys_before == 0
    assert await command_calls(admin, "unlink") >= 1
    assert [k async for k in app.scan_async("menu:*")] == ["menu:other"]
    hostile = "*"
    await app.set_async("orders:42:a", "1")
    assert await app.delete_pattern_async(f"orders:{escape_pattern(hostile)}:*") == 0
    assert await app.delete_pattern_async(build_pattern("orders", "42")) == 1


async def test_scripts_pipelines_and_transactions(app: RedisRepository) -> None:
    script = app.register_script("redis.call('SET', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[1])")
    assert await script(keys=["scripted"], args=["ok"]) == "ok"
    assert await app.eval_async("return redis.call('INCR', KEYS[1])", keys=["n"]) == 1
    async with app.pipeline() as pipe:
        pipe.set_async("p1", "1")
        pipe.incr_async("p2")
    assert await app.get_async("p1") == "1"
    async with app.transaction() as tx:
        tx.set_async("t1", "1")
        tx.hset_async("t2", "f", "v")
    assert await app.hget_async("t2", "f") == "v"


async def test_distributed_lock(app: RedisRepository) -> None:
    async def contender() -> None:
        async with DistributedLock(app, "order_lock:o-1", timeout=5, wait_timeout=0.2):
            pass

    lock = DistributedLock(app, "order_lock:o-1", timeout=5)
    async with lock:
        assert await app.exists_async("order_lock:o-1") is True
        with pytest.raises(LockTimeoutError):
            await asyncio.create_task(contender())
    assert await app.exists_async("order_lock:o-1") is False


async def test_metrics(app: RedisRepository) -> None:
    await app.set_async("k", "v")
    await app.get_async("k")
    await app.get_async("missing")
    metrics = app.metrics
    assert metrics is not None
    assert metrics.get_counter("commands_total") >= 3
    assert 0 < metrics.hit_ratio < 1


# -- the page's example services, through the restricted user ---------------------------------


async def test_the_pages_services_run_through_the_restricted_user(
    acl_server: AclServer, app: RedisRepository, user: str, capsys: pytest.CaptureFixture[str]
) -> None:
    services = ServiceProvider(app)
    bytes_repo = RedisRepository(app_config(acl_server, user, decode_responses=False))
    try:
        # Menu cache: set with TTL, hit, pattern invalidation.
        menu = MenuCacheService(services)
        assert (await menu.get_cached_menu_item("margherita") or {})["name"] == "Margherita"
        assert (await menu.get_cached_menu_item("margherita") or {})["name"] == "Margherita"
        # The page prints on each database load (a miss that it then caches): one load.
        assert capsys.readouterr().out.count("Cached menu item: Margherita") == 1
        await menu.get_cached_menu_item("pepperoni")
        await menu.invalidate_menu_cache("margherita")
        assert not await app.exists_async("mario_pizzeria:menu:item:margherita")  # the one key removed
        assert await app.exists_async("mario_pizzeria:menu:item:pepperoni")
        await menu.invalidate_menu_cache()
        assert not await app.exists_async("mario_pizzeria:menu:item:pepperoni")  # the one key left removed

        # Customer sessions: hashes with a TTL.
        sessions = CustomerSessionService(services)
        await sessions.create_customer_session("c-1", {"cart_items": [{"pizza": "Diavola"}], "preferences": {}})
        await sessions.update_customer_cart("c-1", [{"pizza": "Diavola"}, {"pizza": "Marinara"}])
        session = await sessions.get_customer_session("c-1")
        assert session is not None
        assert len(session["cart_items"]) == 2
        assert await sessions.get_customer_cart("c-1") == [{"pizza": "Diavola"}, {"pizza": "Marinara"}]

        # Kitchen queue, under the page's distributed lock (get_next_order takes it).
        kitchen = KitchenQueueService(services)
        await kitchen.add_order_to_queue("o-1", priority=1)
        await kitchen.add_order_to_queue("o-2", priority=5)
        taken = await kitchen.get_next_order("oven-1")
        assert not await app.exists_async("mario_pizzeria:queue_lock")
        assert taken is not None
        assert taken["order_id"] == "o-2"
        await kitchen.complete_order_processing("o-2")

        # Analytics: sorted sets and hincrby, read back as bytes as the page does (pizza.decode()).
        analytics = PizzaAnalyticsService(ServiceProvider(bytes_repo))
        for pizza in ("margherita", "diavola", "margherita"):
            await analytics.track_popular_pizzas(pizza)
        await analytics.track_hourly_orders(19)
        await analytics.track_hourly_orders(19)
        assert await analytics.get_top_pizzas(2) == [
            {"name": "margherita", "order_count": 2},
            {"name": "diavola", "order_count": 1},
        ]
        assert await analytics.get_hourly_distribution() == {19: 2}

        # Segmentation: set algebra across keys, all under the prefix.
        segments = CustomerSegmentationService(services)
        for customer, segment in (("c-1", "veg"), ("c-2", "veg"), ("c-2", "weekend"), ("c-3", "weekend")):
            await segments.add_customer_to_segment(customer, segment)
        assert await segments.find_overlapping_customers("veg", "weekend") == {"c-2"}
        assert await segments.create_targeted_campaign(["veg", "weekend"], "spring") == 3

        # Custom serialization: msgpack bytes through set_async/get_async.
        custom = CustomSerializationService(services)
        await custom.cache_with_msgpack("mario_pizzeria:orders:o-9", {"total": 28.0, "items": ["a"]})
        assert await custom.get_with_msgpack("mario_pizzeria:orders:o-9") == {"total": 28.0, "items": ["a"]}

        # Clean-up through the restricted user: SCAN + UNLINK under its prefix.
        assert await app.delete_pattern_async("mario_pizzeria:*") > 0
        # Only the locks' fencing counter stays (one per key prefix, by design; docs/locks.md).
        assert [k async for k in app.scan_async("*")] == [b"\xfflock:fencing"]
    finally:
        await bytes_repo.disconnect()


# -- denials are clear and name the missing permission --------------------------------------------


@pytest.mark.parametrize(
    ("args", "permission"),
    [
        (("KEYS", "app:*"), "+keys"),
        (("FLUSHALL",), "+flushall"),
        (("FLUSHDB",), "+flushdb"),
        (("CONFIG", "GET", "maxmemory"), "+config|get"),
        (("DEBUG", "SLEEP", "0"), "+debug"),
    ],
)
async def test_denied_commands_name_the_missing_permission(
    app: RedisRepository, args: tuple[str, ...], permission: str
) -> None:
    with pytest.raises(CachePermissionError) as info:
        await app._run(Command(args, lambda reply: reply))
    assert info.value.permission == permission
    assert isinstance(info.value, CacheCommandError)
    message = str(info.value)
    assert message.startswith(f"{args[0]}: permission denied by an ACL rule (missing permission: {permission})")
    assert "NOPERM" in message
    # A refused command says nothing about the server's health.
    breaker = app.circuit_breaker
    assert breaker is not None
    assert breaker.state is CircuitState.CLOSED
    assert await app.ping() is True


async def test_flushdb_method_is_denied(app: RedisRepository) -> None:
    with pytest.raises(CachePermissionError, match=r"missing permission: \+flushdb"):
        await app.flushdb()


async def test_a_key_outside_the_users_patterns_is_denied(acl_server: AclServer) -> None:
    async with RedisRepository(app_config(acl_server, key_prefix="")) as outside:
        with pytest.raises(CachePermissionError) as info:
            await outside.get_async("orders:1")
        assert info.value.permission == "~<key pattern>"
        assert "one of the keys" in str(info.value)
        tx = outside.transaction()
        tx.set_async("app:ok", "1")
        tx.set_async("elsewhere", "1")
        with pytest.raises(CachePermissionError):
            await tx.execute()
        assert await outside.get_async("app:ok") is None  # the transaction applied nothing


# -- authentication failures: fast, and never hidden by the breaker ------------------------------


@pytest.mark.parametrize(
    "url_of",
    [
        lambda acl: acl.url(APP_USER, APP_PASSWORD + "-wrong"),
        lambda acl: acl.url("nobody", APP_PASSWORD),
        lambda acl: f"redis://{acl.host}:{acl.port}/0",  # no credentials at all
    ],
    ids=["wrong-password", "unknown-user", "no-credentials"],
)
async def test_a_wrong_password_fails_fast_and_stays_visible(
    acl_server: AclServer, admin: RedisRepository, url_of: Any
) -> None:
    repo = RedisRepository(RedisConfig(url=url_of(acl_server), retry_policy={"retries": 5, "retry_delay": 0.2}))
    connections_before = int((await admin.info("stats"))["total_connections_received"])
    started = time.perf_counter()
    for _ in range(12):  # more than the breaker's failure threshold
        with pytest.raises(CacheAuthenticationError, match="authentication failed"):
            await repo.get_async("app:k")
    elapsed = time.perf_counter() - started
    connections = int((await admin.info("stats"))["total_connections_received"]) - connections_before
    assert elapsed < 2.0  # no retries with backoff
    assert connections <= 13  # one attempt per call (plus the admin's INFO), never a retry
    breaker = repo.circuit_breaker
    assert breaker is not None
    assert breaker.state is CircuitState.CLOSED
    assert breaker.failure_count == 0
    await repo.disconnect()


async def test_an_auth_error_during_recovery_is_not_turned_into_circuit_open(acl_server: AclServer) -> None:
    """The breaker opened on an outage; when the trial call meets a wrong password, the
    caller sees the authentication error, every time, not CircuitOpenError."""
    now = [0.0]
    breaker = CircuitBreakerPolicy(failure_threshold=2, recovery_timeout=10, clock=lambda: now[0])
    repo = RedisRepository(
        RedisConfig(url=acl_server.url(APP_USER, "not-the-password"), circuit_breaker=breaker, key_prefix="app:")
    )
    breaker.on_failure(breaker.before_call())
    breaker.on_failure(breaker.before_call())
    assert breaker.state is CircuitState.OPEN
    now[0] = 11.0  # recovery timeout passed: half-open, one trial at a time
    for _ in range(5):
        with pytest.raises(CacheAuthenticationError):
            await repo.get_async("k")
    assert breaker.state is CircuitState.HALF_OPEN
    await repo.disconnect()


async def test_the_right_password_after_a_wrong_one(acl_server: AclServer) -> None:
    wrong = RedisRepository(RedisConfig(url=acl_server.url(APP_USER, "nope"), key_prefix="app:"))
    with pytest.raises(CacheAuthenticationError):
        await wrong.connect()
    await wrong.disconnect()
    async with RedisRepository(app_config(acl_server)) as right:
        assert await right.ping() is True
        await asyncio.sleep(0)


async def test_a_script_that_runs_a_denied_command_is_a_permission_error(app: RedisRepository) -> None:
    with pytest.raises(CachePermissionError, match="permission denied by an ACL rule: The user executing the script"):
        await app.eval_async("return redis.call('KEYS', '*')")
    with pytest.raises(CachePermissionError) as info:
        await app.eval_async("return redis.call('GET', 'elsewhere')")
    assert info.value.permission == "~<key pattern>"
