"""Service registration in a real Neuroglia application (``neuroglia-python``).

The page's *Service Registration* example runs as written against a private
``redis-server`` started with the page's password (``--requirepass``); the
page's ``MenuCacheService`` (:mod:`neuroglia.data.redis.demo.pizzeria`, whose
menu database is :data:`~neuroglia.data.redis.demo.pizzeria.MENU`) resolves
the repository from the application's service provider and reads and writes
for real; the application's shutdown closes every connection. The
framework's surprises (one shared collection, first registration wins,
defaults injected as ``None``) are pinned down here too.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from neuroglia.dependency_injection import ServiceCollection
from neuroglia.hosting.abstractions import ApplicationSettings, HostedService
from neuroglia.hosting.web import WebApplicationBuilder
from neuroglia.observability.health_checks import HealthCheckProvider

import neuroglia.data.redis as package
from neuroglia.data.redis import (
    CacheMetrics,
    ConfigurationError,
    RedisConfig,
    RedisHashRepository,
    RedisHealthCheck,
    RedisRepository,
)
from neuroglia.data.redis.demo import pizzeria
from neuroglia.data.redis.demo.pizzeria import MenuCacheService
from neuroglia.data.redis.integration import hosting
from neuroglia.data.redis.testing import RedisEndpoint, RedisServer
from tests.support.isolation import run_without_framework
from tests.support.repositories import clean_repository

PAGE_PASSWORD = "your_redis_password"


# -- the page's code -------------------------------------------------------------


def create_app(port: int) -> Any:
    """The page's ``create_app``; only the port is the private server's."""
    builder = WebApplicationBuilder()

    # Register Redis cache repository
    redis_config = RedisConfig(
        host="localhost",
        port=port,
        db=0,
        password="your_redis_password",
        connection_pool_size=20,
        health_check_interval=30,
    )

    builder.services.add_redis_repository(redis_config)

    app = builder.build()
    return app


@dataclass
class Customer:
    id: str
    name: str
    loyalty_points: int = 0


@dataclass
class Order:
    id: str
    customer_id: str
    total: float


# -- fixtures --------------------------------------------------------------------


@pytest.fixture(scope="module")
def password_server() -> Iterator[RedisServer]:
    """A private redis-server that requires the page's password."""
    with RedisServer(args=["--requirepass", PAGE_PASSWORD]) as server:
        yield server


@pytest.fixture
async def admin(password_server: RedisServer) -> AsyncIterator[RedisRepository]:
    """A separate client on the password server, to look at it from outside; the database starts empty."""
    async with clean_repository(RedisConfig(url=password_server.url, password=PAGE_PASSWORD)) as repo:
        yield repo


async def other_clients(admin: RedisRepository) -> int:
    """Connections the server has open, besides the admin's own."""
    info = await admin.info("clients")
    return int(info["connected_clients"]) - 1


async def wait_for_other_clients(admin: RedisRepository, expected: int) -> int:
    """The server notices closed sockets asynchronously: poll for up to 2 s."""
    for _ in range(100):
        count = await other_clients(admin)
        if count == expected:
            break
        await asyncio.sleep(0.02)
    return count


# -- the page's example, end to end --------------------------------------------------


async def test_the_page_example_reads_and_writes_through_the_app_and_shutdown_closes(
    fresh_services: Any, password_server: RedisServer, admin: RedisRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(password_server.port)
    redis = app.services.get_service(RedisRepository)
    assert isinstance(redis, RedisRepository)
    assert app.services.get_service(RedisRepository) is redis  # one shared repository
    assert not redis.is_connected  # lazily connected: nothing happened yet
    assert await other_clients(admin) == 0

    menu = MenuCacheService(app.services)
    assert menu.redis is redis
    async with app.router.lifespan_context(app):
        # A miss loads from the "database" and caches; the next read is a hit.
        assert await menu.get_cached_menu_item("margherita") == {"name": "Margherita", "price": 12.99}
        stored = await admin.get_async("mario_pizzeria:menu:item:margherita")
        assert json.loads(stored) == {"name": "Margherita", "price": 12.99}
        assert 0 < await admin.ttl_async("mario_pizzeria:menu:item:margherita") <= 24 * 3600
        monkeypatch.delitem(pizzeria.MENU, "margherita")  # the database has it no more: the read is a hit
        assert await menu.get_cached_menu_item("margherita") == {"name": "Margherita", "price": 12.99}
        await menu.invalidate_menu_cache("margherita")
        assert not await admin.exists_async("mario_pizzeria:menu:item:margherita")
        assert redis.is_connected
        assert redis.connection_pool.created_connections >= 1
        assert await other_clients(admin) >= 1
    # The application stopped: the repository closed every connection.
    assert not redis.is_connected
    assert redis.connection_pool.created_connections == 0
    assert await wait_for_other_clients(admin, 0) == 0


async def test_a_service_resolved_by_the_container_serves_http_requests(
    fresh_services: Any, password_server: RedisServer, admin: RedisRepository
) -> None:
    fresh_services.add_singleton(MenuCacheService)  # built by the container: service_provider is injected
    app = create_app(password_server.port)

    @app.get("/menu/{item_id}")
    async def read_menu_item(item_id: str) -> Any:
        return await app.services.get_required_service(MenuCacheService).get_cached_menu_item(item_id)

    @app.delete("/menu")
    async def invalidate_menu() -> None:
        await app.services.get_required_service(MenuCacheService).invalidate_menu_cache()

    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pizzeria") as client,
    ):
        response = await client.get("/menu/margherita")
        assert response.status_code == 200
        assert response.json() == {"name": "Margherita", "price": 12.99}
        assert await admin.exists_async("mario_pizzeria:menu:item:margherita")
        assert (await client.get("/menu/unknown")).json() is None
        assert (await client.delete("/menu")).status_code == 200
        assert await admin.dbsize() == 0
    assert await wait_for_other_clients(admin, 0) == 0


async def test_build_app_with_lifespan_also_closes_on_shutdown(
    fresh_services: Any, password_server: RedisServer, admin: RedisRepository
) -> None:
    builder = WebApplicationBuilder()
    builder.services.add_redis_repository(RedisConfig(url=password_server.url, password=PAGE_PASSWORD))
    app = builder.build_app_with_lifespan(title="pizzeria")
    redis = app.state.services.get_service(RedisRepository)
    async with app.router.lifespan_context(app):
        await redis.set_async("k", "v")
        assert await admin.get_async("k") == "v"
    assert not redis.is_connected
    assert await wait_for_other_clients(admin, 0) == 0


async def test_a_scope_shares_the_singleton_and_does_not_close_it(
    fresh_services: Any, redis_server: RedisEndpoint
) -> None:
    fresh_services.add_redis_repository(redis_server.config())
    provider = fresh_services.build()
    redis = provider.get_service(RedisRepository)
    async with provider.create_async_scope() as scope:
        assert scope.get_service(RedisRepository) is redis
        await redis.set_async("scoped", "1")
    assert redis.is_connected  # scope disposal only touches scoped services
    assert await redis.get_async("scoped") == "1"
    await redis.delete_async("scoped")
    await redis.disconnect()


async def test_configure_is_the_framework_style_entry_point(fresh_services: Any, redis_server: RedisEndpoint) -> None:
    builder = WebApplicationBuilder()
    assert RedisRepository.configure(builder, redis_server.config(key_prefix="cfg:")) is builder
    redis = builder.build().services.get_service(RedisRepository)
    assert redis.config.key_prefix == "cfg:"


async def test_configure_reads_the_redis_connection_string_of_the_settings(
    fresh_services: Any, redis_server: RedisEndpoint
) -> None:
    settings = ApplicationSettings(connection_strings={"redis": redis_server.url})
    builder = WebApplicationBuilder(settings)
    RedisRepository.configure(builder)
    app = builder.build()
    redis = app.services.get_service(RedisRepository)
    assert redis.config.port == redis_server.config().port
    async with app.router.lifespan_context(app):
        assert await redis.ping()
    assert not redis.is_connected


async def test_configure_without_settings_reads_the_environment(
    fresh_services: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", "memory://from-env")
    monkeypatch.setenv("REDIS_KEY_PREFIX", "env:")
    builder = WebApplicationBuilder()
    RedisRepository.configure(builder)
    redis = builder.build().services.get_service(RedisRepository)
    assert redis.config.scheme == "memory"
    assert redis.config.key_prefix == "env:"


# -- what is registered ------------------------------------------------------------


def descriptor_types(services: Any) -> list[Any]:
    return [d.service_type for d in services]


def test_the_registered_services(fresh_services: Any) -> None:
    config = RedisConfig(url="memory://registered")
    fresh_services.add_redis_repository(config)
    types = descriptor_types(fresh_services)
    for expected in (RedisRepository, RedisConfig, RedisHealthCheck, HostedService, hosting.RedisRegistration):
        assert types.count(expected) == 1, expected
    assert CacheMetrics not in types  # metrics are off in this config
    provider = fresh_services.build()
    assert provider.get_service(RedisConfig) is config
    assert provider.get_service(CacheMetrics) is None
    check = provider.get_service(RedisHealthCheck)
    assert check is RedisHealthCheck.from_services(fresh_services)
    assert check.repository is provider.get_service(RedisRepository)
    lifetimes = [s for s in provider.get_services(HostedService) if isinstance(s, hosting.RedisRepositoryLifetime)]
    assert len(lifetimes) == 1


def test_the_metrics_object_is_registered_when_enabled(fresh_services: Any) -> None:
    fresh_services.add_redis_repository(RedisConfig(url="memory://", enable_metrics=True, metrics_prefix="pizzeria"))
    provider = fresh_services.build()
    redis = provider.get_service(RedisRepository)
    metrics = provider.get_service(CacheMetrics)
    assert isinstance(metrics, CacheMetrics)
    assert metrics is redis.metrics
    assert metrics.prefix == "pizzeria"


def test_the_config_may_be_a_url_or_a_dict(fresh_services: Any) -> None:
    fresh_services.add_redis_repository("redis://cache.internal:6380/2")
    config = fresh_services.build().get_service(RedisRepository).config
    assert (config.host, config.port, config.db) == ("cache.internal", 6380, 2)
    other = ServiceCollection()
    other.add_redis_repository({"url": "memory://", "key_prefix": "d:"})
    assert other.build().get_service(RedisRepository).config.key_prefix == "d:"


async def test_hash_repositories_are_injected_by_their_generic_type(
    fresh_services: Any, redis_server: RedisEndpoint
) -> None:
    class LoyaltyService:
        def __init__(self, customers: RedisHashRepository[Customer], orders: RedisHashRepository[Order]):
            self.customers = customers
            self.orders = orders

    fresh_services.add_redis_repository(redis_server.config(key_prefix="hash:"), hash_repositories=[Customer])
    fresh_services.add_redis_hash_repository(Order, key_prefix="orders", expiration=timedelta(minutes=5))
    fresh_services.add_singleton(LoyaltyService)
    provider = fresh_services.build()
    service = provider.get_service(LoyaltyService)
    redis = provider.get_service(RedisRepository)
    try:
        assert provider.get_service(RedisHashRepository[Customer]) is service.customers
        await service.customers.add_async(Customer("c1", "Mario", 10))
        await service.orders.add_async(Order("o1", "c1", 25.5))
        assert await service.customers.get_async("c1") == Customer("c1", "Mario", 10)
        assert await service.customers.increment_field_async("c1", "loyalty_points", 5) == 15
        assert await service.orders.get_async("o1") == Order("o1", "c1", 25.5)
        assert await redis.exists_async("customer:c1")
        assert 0 < await redis.ttl_async("orders:o1") <= 300
    finally:
        await redis.delete_async("customer:c1", "orders:o1")
        await redis.disconnect()


# -- errors at registration, not at first use ------------------------------------------


def test_registering_twice_is_refused_with_the_reason(fresh_services: Any) -> None:
    fresh_services.add_redis_repository(RedisConfig(url="memory://first"))
    with pytest.raises(ConfigurationError, match=r"already registered.*replace=True"):
        fresh_services.add_redis_repository(RedisConfig(url="memory://second"))


def test_builders_share_one_collection_so_a_second_app_is_refused_too(fresh_services: Any) -> None:
    first, second = WebApplicationBuilder(), WebApplicationBuilder()
    assert first.services is second.services  # the framework's surprise
    first.services.add_redis_repository(RedisConfig(url="memory://first"))
    with pytest.raises(ConfigurationError, match="share one class-level ServiceCollection"):
        second.services.add_redis_repository(RedisConfig(url="memory://second"))


def test_replace_swaps_an_earlier_registration(fresh_services: Any) -> None:
    first_app = create_app_on(fresh_services, "memory://first", enable_metrics=True)
    fresh_services.add_redis_hash_repository(Customer)
    fresh_services.add_redis_repository(RedisConfig(url="memory://second"), replace=True)
    types = descriptor_types(fresh_services)
    for registered_once in (RedisRepository, RedisConfig, RedisHealthCheck, hosting.RedisRegistration):
        assert types.count(registered_once) == 1
    assert CacheMetrics not in types
    assert RedisHashRepository[Customer] not in types  # it belonged to the replaced registration
    lifetimes = [d for d in fresh_services if d.service_type is HostedService]
    assert len(lifetimes) == 1
    assert fresh_services.build().get_service(RedisRepository).config.memory_name == "second"
    assert first_app is not None


def create_app_on(services: Any, url: str, **settings: Any) -> Any:
    services.add_redis_repository(RedisConfig(url=url, **settings))
    return services.build()


def test_a_repository_registered_by_hand_first_is_reported(fresh_services: Any) -> None:
    fresh_services.add_singleton(RedisRepository, singleton=RedisRepository(RedisConfig(url="memory://")))
    with pytest.raises(ConfigurationError, match=r"RedisRepository is already registered.*silently ignored"):
        fresh_services.add_redis_repository(RedisConfig(url="memory://"))


def test_a_refused_replacement_leaves_the_collection_untouched(fresh_services: Any) -> None:
    first = RedisConfig(url="memory://first")
    fresh_services.add_singleton(RedisConfig, singleton=first)  # by hand: replace=True keeps it
    fresh_services.add_redis_repository(first)
    before = list(fresh_services)
    with pytest.raises(ConfigurationError, match="different RedisConfig"):
        fresh_services.add_redis_repository(RedisConfig(url="memory://second"), replace=True)
    with pytest.raises(ConfigurationError, match="expected classes"):
        fresh_services.add_redis_repository(RedisConfig(url="memory://third"), replace=True, hash_repositories=[1])
    assert list(fresh_services) == before


def test_a_different_config_registered_by_hand_is_reported(fresh_services: Any) -> None:
    fresh_services.add_singleton(RedisConfig, singleton=RedisConfig(url="memory://a"))
    with pytest.raises(ConfigurationError, match="different RedisConfig"):
        fresh_services.add_redis_repository(RedisConfig(url="memory://b"))
    same = RedisConfig(url="memory://c")
    other = ServiceCollection()
    other.add_singleton(RedisConfig, singleton=same)
    other.add_redis_repository(same)  # the same config is fine
    assert descriptor_types(other).count(RedisConfig) == 1


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("http://localhost:6379", "unsupported scheme"),
        ("redis://localhost:6379/x", "database number"),
        ({"port": 0}, "port"),
        ({"hots": "localhost"}, "unexpected keyword"),
        (42, "expected a RedisConfig, a URL or a dict"),
    ],
)
def test_an_invalid_config_is_refused_at_registration(fresh_services: Any, config: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        fresh_services.add_redis_repository(config)
    assert list(fresh_services) == []  # nothing half-registered


def test_problems_found_only_at_connect_time_otherwise_are_found_at_registration(
    fresh_services: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "ca.pem"
    with pytest.raises(ConfigurationError, match="ssl_ca_certs: no such file"):
        fresh_services.add_redis_repository(RedisConfig(url="rediss://cache:6380/0", ssl_ca_certs=str(missing)))
    real_find_spec = hosting.importlib.util.find_spec
    monkeypatch.setattr(
        hosting.importlib.util, "find_spec", lambda name: None if name == "fakeredis" else real_find_spec(name)
    )
    with pytest.raises(ConfigurationError, match=r"memory:// needs the embedded backend"):
        fresh_services.add_redis_repository(RedisConfig(url="memory://"))


def test_hash_repository_registration_errors(fresh_services: Any) -> None:
    with pytest.raises(ConfigurationError, match="call add_redis_repository before"):
        fresh_services.add_redis_hash_repository(Customer)
    fresh_services.add_redis_repository(RedisConfig(url="memory://"))
    fresh_services.add_redis_hash_repository(Customer)
    with pytest.raises(ConfigurationError, match=r"RedisHashRepository\[Customer\] is already registered"):
        fresh_services.add_redis_hash_repository(Customer)
    with pytest.raises(ConfigurationError, match="expected a class"):
        fresh_services.add_redis_hash_repository("Customer")


def test_only_the_framework_collection_is_accepted() -> None:
    with pytest.raises(ConfigurationError, match="expected the framework's ServiceCollection"):
        hosting.add_redis_repository([], RedisConfig(url="memory://"))


def test_health_check_lookup_without_registration(fresh_services: Any) -> None:
    with pytest.raises(ConfigurationError, match="call add_redis_repository first"):
        RedisHealthCheck.from_services(fresh_services)


# -- the framework's surprises, pinned down --------------------------------------------


def test_the_container_returns_the_first_registration() -> None:
    services = ServiceCollection()
    services.add_singleton(RedisConfig, singleton=RedisConfig(url="memory://first"))
    services.add_singleton(RedisConfig, singleton=RedisConfig(url="memory://second"))
    assert services.build().get_service(RedisConfig).memory_name == "first"


def test_the_container_injects_none_for_constructor_defaults(fresh_services: Any) -> None:
    class MenuService:
        def __init__(self, redis: RedisRepository, ttl_hours: int = 24) -> None:
            self.redis = redis
            self.ttl_hours = ttl_hours

    fresh_services.add_redis_repository(RedisConfig(url="memory://"))
    fresh_services.add_singleton(MenuService)
    service = fresh_services.build().get_service(MenuService)
    assert service.ttl_hours is None  # the framework's behaviour, not the default 24
    assert isinstance(service.redis, RedisRepository)  # ours is built by a factory, unaffected


# -- health through the framework's observability endpoint -------------------------------


async def test_the_framework_health_endpoint_runs_the_redis_check(
    fresh_services: Any, redis_server: RedisEndpoint
) -> None:
    from fastapi import FastAPI
    from neuroglia.observability.framework import StandardEndpoints

    fresh_services.add_redis_repository(redis_server.config())
    check = RedisHealthCheck.from_services(fresh_services)
    assert isinstance(check, HealthCheckProvider)
    assert check.name == "redis"
    # The endpoint reads these settings of the framework's ObservabilityConfig.
    config = SimpleNamespace(
        health_path="/health",
        service_name="pizzeria",
        service_version="1.0",
        deployment_environment="test",
        health_checks=[],
        health_check_providers=[check],
    )
    api = FastAPI()
    StandardEndpoints.add_health_endpoint(api, config)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://pizzeria") as client:
        body = (await client.get("/health")).json()
    assert body["status"] == "healthy"
    assert body["dependencies"]["redis"]["status"] == "healthy"
    assert body["dependencies"]["redis"]["latency_ms"] >= 0
    await check.repository.disconnect()


# -- without the framework ------------------------------------------------------------------


def test_the_package_imports_and_works_without_the_framework(tmp_path: Path) -> None:
    package_dir = Path(package.__file__).parent
    result = run_without_framework(
        f"""
        import asyncio

        import neuroglia.data.redis as redis_package
        from neuroglia.data.redis import RedisConfig, RedisRepository
        from neuroglia.data.redis.integration import hosting

        assert redis_package.__file__.startswith({str(package_dir)!r})
        assert hosting.framework_available is False
        assert "neuroglia.dependency_injection" not in sys.modules

        async def main():
            async with RedisRepository(RedisConfig(url="memory://")) as repo:
                await repo.set_async("k", "v")
                assert await repo.get_async("k") == "v"

        asyncio.run(main())
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_the_framework_collection_has_the_extension_methods() -> None:
    assert hosting.framework_available is True
    assert ServiceCollection.add_redis_repository is hosting.add_redis_repository  # type: ignore[attr-defined]
    assert ServiceCollection.add_redis_hash_repository is hosting.add_redis_hash_repository  # type: ignore[attr-defined]
