"""The query caching behavior in the framework's mediator, on memory:// and on a real server.

Queries, commands, events and handlers are the framework's own, registered
the framework's way (``Mediator.configure(builder, [this module])``); the
behavior is registered with one call. Each test counts how often a handler
really ran: a hit never reaches it, a miss does once, failures are answered
again, invalidations by command and by domain event make the next query run
it, an outage never fails a query, and 50 concurrent identical queries run
it once (also across two applications, through the cache's lease).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from neuroglia.core import OperationResult
from neuroglia.data.abstractions import AggregateRoot, AggregateState, DomainEvent
from neuroglia.data.infrastructure.abstractions import Repository
from neuroglia.dependency_injection import ServiceCollection
from neuroglia.hosting.abstractions import ApplicationSettings, HostedService
from neuroglia.hosting.web import WebApplicationBuilder
from neuroglia.mediation import (
    Command,
    CommandHandler,
    DomainEventHandler,
    Mediator,
    Query,
    QueryHandler,
)
from neuroglia.mediation.pipeline_behavior import PipelineBehavior

from neuroglia.data.redis import (
    CacheOptions,
    ConfigurationError,
    InvalidArgumentError,
    RedisCache,
    RedisConfig,
    RedisRepository,
)
from neuroglia.data.redis.integration import (
    QueryCachingBehavior,
    RedisEntityRepository,
    cacheable,
    invalidates,
)
from neuroglia.data.redis.testing import FaultInjectingTransport
from neuroglia.data.redis.transport import build_transport

# -- the application's model --------------------------------------------------------------


class Kind(enum.Enum):
    PIZZA = "pizza"
    DRINK = "drink"


@dataclass(frozen=True)
class Price:
    amount: Decimal
    currency: str = "EUR"


@dataclass
class MenuItemDto:
    id: str
    name: str
    kind: Kind
    price: Price
    toppings: list[str] = field(default_factory=list)
    updated_at: datetime | None = None


@dataclass
class Kitchen:
    """What the handlers read and change: the menu, and how often each handler ran."""

    menu: dict[str, MenuItemDto] = field(default_factory=dict)
    runs: Counter[str] = field(default_factory=Counter)
    delay: float = 0.0
    broken: bool = False


KITCHEN = Kitchen()


def seed() -> None:
    KITCHEN.menu = {
        "margherita": MenuItemDto(
            "margherita",
            "Margherita",
            Kind.PIZZA,
            Price(Decimal("8.50")),
            ["tomato", "mozzarella"],
            datetime(2026, 12, 4, 12, 30, tzinfo=UTC),
        ),
        "chinotto": MenuItemDto("chinotto", "Chinotto", Kind.DRINK, Price(Decimal("3.00"))),
    }
    KITCHEN.runs.clear()
    KITCHEN.delay = 0.0
    KITCHEN.broken = False


@cacheable(key="menu:{kind}", tags=["menu", "menu:{kind}"], expiration=timedelta(minutes=5))
@dataclass
class GetMenuQuery(Query[OperationResult[list[MenuItemDto]]]):
    kind: Kind


@cacheable(key="item:{item_id}", tags=["menu"])
@dataclass
class GetMenuItemQuery(Query[OperationResult[MenuItemDto]]):
    item_id: str


@cacheable()  # no key template: the class name and all its attributes
@dataclass
class CountItemsQuery(Query[int]):
    kind: Kind
    cheaper_than: Decimal | None = None


@cacheable(key="special:{day}")
@dataclass
class GetSpecialQuery(Query[MenuItemDto | None]):
    day: str


@cacheable(key="special-or-none:{day}", cache_none=True)
@dataclass
class GetSpecialOrNothingQuery(Query[MenuItemDto | None]):
    day: str


@dataclass
class GetUncachedMenuQuery(Query[OperationResult[list[MenuItemDto]]]):
    kind: Kind


@invalidates(tags=["menu:{kind}"])
@dataclass
class AddMenuItemCommand(Command[OperationResult[MenuItemDto]]):
    item_id: str
    name: str
    kind: Kind
    price: Decimal


@invalidates(keys=["item:{item_id}"])
@dataclass
class RenameMenuItemCommand(Command[OperationResult[MenuItemDto]]):
    item_id: str
    name: str


class MenuItemPriceChanged(DomainEvent[str]):
    """A domain event of the menu; the domain does not know about caching (see the registrations)."""

    def __init__(self, item_id: str, price: Decimal) -> None:
        super().__init__(item_id)
        self.item_id = item_id
        self.price = price


class MenuItemSoldOut(DomainEvent[str]):
    def __init__(self, item_id: str) -> None:
        super().__init__(item_id)
        self.item_id = item_id


def run(name: str) -> None:
    KITCHEN.runs[name] += 1


def as_list(kind: Kind) -> list[MenuItemDto]:
    return [item for item in KITCHEN.menu.values() if item.kind is kind]


class GetMenuHandler(QueryHandler[GetMenuQuery, OperationResult[list[MenuItemDto]]]):
    async def handle_async(self, request: GetMenuQuery) -> OperationResult[list[MenuItemDto]]:
        run("menu")
        if KITCHEN.delay:
            await asyncio.sleep(KITCHEN.delay)
        if KITCHEN.broken:
            raise ConnectionError("the menu database is unreachable")
        return self.ok(as_list(request.kind))


class GetUncachedMenuHandler(QueryHandler[GetUncachedMenuQuery, OperationResult[list[MenuItemDto]]]):
    async def handle_async(self, request: GetUncachedMenuQuery) -> OperationResult[list[MenuItemDto]]:
        run("uncached")
        return self.ok(as_list(request.kind))


class GetMenuItemHandler(QueryHandler[GetMenuItemQuery, OperationResult[MenuItemDto]]):
    async def handle_async(self, request: GetMenuItemQuery) -> OperationResult[MenuItemDto]:
        run("item")
        item = KITCHEN.menu.get(request.item_id)
        if item is None:
            return self.not_found(MenuItemDto, request.item_id)
        return self.ok(item)


class CountItemsHandler(QueryHandler[CountItemsQuery, int]):
    async def handle_async(self, request: CountItemsQuery) -> int:
        run("count")
        items = as_list(request.kind)
        if request.cheaper_than is not None:
            items = [i for i in items if i.price.amount < request.cheaper_than]
        return len(items)


class GetSpecialHandler(QueryHandler[GetSpecialQuery, MenuItemDto | None]):
    async def handle_async(self, request: GetSpecialQuery) -> MenuItemDto | None:
        run("special")
        return None


class GetSpecialOrNothingHandler(QueryHandler[GetSpecialOrNothingQuery, MenuItemDto | None]):
    async def handle_async(self, request: GetSpecialOrNothingQuery) -> MenuItemDto | None:
        run("special-or-none")
        return None


class AddMenuItemHandler(CommandHandler[AddMenuItemCommand, OperationResult[MenuItemDto]]):
    async def handle_async(self, request: AddMenuItemCommand) -> OperationResult[MenuItemDto]:
        if request.item_id in KITCHEN.menu:
            return self.conflict(f"{request.item_id} is on the menu already")
        if request.price <= 0:
            raise ValueError("a price must be positive")
        item = MenuItemDto(request.item_id, request.name, request.kind, Price(request.price))
        KITCHEN.menu[item.id] = item
        return self.created(item)


class RenameMenuItemHandler(CommandHandler[RenameMenuItemCommand, OperationResult[MenuItemDto]]):
    async def handle_async(self, request: RenameMenuItemCommand) -> OperationResult[MenuItemDto]:
        item = KITCHEN.menu.get(request.item_id)
        if item is None:
            return self.not_found(MenuItemDto, request.item_id)
        item.name = request.name
        return self.ok(item)


class PriceBoard(DomainEventHandler[MenuItemPriceChanged]):
    """Keeps the read model the queries read up to date (as a projection would)."""

    async def handle_async(self, event: MenuItemPriceChanged) -> None:
        KITCHEN.menu[event.item_id].price = Price(event.price)


class SoldOutBoard(DomainEventHandler[MenuItemSoldOut]):
    async def handle_async(self, event: MenuItemSoldOut) -> None:
        KITCHEN.menu.pop(event.item_id, None)
        raise RuntimeError("the sold-out board is offline")


# An aggregate whose changes are published as domain events by the entity repository.


class PriceListState(AggregateState[str]):
    prices: dict[str, Decimal]

    def __init__(self) -> None:
        super().__init__()
        self.prices = {}


class PriceList(AggregateRoot[PriceListState, str]):
    def __init__(self, list_id: str) -> None:
        super().__init__()
        self.state.id = list_id

    def change(self, item_id: str, price: Decimal) -> None:
        self.state.prices[item_id] = price
        self.register_event(MenuItemPriceChanged(item_id, price))


INVALIDATIONS = {
    MenuItemPriceChanged: invalidates(tags=["menu"]),
    MenuItemSoldOut: invalidates(tags=["menu"]),
}


# -- the application ----------------------------------------------------------------------


@dataclass
class App:
    provider: Any
    mediator: Mediator
    behavior: QueryCachingBehavior
    redis: RedisRepository

    async def execute(self, request: Any) -> Any:
        return await self.mediator.execute_async(request)


@pytest.fixture(autouse=True)
def kitchen() -> Kitchen:
    seed()
    return KITCHEN


@pytest.fixture
async def make_app(backend_url: str, repo_factory: Any) -> AsyncIterator[Callable[..., App]]:
    """Build applications on the test's backend: each with its own collection, repository and behavior."""
    made: list[App] = []

    def make(**caching: Any) -> App:
        builder = WebApplicationBuilder(ApplicationSettings(connection_strings={"redis": backend_url}))
        builder.services = ServiceCollection()
        caching.setdefault("invalidations", INVALIDATIONS)
        QueryCachingBehavior.configure(builder, **caching)
        RedisEntityRepository.configure(builder, PriceList, str)
        Mediator.configure(builder, [__name__])
        provider = builder.services.build()
        app = App(
            provider,
            provider.get_required_service(Mediator),
            provider.get_required_service(QueryCachingBehavior),
            provider.get_required_service(RedisRepository),
        )
        made.append(app)
        return app

    yield make
    for app in made:
        await app.behavior.close()
        await app.redis.disconnect()


# -- hits and misses ------------------------------------------------------------------------


async def test_a_hit_never_reaches_the_handler_and_rebuilds_the_declared_type(make_app: Callable[..., App]) -> None:
    app = make_app()
    first = await app.execute(GetMenuQuery(Kind.PIZZA))
    second = await app.execute(GetMenuQuery(Kind.PIZZA))
    assert KITCHEN.runs["menu"] == 1
    assert first.status == second.status == 200
    assert second.is_success
    assert isinstance(second, OperationResult)
    assert second.data == first.data == [KITCHEN.menu["margherita"]]
    item = second.data[0]
    assert isinstance(item, MenuItemDto)
    assert isinstance(item.price, Price)
    assert isinstance(item.kind, Kind)
    assert item.price.amount == Decimal("8.50")
    assert item.updated_at == datetime(2026, 12, 4, 12, 30, tzinfo=UTC)
    statistics = app.behavior.cache.statistics()
    assert (statistics.hits, statistics.misses, statistics.factory_runs) == (1, 1, 1)


async def test_keys_follow_the_templates_and_other_requests_pass_through(make_app: Callable[..., App]) -> None:
    app = make_app()
    await app.execute(GetMenuQuery(Kind.PIZZA))
    await app.execute(GetMenuQuery(Kind.DRINK))  # another key
    await app.execute(GetMenuQuery(Kind.DRINK))
    assert KITCHEN.runs["menu"] == 2
    assert app.behavior.key_for(GetMenuQuery(Kind.DRINK)) == "menu:Kind.DRINK"
    for _ in range(2):
        await app.execute(GetUncachedMenuQuery(Kind.PIZZA))
    assert KITCHEN.runs["uncached"] == 2
    with pytest.raises(ConfigurationError, match="GetUncachedMenuQuery is not declared cacheable"):
        app.behavior.key_for(GetUncachedMenuQuery(Kind.PIZZA))


async def test_a_query_without_a_key_template_is_keyed_by_all_its_attributes(make_app: Callable[..., App]) -> None:
    app = make_app()
    assert await app.execute(CountItemsQuery(Kind.PIZZA)) == 1
    assert await app.execute(CountItemsQuery(Kind.PIZZA)) == 1
    assert await app.execute(CountItemsQuery(Kind.PIZZA, Decimal("5"))) == 0
    assert KITCHEN.runs["count"] == 2
    key = app.behavior.key_for(CountItemsQuery(Kind.PIZZA, Decimal("5")))
    assert key == f"{__name__}.CountItemsQuery(kind=Kind.PIZZA,cheaper_than=Decimal('5'))"


# -- what is never cached ---------------------------------------------------------------------


async def test_a_failed_operation_result_is_answered_again(make_app: Callable[..., App]) -> None:
    app = make_app()
    for _ in range(2):
        missing = await app.execute(GetMenuItemQuery("calzone"))
        assert missing.status == 404
        assert not missing.is_success
    assert KITCHEN.runs["item"] == 2
    found = await app.execute(GetMenuItemQuery("margherita"))
    assert (await app.execute(GetMenuItemQuery("margherita"))).data == found.data
    assert KITCHEN.runs["item"] == 3


async def test_an_exception_is_raised_to_the_caller_and_nothing_is_stored(make_app: Callable[..., App]) -> None:
    app = make_app()
    KITCHEN.broken = True
    for _ in range(2):
        with pytest.raises(ConnectionError, match="the menu database is unreachable"):
            await app.execute(GetMenuQuery(Kind.PIZZA))
    KITCHEN.broken = False
    assert (await app.execute(GetMenuQuery(Kind.PIZZA))).is_success
    assert KITCHEN.runs["menu"] == 3


async def test_none_is_cached_only_when_the_query_says_so(make_app: Callable[..., App]) -> None:
    app = make_app()
    for _ in range(2):
        assert await app.execute(GetSpecialQuery("monday")) is None
        assert await app.execute(GetSpecialOrNothingQuery("monday")) is None
    assert (KITCHEN.runs["special"], KITCHEN.runs["special-or-none"]) == (2, 1)


# -- invalidation -------------------------------------------------------------------------------


async def test_a_command_invalidates_by_tag_after_it_succeeded(make_app: Callable[..., App]) -> None:
    app = make_app()
    await app.execute(GetMenuQuery(Kind.PIZZA))
    await app.execute(GetMenuQuery(Kind.DRINK))
    created = await app.execute(AddMenuItemCommand("diavola", "Diavola", Kind.PIZZA, Decimal("11")))
    assert created.status == 201
    pizzas = await app.execute(GetMenuQuery(Kind.PIZZA))  # its tag menu:Kind.PIZZA was removed
    assert [p.id for p in pizzas.data] == ["margherita", "diavola"]
    await app.execute(GetMenuQuery(Kind.DRINK))  # menu:Kind.DRINK was not
    assert KITCHEN.runs["menu"] == 3


async def test_a_failed_command_invalidates_nothing(make_app: Callable[..., App]) -> None:
    app = make_app()
    await app.execute(GetMenuQuery(Kind.PIZZA))
    conflict = await app.execute(AddMenuItemCommand("margherita", "Again", Kind.PIZZA, Decimal("9")))
    assert conflict.status == 409
    with pytest.raises(ValueError, match="a price must be positive"):
        await app.execute(AddMenuItemCommand("free", "Free", Kind.PIZZA, Decimal("0")))
    await app.execute(GetMenuQuery(Kind.PIZZA))
    assert KITCHEN.runs["menu"] == 1


async def test_a_command_invalidates_by_key(make_app: Callable[..., App]) -> None:
    app = make_app()
    await app.execute(GetMenuItemQuery("margherita"))
    await app.execute(GetMenuItemQuery("chinotto"))
    await app.execute(RenameMenuItemCommand("margherita", "Regina Margherita"))
    renamed = await app.execute(GetMenuItemQuery("margherita"))
    assert renamed.data.name == "Regina Margherita"
    await app.execute(GetMenuItemQuery("chinotto"))  # another key: still cached
    assert KITCHEN.runs["item"] == 3


async def test_a_domain_event_published_by_the_entity_repository_invalidates(make_app: Callable[..., App]) -> None:
    app = make_app()
    before = (await app.execute(GetMenuQuery(Kind.PIZZA))).data[0].price.amount
    await app.execute(GetMenuItemQuery("margherita"))
    scope = app.provider.create_scope()
    prices = scope.get_required_service(Repository[PriceList, str])
    price_list = PriceList("today")
    await prices.add_async(price_list)
    price_list.change("margherita", Decimal("9.50"))
    await prices.update_async(price_list)  # publishes MenuItemPriceChanged through the mediator
    after = await app.execute(GetMenuQuery(Kind.PIZZA))
    item = await app.execute(GetMenuItemQuery("margherita"))
    assert before == Decimal("8.50")
    assert after.data[0].price.amount == item.data.price.amount == Decimal("9.50")
    assert (KITCHEN.runs["menu"], KITCHEN.runs["item"]) == (2, 2)


async def test_an_event_invalidates_even_when_one_of_its_handlers_fails(make_app: Callable[..., App]) -> None:
    app = make_app()
    await app.execute(GetMenuItemQuery("chinotto"))
    with pytest.raises(RuntimeError, match="the sold-out board is offline"):
        await app.mediator.publish_async(MenuItemSoldOut("chinotto"))
    assert (await app.execute(GetMenuItemQuery("chinotto"))).status == 404  # the event happened
    assert KITCHEN.runs["item"] == 2


async def test_invalidate_async_applies_a_declaration_by_hand(make_app: Callable[..., App]) -> None:
    app = make_app()
    await app.execute(GetMenuItemQuery("margherita"))
    await app.behavior.invalidate_async(MenuItemPriceChanged("margherita", Decimal("1")))
    await app.execute(GetMenuItemQuery("margherita"))
    assert KITCHEN.runs["item"] == 2
    with pytest.raises(ConfigurationError, match="GetMenuItemQuery declares no invalidation"):
        await app.behavior.invalidate_async(GetMenuItemQuery("margherita"))


# -- stampedes ------------------------------------------------------------------------------------


async def test_fifty_concurrent_identical_queries_run_the_handler_once(make_app: Callable[..., App]) -> None:
    app = make_app()
    KITCHEN.delay = 0.1
    results = await asyncio.gather(*(app.execute(GetMenuQuery(Kind.PIZZA)) for _ in range(50)))
    assert KITCHEN.runs["menu"] == 1
    assert all(r.is_success and r.data == results[0].data for r in results)
    assert app.behavior.cache.statistics().stampede_waits_local == 49


async def test_two_applications_share_one_handler_run_through_the_lease(make_app: Callable[..., App]) -> None:
    first, second = make_app(), make_app()  # two repositories, two caches: two processes' worth
    KITCHEN.delay = 0.2
    results = await asyncio.gather(
        *(app.execute(GetMenuQuery(Kind.PIZZA)) for _ in range(25) for app in (first, second))
    )
    assert KITCHEN.runs["menu"] == 1
    assert all(r.data == results[0].data for r in results)
    waits = first.behavior.cache.statistics().stampede_waits_distributed
    waits += second.behavior.cache.statistics().stampede_waits_distributed
    assert waits == 1  # the other application's flight waited for the lease holder's value


# -- a cache that cannot serve ----------------------------------------------------------------------


@pytest.fixture
async def flaky(backend_url: str) -> AsyncIterator[tuple[RedisRepository, FaultInjectingTransport]]:
    config = RedisConfig(url=backend_url, retry_policy={"retries": 0}, circuit_breaker=False)
    transport = FaultInjectingTransport(build_transport(config))
    repository = RedisRepository(config, transport=transport)
    yield repository, transport
    await repository.disconnect()


async def test_an_outage_never_fails_a_query_nor_a_command(
    make_app: Callable[..., App], flaky: tuple[RedisRepository, FaultInjectingTransport], caplog: Any
) -> None:
    repository, transport = flaky
    async with RedisCache(repository, namespace="outage") as cache:
        app = make_app(cache=cache)
        await app.execute(GetMenuQuery(Kind.PIZZA))
        transport.faults.outage = True
        for _ in range(3):  # Redis refuses every command: the handler answers each time
            assert (await app.execute(GetMenuQuery(Kind.DRINK))).data == [KITCHEN.menu["chinotto"]]
        assert KITCHEN.runs["menu"] == 4
        with caplog.at_level(logging.ERROR, logger="neuroglia.data.redis.integration"):
            created = await app.execute(AddMenuItemCommand("diavola", "Diavola", Kind.PIZZA, Decimal("11")))
        assert created.status == 201  # the command succeeded; its invalidation could not be sent
        assert "AddMenuItemCommand succeeded, but the cached query results it makes stale could not be removed" in (
            caplog.text
        )
        labels = {"cache": "outage", "request": "AddMenuItemCommand"}
        assert cache.metrics.get_counter("rediscache_invalidation_failures_total", labels) == 1
        transport.faults.outage = False


async def test_fail_safe_serves_the_last_value_when_redis_and_the_handler_fail(
    make_app: Callable[..., App], flaky: tuple[RedisRepository, FaultInjectingTransport]
) -> None:
    repository, transport = flaky
    async with RedisCache(repository, namespace="fail-safe", fail_safe=True) as cache:
        app = make_app(cache=cache)
        first = await app.execute(GetMenuQuery(Kind.PIZZA))
        transport.faults.outage = True
        KITCHEN.broken = True
        served = await app.execute(GetMenuQuery(Kind.PIZZA))  # this process's copy of the entry
        assert served.is_success
        assert served.data == first.data
        assert KITCHEN.runs["menu"] == 1
        transport.faults.outage = False


async def test_a_closed_cache_lets_the_handler_answer(make_app: Callable[..., App]) -> None:
    app = make_app()
    cache = app.behavior.cache
    await cache.close()  # as at shutdown, with a query still arriving
    assert (await app.execute(GetMenuQuery(Kind.PIZZA))).is_success
    assert KITCHEN.runs["menu"] == 1


async def test_a_stored_value_that_no_longer_fits_is_replaced(make_app: Callable[..., App]) -> None:
    app = make_app()
    cache = app.behavior.cache
    await cache.set_async("item:margherita", {"$operation_result": {"title": "OK", "status": 200, "data": [1, 2]}})
    answered = await app.execute(GetMenuItemQuery("margherita"))
    assert answered.data == KITCHEN.menu["margherita"]
    assert await cache.get_async("item:margherita") is None  # removed; the next call stores the new shape
    await app.execute(GetMenuItemQuery("margherita"))
    assert (await app.execute(GetMenuItemQuery("margherita"))).data == KITCHEN.menu["margherita"]
    assert KITCHEN.runs["item"] == 2


async def test_a_key_field_that_is_not_a_plain_value_is_refused_when_rendered(make_app: Callable[..., App]) -> None:
    app = make_app()
    with pytest.raises(InvalidArgumentError, match=r"the field \{item_id\} of key 'item:\{item_id\}'.* is a list"):
        await app.execute(GetMenuItemQuery(["margherita"]))  # type: ignore[arg-type]
    assert KITCHEN.runs["item"] == 0


# -- lifetime -----------------------------------------------------------------------------------


async def test_the_application_stop_closes_the_behaviors_own_cache(make_app: Callable[..., App]) -> None:
    app = make_app()
    await app.execute(GetMenuQuery(Kind.PIZZA))
    cache = app.behavior.cache
    lifetimes = [s for s in app.provider.get_services(HostedService) if type(s).__name__ == "QueryCacheLifetime"]
    assert len(lifetimes) == 1
    await lifetimes[0].start_async()
    await lifetimes[0].stop_async()
    assert cache.closed
    await app.execute(GetMenuQuery(Kind.PIZZA))  # a new cache, on the same entries
    assert app.behavior.cache is not cache
    assert KITCHEN.runs["menu"] == 1


# -- registration ---------------------------------------------------------------------------------


def services_with_redis(url: str = "memory://query-caching-registration") -> ServiceCollection:
    services = ServiceCollection()
    services.add_redis_repository(url)  # type: ignore[attr-defined]
    return services


def test_the_extension_registers_one_behavior_for_the_mediator() -> None:
    services = services_with_redis()
    services.add_query_caching(expiration=timedelta(minutes=1), namespace="menu-queries")  # type: ignore[attr-defined]
    provider = services.build()
    behavior = provider.get_required_service(QueryCachingBehavior)
    scope = provider.create_scope()
    assert [b for b in scope.get_services(PipelineBehavior) if isinstance(b, QueryCachingBehavior)] == [behavior]
    assert provider.create_scope().get_services(PipelineBehavior)[0] is behavior  # one, in every scope
    assert behavior.cache.namespace == "menu-queries"
    assert behavior.cache.default_options.expiration == timedelta(minutes=1)
    assert behavior.cache.repository is provider.get_required_service(RedisRepository)


def registered(services: ServiceCollection) -> list[Any]:
    return [(d.service_type, d.implementation_factory) for d in services]


class NotAQuery:
    name: str


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"namespace": "a#b"}, "namespace: expected a non-empty str without '#', got 'a#b'"),
        ({"expiration": 0}, "query caching defaults: expiration must be longer than 0, got 0"),
        ({"fail_safe": "yes"}, "fail_safe must be True or False, got 'yes'"),
        ({"queries": {GetUncachedMenuQuery: "cacheable"}}, "the value for GetUncachedMenuQuery must be cacheable"),
        ({"queries": {AddMenuItemCommand: cacheable()}}, "cacheable: AddMenuItemCommand is not a query"),
        (
            {"queries": {GetMenuQuery: cacheable()}},
            "GetMenuQuery declares its cache policy already (@cacheable on the class)",
        ),
        (
            {"invalidations": {GetMenuQuery: invalidates(tags=["menu"])}},
            "invalidates: GetMenuQuery is a query; a query reads and changes nothing",
        ),
        (
            {"invalidations": {MenuItemSoldOut: invalidates(tags=["menu:{kind}"])}},
            "the field {kind} of tag 'menu:{kind}' of MenuItemSoldOut is not an attribute of MenuItemSoldOut",
        ),
        ({"cache": "redis"}, "cache: expected a RedisCache, got str"),
    ],
)
def test_registration_errors_say_what_is_wrong(options: dict[str, Any], message: str) -> None:
    services = services_with_redis()
    before = registered(services)
    with pytest.raises(ConfigurationError) as caught:
        services.add_query_caching(**options)  # type: ignore[attr-defined]
    assert message in str(caught.value)
    assert registered(services) == before  # nothing half-registered


def test_the_shared_repository_comes_first_and_one_registration_only() -> None:
    with pytest.raises(ConfigurationError, match=r"add_query_caching needs the shared Redis repository: call"):
        ServiceCollection().add_query_caching()  # type: ignore[attr-defined]
    services = services_with_redis()
    services.add_query_caching()  # type: ignore[attr-defined]
    before = registered(services)
    with pytest.raises(ConfigurationError, match=r"QueryCachingBehavior is already registered .* replace=True"):
        services.add_query_caching(namespace="other")  # type: ignore[attr-defined]
    assert registered(services) == before
    services.add_query_caching(namespace="other", replace=True)  # type: ignore[attr-defined]
    assert len(registered(services)) == len(before)
    assert services.build().get_required_service(QueryCachingBehavior).cache.namespace == "other"


def test_a_given_cache_is_used_as_it_is() -> None:
    repository = RedisRepository(RedisConfig(url="memory://query-caching-given"))
    cache = RedisCache(repository, namespace="mine")
    services = ServiceCollection()  # no shared repository needed
    services.add_query_caching(cache=cache)  # type: ignore[attr-defined]
    assert services.build().get_required_service(QueryCachingBehavior).cache is cache
    with pytest.raises(ConfigurationError, match="the RedisCache given as cache= has its own"):
        ServiceCollection().add_query_caching(cache=cache, namespace="x")  # type: ignore[attr-defined]
    assert not any(d.service_type is HostedService for d in services)  # it is the application's to close


@pytest.mark.parametrize(
    ("declare", "message"),
    [
        (lambda: cacheable(key="item:{id}")(GetUncachedMenuQuery), "the field {id} of key 'item:{id}' of Get"),
        (lambda: cacheable()(NotAQuery), "cacheable: NotAQuery is not a query (neuroglia.mediation.Query)"),
        (lambda: cacheable(key="")(GetUncachedMenuQuery), "key must be a non-empty format string"),
        (lambda: cacheable(key="{0}")(GetUncachedMenuQuery), "has a positional field {0}; name an attribute"),
        (lambda: cacheable(tags="menu"), "tags must be a list of str, got the single str 'menu'"),
        (lambda: cacheable(factory_soft_timeout=-1), "cacheable: factory_soft_timeout must be a finite duration"),
        (lambda: cacheable(options={"fail_safe": True}), "options must be a CacheOptions, got dict"),  # type: ignore[arg-type]
        (lambda: invalidates(), "invalidates needs tags=[...] or keys=[...]"),
        (lambda: invalidates(tags=["menu"])(object()), "invalidates decorates a class"),
    ],
)
def test_declaration_errors_say_what_is_wrong(declare: Callable[[], Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        declare()
    assert message in str(caught.value)


def test_policies_carry_the_cache_call_options() -> None:
    policy = cacheable(timedelta(seconds=30), key="k", fail_safe=True, options=CacheOptions(lease=None))
    assert policy.expiration == timedelta(seconds=30)
    assert policy.overrides == {"fail_safe": True}
    assert policy.options == CacheOptions(lease=None)
    assert (
        repr(invalidates(tags=["menu"], keys=["item:{item_id}"]))
        == "invalidates(tags=['menu'], keys=['item:{item_id}'])"
    )
