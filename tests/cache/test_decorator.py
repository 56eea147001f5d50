"""The @cache.cached decorator: keys from arguments, errors, methods, neuroglia query handlers."""

from __future__ import annotations

import asyncio
import enum
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Optional

import pytest
from neuroglia.core import OperationResult
from neuroglia.dependency_injection import ServiceCollection
from neuroglia.mediation import Mediator, Query, QueryHandler

from neuroglia.data.redis import InvalidArgumentError, RedisCache, RedisConfig, RedisRepository
from tests.support.cache import Item


@pytest.fixture
async def cache() -> AsyncIterator[RedisCache]:
    repo = RedisRepository(RedisConfig(url=f"memory://cache-decorator-{uuid.uuid4().hex}"))
    try:
        async with RedisCache(repo, "dec", default_expiration=timedelta(minutes=5)) as c:
            yield c
    finally:
        await repo.disconnect()


class Size(enum.Enum):
    SMALL = "s"
    LARGE = "l"


@dataclass(frozen=True)
class Filter:
    category: str
    vegetarian: bool = False


@dataclass
class MenuQuery:  # a plain (unhashable) dataclass, as queries usually are
    category: str
    page: int = 1


async def test_format_key_and_invalidate(cache: RedisCache) -> None:
    calls: list[str] = []

    @cache.cached(key="item:{item_id}", tags=["menu"])
    async def get_item(item_id: str) -> Item:
        calls.append(item_id)
        return Item(item_id, 8.5)

    assert await get_item("margherita") == Item("margherita", 8.5)
    assert await get_item("margherita") == Item("margherita", 8.5)  # rebuilt from the annotation
    assert calls == ["margherita"]
    assert get_item.key_for("margherita") == "item:margherita"
    assert await cache.get_async("item:margherita", Item) == Item("margherita", 8.5)
    assert await get_item.invalidate_async("margherita")
    assert not await get_item.invalidate_async("margherita")
    await get_item("margherita")
    assert calls == ["margherita", "margherita"]
    assert await cache.remove_by_tag_async("menu") == 1
    assert get_item.__name__ == "get_item"
    assert get_item.__wrapped__ is not None


async def test_attribute_and_index_access_in_keys_and_tags(cache: RedisCache) -> None:
    @cache.cached(key="menu:{query.category}:{query.page}", tags=["menu", "category:{query.category}"])
    async def get_menu(query: MenuQuery) -> list[str]:
        return [f"{query.category}-{n}" for n in range(query.page)]

    assert await get_menu(MenuQuery("pizza", 2)) == ["pizza-0", "pizza-1"]
    assert get_menu.key_for(MenuQuery("pizza", 2)) == "menu:pizza:2"
    await get_menu(MenuQuery("dessert"))
    assert await cache.remove_by_tag_async("category:pizza") == 1
    assert await cache.get_async("menu:dessert:1") == ["dessert-0"]

    @cache.cached(key="first:{ids[0]}")
    async def first(ids: tuple[str, ...]) -> str:
        return ids[0]

    assert first.key_for(("a", "b")) == "first:a"

    @cache.cached(key="page:{n:03d}:{size.value}:{name!r}:{query.category[0]}")
    async def formatted(n: int, size: Size, name: str, query: MenuQuery) -> str:
        return "x"

    assert formatted.key_for(7, Size.LARGE, "a", MenuQuery("pizza")) == "page:007:l:'a':p"
    # Arguments bound by keyword, in any order, with defaults: the same key as positionally.
    assert get_menu.key_for(query=MenuQuery("pizza", 2)) == "menu:pizza:2"
    with pytest.raises(TypeError, match="get_menu"):
        get_menu.key_for(MenuQuery("pizza"), unknown=1)  # type: ignore[call-arg]


async def test_concurrent_calls_run_the_function_once(cache: RedisCache) -> None:
    runs = 0

    @cache.cached(key="slow:{n}")
    async def slow(n: int) -> int:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.05)
        return n * 2

    assert await asyncio.gather(*(slow(21) for _ in range(50))) == [42] * 50
    assert runs == 1


def test_decoration_time_errors_name_the_problem(cache: RedisCache) -> None:
    with pytest.raises(InvalidArgumentError, match=r"\{id\} is not a parameter of .*item_id"):

        @cache.cached(key="item:{id}")
        async def get_item(item_id: str) -> str:
            return item_id

    with pytest.raises(InvalidArgumentError, match="positional field"):

        @cache.cached(key="item:{}")
        async def positional(item_id: str) -> str:
            return item_id

    with pytest.raises(InvalidArgumentError, match="async functions"):

        @cache.cached(key="x")
        def sync(item_id: str) -> str:
            return item_id

    with pytest.raises(InvalidArgumentError, match="not a parameter"):

        @cache.cached(key="x", tags=["cat:{category}"])
        async def tagged(item_id: str) -> str:
            return item_id

    with pytest.raises(InvalidArgumentError, match="format string or a callable"):
        cache.cached(key=42)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="non-empty"):
        cache.cached(key="")
    with pytest.raises(InvalidArgumentError, match="tags"):
        cache.cached(tags="menu")


async def test_call_time_errors_name_the_argument(cache: RedisCache) -> None:
    @cache.cached(key="menu:{query}")
    async def whole_object(query: MenuQuery) -> str:
        return "x"

    with pytest.raises(InvalidArgumentError, match=r"\{query\}.*MenuQuery.*attributes"):
        await whole_object(MenuQuery("pizza"))

    @cache.cached(key="items:{items}")
    async def a_list(items: list[str]) -> str:
        return "x"

    with pytest.raises(InvalidArgumentError, match=r"\{items\}.*list.*unhashable"):
        await a_list(["a"])

    @cache.cached(key="menu:{query.missing}")
    async def missing(query: MenuQuery) -> str:
        return "x"

    with pytest.raises(InvalidArgumentError, match="cannot be read"):
        await missing(MenuQuery("pizza"))

    @cache.cached()
    async def default_key(items: list[str]) -> str:
        return "x"

    with pytest.raises(InvalidArgumentError, match=r"argument items .*list.*unhashable"):
        await default_key(["a"])

    @cache.cached()
    async def opaque(thing: object) -> str:
        return "x"

    with pytest.raises(InvalidArgumentError, match=r"argument thing .*object.*no stable cache key"):
        await opaque(object())

    with pytest.raises(TypeError, match="default_key"):
        await default_key()  # type: ignore[call-arg]


async def test_default_keys_are_stable_and_complete(cache: RedisCache) -> None:
    @cache.cached()
    async def search(
        text: str,
        size: Size = Size.SMALL,
        when: date | None = None,
        flt: Filter | None = None,
        *tags: str,
        **extra: int,
    ) -> str:
        return text

    key = search.key_for("margherita", Size.LARGE, date(2024, 6, 1), Filter("pizza"), "a", "b", z=1, y=2)
    assert key.startswith(f"{__name__}.test_default_keys_are_stable_and_complete.<locals>.search(")
    assert "text='margherita'" in key
    assert "size=Size.LARGE" in key
    assert "when=date(2024-06-01)" in key
    assert "flt=Filter(category='pizza',vegetarian=False)" in key
    assert key.endswith("'a','b',y=2,z=1)")
    # Positional or keyword, defaults spelled out or not: the same call, the same key.
    assert search.key_for("x") == search.key_for(text="x", size=Size.SMALL)
    assert search.key_for("x") != search.key_for("x", Size.LARGE)
    assert search.key_for("a,b") != search.key_for("a", "b")  # type: ignore[arg-type]

    @cache.cached()
    async def by_query(query: MenuQuery, ids: frozenset[int]) -> str:
        return "x"

    assert by_query.key_for(MenuQuery("pizza"), frozenset({3, 1, 2})) == by_query.key_for(
        MenuQuery("pizza"), frozenset({2, 1, 3})
    )

    @cache.cached()
    async def long(text: str) -> str:
        return text

    long_key = long.key_for("x" * 500)
    assert len(long_key) <= 256  # the bound of a default key
    assert long_key != long.key_for("x" * 501)


async def test_none_is_not_cached_unless_asked(cache: RedisCache) -> None:
    runs = {"skip": 0, "keep": 0}

    @cache.cached(key="skip:{item_id}")
    async def skip(item_id: str) -> Item | None:
        runs["skip"] += 1
        return None

    @cache.cached(key="keep:{item_id}", cache_none=True)
    async def keep(item_id: str) -> Optional[Item]:  # noqa: UP045 - the older spelling works too
        runs["keep"] += 1
        return None

    for _ in range(3):
        assert await skip("x") is None
        assert await keep("x") is None
    assert runs == {"skip": 3, "keep": 1}


async def test_list_annotations_and_callable_keys(cache: RedisCache) -> None:
    @cache.cached(key=lambda category, limit=3: f"top:{category}:{limit}")
    async def top(category: str, limit: int = 3) -> list[Item]:
        return [Item(f"{category}{n}", float(n)) for n in range(limit)]

    first = await top("pizza")
    second = await top("pizza")
    assert first == second == [Item("pizza0", 0.0), Item("pizza1", 1.0), Item("pizza2", 2.0)]
    assert top.key_for("pizza") == "top:pizza:3"

    @cache.cached(key=lambda n: "")
    async def bad(n: int) -> int:
        return n

    with pytest.raises(InvalidArgumentError, match="non-empty str"):
        await bad(1)


async def test_explicit_type_wins_over_the_annotation(cache: RedisCache) -> None:
    @cache.cached(key="raw:{n}", type_=Item)
    async def untyped(n: int):  # type: ignore[no-untyped-def]
        return Item(str(n), 1.0)

    await untyped(1)
    assert await untyped(1) == Item("1", 1.0)
    with pytest.raises(InvalidArgumentError, match="type_"):
        cache.cached(type_=dict[str, int])


class PriceBook:
    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self.runs = 0

    async def shared_price(self, item_id: str) -> float:
        self.runs += 1
        return 8.5

    async def own_price(self, item_id: str) -> float:
        self.runs += 1
        return 9.0 if self.tenant == "b" else 8.0


async def test_methods_share_by_default_and_can_key_on_self(cache: RedisCache) -> None:
    class Book(PriceBook):
        shared_price = cache.cached()(PriceBook.shared_price)  # type: ignore[assignment]
        own_price = cache.cached(key="price:{self.tenant}:{item_id}")(PriceBook.own_price)  # type: ignore[assignment]

    a, b = Book("a"), Book("b")
    assert await a.shared_price("m") == 8.5
    assert await b.shared_price("m") == 8.5
    assert a.runs + b.runs == 1  # self is not part of the default key
    assert await a.own_price("m") == 8.0
    assert await b.own_price("m") == 9.0
    assert await a.own_price.invalidate_async("m")  # bound: no self to pass
    assert a.own_price.key_for("m") == "price:a:m"
    assert await cache.get_async("price:b:m") == 9.0
    assert await cache.get_async("price:a:m") is None


# -- a neuroglia query handler --------------------------------------------------------------


@dataclass
class MenuItemDto:
    id: str
    name: str
    toppings: list[str] = field(default_factory=list)


@dataclass
class GetMenuItemQuery(Query[OperationResult[MenuItemDto]]):
    item_id: str


async def test_a_query_handler_through_the_mediator(cache: RedisCache) -> None:
    database = {"margherita": MenuItemDto("margherita", "Margherita", ["tomato", "mozzarella"])}
    loads: list[str] = []

    class GetMenuItemQueryHandler(QueryHandler[GetMenuItemQuery, OperationResult[MenuItemDto]]):
        @cache.cached(key="menu:item:{query.item_id}", tags=["menu"])
        async def handle_async(self, query: GetMenuItemQuery) -> OperationResult[MenuItemDto]:
            loads.append(query.item_id)
            item = database.get(query.item_id)
            if item is None:
                return self.not_found(MenuItemDto, query.item_id)
            return self.ok(item)

    services = ServiceCollection()
    services.add_scoped(GetMenuItemQueryHandler)
    services.add_singleton(Mediator)
    registry = getattr(Mediator, "_handler_registry", None)
    Mediator._handler_registry = {GetMenuItemQuery: GetMenuItemQueryHandler}  # what Mediator.configure fills
    try:
        mediator = services.build().get_required_service(Mediator)
        first = await mediator.execute_async(GetMenuItemQuery("margherita"))
        second = await mediator.execute_async(GetMenuItemQuery("margherita"))
        missing = await mediator.execute_async(GetMenuItemQuery("calzone"))
        missing_again = await mediator.execute_async(GetMenuItemQuery("calzone"))
    finally:
        if registry is None:
            del Mediator._handler_registry
        else:
            Mediator._handler_registry = registry
    assert isinstance(second, OperationResult)
    assert second.status == 200
    assert second.is_success
    assert second.data == first.data == database["margherita"]
    assert isinstance(second.data, MenuItemDto)  # rebuilt from OperationResult[MenuItemDto]
    assert missing.status == 404
    assert missing_again.status == 404
    assert loads == ["margherita", "calzone", "calzone"]  # an error result is never cached
    handler = GetMenuItemQueryHandler()
    assert await handler.handle_async.invalidate_async(GetMenuItemQuery("margherita"))
