"""Registering the adapters in a Neuroglia application, and what is refused, with which message.

The entity repository is registered the way the framework registers its
Mongo repository (``configure(builder, entity_type, key_type, ...,
domain_repository_type=...)``, scoped) and through the ``builder.services``
extension; the coordination backend resolves as the framework's
``CoordinationBackend``. Every refusal happens at registration, names what is
wrong and what to do, and leaves the collection as it was. Without the
framework installed (simulated in a subprocess that blocks its import) the
library still imports, and the adapters say what to install.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from neuroglia.coordination import CoordinationBackend
from neuroglia.data.abstractions import AggregateRoot
from neuroglia.data.infrastructure.abstractions import Repository
from neuroglia.dependency_injection import ServiceCollection
from neuroglia.hosting.abstractions import ApplicationSettings
from neuroglia.hosting.web import WebApplicationBuilder
from neuroglia.mediation.mediator import Mediator, NotificationHandler
from neuroglia.observability import RedisHealthCheck as FrameworkRedisHealthCheck
from neuroglia.observability.health_checks import HealthCheckProvider

import neuroglia.data.redis as package
from neuroglia.data.redis import ConfigurationError, RedisHealthCheck, RedisRepository, RedisRepositoryHealthCheck
from neuroglia.data.redis import integration as adapters
from neuroglia.data.redis.integration import LeaseCoordinationBackend, RedisEntityRepository
from tests.support.domain import (
    Customer,
    EventLog,
    Nameless,
    Order,
    OrderPlaced,
    OrderRepository,
    Recorded,
    new_order,
)
from tests.support.isolation import run_without_framework


def builder_on(url: str) -> WebApplicationBuilder:
    """A builder whose settings name the Redis connection string, as the framework's apps do for Mongo."""
    return WebApplicationBuilder(ApplicationSettings(connection_strings={"redis": url}))


class RedisOrderRepository(RedisEntityRepository[Order, str], OrderRepository):
    """A custom implementation with a domain-specific query (the framework's implementation_type)."""

    async def orders_of(self, customer: str) -> list[Order]:
        return await self.find_async(lambda order: order.state.customer == customer)


# -- the framework's way ------------------------------------------------------------------


async def test_configure_registers_scoped_repositories_like_the_mongo_one(fresh_services: Any) -> None:
    builder = builder_on("memory://registration-configure")
    RedisEntityRepository.configure(builder, Order, str, domain_repository_type=OrderRepository)
    recorded = Recorded()
    builder.services.add_singleton(NotificationHandler, singleton=EventLog(recorded))
    builder.services.add_singleton(Mediator)
    provider = builder.services.build()

    scope = provider.create_scope()
    concrete = scope.get_required_service(RedisEntityRepository[Order, str])
    assert isinstance(concrete, RedisEntityRepository)
    assert scope.get_required_service(Repository[Order, str]) is concrete
    assert scope.get_required_service(OrderRepository) is concrete
    other_scope = provider.create_scope()
    assert other_scope.get_required_service(Repository[Order, str]) is not concrete  # one per scope
    assert concrete.repository is provider.get_required_service(RedisRepository)  # the shared one
    assert concrete.repository.config.redacted_url.startswith("memory://registration-configure")

    await concrete.add_async(new_order())
    assert [type(e) for e in recorded.events][:1] == [OrderPlaced]  # the registered Mediator publishes
    loaded = await other_scope.get_required_service(OrderRepository).get_async("o-1")
    assert loaded is not None
    assert loaded.id() == "o-1"


async def test_the_services_extension_and_a_custom_implementation(fresh_services: Any) -> None:
    services = ServiceCollection()
    services.add_redis_repository("memory://registration-extension")  # type: ignore[attr-defined]
    services.add_redis_entity_repository(  # type: ignore[attr-defined]
        Order,
        str,
        key_prefix="orders",
        domain_repository_type=OrderRepository,
        implementation_type=RedisOrderRepository,
    )
    services.add_redis_entity_repository(Customer, str)  # type: ignore[attr-defined]
    scope = services.build().create_scope()
    orders = scope.get_required_service(OrderRepository)
    assert isinstance(orders, RedisOrderRepository)
    assert orders.model.key_prefix == "orders"
    await orders.add_async(new_order("o-1", "Luigi"))
    await orders.add_async(new_order("o-2", "Mario"))
    assert [o.id() for o in await orders.orders_of("Mario")] == ["o-2"]
    customers = scope.get_required_service(Repository[Customer, str])
    await customers.add_async(Customer("c-1", "Luigi"))
    assert await customers.contains_async("c-1")


async def test_without_a_mediator_nothing_is_published_unless_required(fresh_services: Any) -> None:
    services = ServiceCollection()
    services.add_redis_repository("memory://registration-mediator")  # type: ignore[attr-defined]
    services.add_redis_entity_repository(Order, str)  # type: ignore[attr-defined]
    services.add_redis_entity_repository(Customer, str, publish_events=True)  # type: ignore[attr-defined]
    scope = services.build().create_scope()
    orders = scope.get_required_service(Repository[Order, str])
    order = new_order()
    await orders.add_async(order)
    assert len(order.domain_events) == 3  # no mediator: kept, not published
    with pytest.raises(ConfigurationError, match=r"publish_events=True, but no Mediator is registered"):
        scope.get_required_service(Repository[Customer, str])


def test_coordination_resolves_as_the_frameworks_backend(fresh_services: Any) -> None:
    builder = builder_on("memory://registration-coordination")
    LeaseCoordinationBackend.configure(builder)
    provider = builder.services.build()
    backend = provider.get_required_service(CoordinationBackend)
    assert isinstance(backend, LeaseCoordinationBackend)
    assert provider.get_required_service(LeaseCoordinationBackend) is backend
    assert backend.repository is provider.get_required_service(RedisRepository)


# -- refusals ------------------------------------------------------------------------------


class Stateless(AggregateRoot):  # type: ignore[type-arg]
    """An aggregate root that does not name its state type."""


def registered(services: ServiceCollection) -> list[Any]:
    return [d.service_type for d in services]


@pytest.mark.parametrize(
    ("entity_type", "options", "message"),
    [
        (
            Nameless,
            {},
            "entity_type: Nameless has no id: an entity stored by RedisEntityRepository needs an 'id' attribute "
            "(declare id: str, or derive from neuroglia.data.abstractions.Entity[str])",
        ),
        (
            Stateless,
            {},
            "entity_type: Stateless derives from AggregateRoot without naming its state type: declare it as "
            "class Stateless(AggregateRoot[StatelessState, str])",
        ),
        ("not a class", {}, "entity_type: expected a class, got 'not a class'"),
        (Order, {"version_field": "revision"}, "version_field: OrderState has no attribute 'revision'"),
        (Order, {"version_field": 3}, "version_field: expected an attribute name or None, got 3"),
        (Order, {"key_prefix": "orders:"}, "key_prefix: expected a non-empty str that does not end with ':'"),
        (Order, {"key_prefix": ""}, "key_prefix: expected a non-empty str"),
        (Order, {"expiration": 0}, "expiration: must be at least 1 millisecond, got 0"),
        (Order, {"expiration": "1h"}, "expiration: expected a timedelta or a number of seconds, got str"),
        (Order, {"serializer": "pickle"}, "serializer: unknown serializer 'pickle'"),
        (
            Order,
            {"implementation_type": dict},
            "implementation_type: dict must extend RedisEntityRepository[Order, str]",
        ),
        (Order, {"publish_events": "yes"}, "publish_events: expected None, True or False, got 'yes'"),
    ],
)
def test_registration_errors_say_what_is_wrong(
    fresh_services: Any, entity_type: Any, options: dict[str, Any], message: str
) -> None:
    services = ServiceCollection()
    services.add_redis_repository("memory://registration-errors")  # type: ignore[attr-defined]
    before = registered(services)
    with pytest.raises(ConfigurationError) as caught:
        services.add_redis_entity_repository(entity_type, str, **options)  # type: ignore[attr-defined]
    assert message in str(caught.value)
    assert registered(services) == before  # nothing half-registered


def test_an_aggregate_whose_state_has_no_id_is_refused() -> None:
    # An AggregateState always declares id; a state class outside that hierarchy may not.
    class Plain:
        name: str

    class Odd(AggregateRoot[Plain, str]):  # type: ignore[type-var]
        pass

    services = ServiceCollection()
    services.add_redis_repository("memory://registration-odd")  # type: ignore[attr-defined]
    with pytest.raises(ConfigurationError, match=r"the state of Odd \(Plain\) has no 'id' attribute"):
        services.add_redis_entity_repository(Odd, str)  # type: ignore[attr-defined]


def test_the_shared_repository_comes_first() -> None:
    services = ServiceCollection()
    with pytest.raises(ConfigurationError, match=r"needs the shared Redis repository: call builder.services.add_redis"):
        services.add_redis_entity_repository(Order, str)  # type: ignore[attr-defined]
    with pytest.raises(ConfigurationError, match=r"add_redis_coordination needs the shared Redis repository"):
        services.add_redis_coordination()  # type: ignore[attr-defined]
    with pytest.raises(ConfigurationError, match=r"expected the framework's ServiceCollection"):
        adapters.add_redis_entity_repository([], Order, str)


def test_a_second_registration_is_refused_unless_replaced() -> None:
    services = ServiceCollection()
    services.add_redis_repository("memory://registration-twice")  # type: ignore[attr-defined]
    services.add_redis_entity_repository(Order, str)  # type: ignore[attr-defined]
    before = registered(services)
    with pytest.raises(ConfigurationError, match=r"already registered .* Pass replace=True"):
        services.add_redis_entity_repository(Order, str, key_prefix="orders")  # type: ignore[attr-defined]
    assert registered(services) == before
    services.add_redis_entity_repository(Order, str, key_prefix="orders", replace=True)  # type: ignore[attr-defined]
    assert len(registered(services)) == len(before)
    scope = services.build().create_scope()
    assert scope.get_required_service(Repository[Order, str]).model.key_prefix == "orders"

    services.add_redis_coordination()  # type: ignore[attr-defined]
    with pytest.raises(ConfigurationError, match="already registered"):
        services.add_redis_coordination()  # type: ignore[attr-defined]


# -- names that do not clash ----------------------------------------------------------------


def test_the_library_health_check_has_a_name_of_its_own() -> None:
    assert RedisRepositoryHealthCheck is RedisHealthCheck
    assert adapters.RedisRepositoryHealthCheck is RedisHealthCheck
    assert RedisRepositoryHealthCheck is not FrameworkRedisHealthCheck
    assert "RedisRepositoryHealthCheck" in package.__all__
    # Both serve the framework's health endpoints.
    assert issubclass(RedisRepositoryHealthCheck, HealthCheckProvider)
    assert issubclass(FrameworkRedisHealthCheck, HealthCheckProvider)
    assert {LeaseCoordinationBackend.__name__, RedisEntityRepository.__name__}.isdisjoint(
        {"RedisCoordinationBackend", "MotorRepository"}
    )


def test_the_framework_collection_has_the_extension_methods() -> None:
    assert adapters.framework_available is True
    assert ServiceCollection.add_redis_entity_repository.__module__ == adapters.__name__  # type: ignore[attr-defined]
    assert ServiceCollection.add_redis_coordination.__module__ == adapters.__name__  # type: ignore[attr-defined]
    assert ServiceCollection.add_query_caching.__module__ == adapters.__name__  # type: ignore[attr-defined]


# -- without the framework -------------------------------------------------------------------


def test_without_the_framework_the_adapters_say_what_to_install(tmp_path: Path) -> None:
    result = run_without_framework(
        """
        import asyncio

        import neuroglia.data.redis as redis_package
        from neuroglia.data.redis import ConfigurationError, RedisRepositoryHealthCheck, integration
        assert integration.framework_available is False
        assert RedisRepositoryHealthCheck is redis_package.RedisHealthCheck

        for attempt in (
            "from neuroglia.data.redis.integration import RedisEntityRepository",
            "from neuroglia.data.redis.integration import LeaseCoordinationBackend",
            "from neuroglia.data.redis.integration import QueryCachingBehavior",
            "from neuroglia.data.redis.integration import cacheable",
            "import neuroglia.data.redis.integration.entity_repository",
        ):
            try:
                exec(attempt)
            except ConfigurationError as error:
                assert isinstance(error, ImportError), type(error).__mro__
                assert isinstance(error, integration.FrameworkNotInstalledError)
                print(error)
            else:
                raise AssertionError(attempt + " worked without the framework")

        try:  # the optional-dependency idiom keeps working
            from neuroglia.data.redis.integration import RedisEntityRepository
        except ImportError:
            pass
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "ok"
    assert len(lines) == 6
    for line in lines[:5]:
        assert line.startswith(
            "the Redis adapters of the Neuroglia framework (RedisEntityRepository, LeaseCoordinationBackend, "
            "QueryCachingBehavior) need the framework: pip install 'neuroglia-redis[neuroglia]' "
            "(neuroglia-python >= 0.9.4)"
        )
        assert "No module named 'neuroglia." in line
