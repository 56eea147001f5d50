"""The cache's contract, the same assertions on memory:// and on a real redis-server."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import BaseModel

from neuroglia.data.redis import (
    CacheClosedError,
    CacheException,
    CacheOptions,
    InvalidArgumentError,
    RedisCache,
    RedisRepository,
    SerializationError,
)
from tests.support.cache import Item, Loader, eventually

if TYPE_CHECKING:
    from conftest import MakeCache

RepoFactory = Any


class Pizza(BaseModel):
    name: str
    toppings: list[str]


async def keys_of(repo: RedisRepository) -> list[str]:
    """Every key, as named on one server (on a cluster the namespace is the hash tag: ``{menu}:k``)."""
    return sorted([plain(k) async for k in repo.scan_async("*")])


def plain(key: str) -> str:
    """A key as one server names it: the cluster's namespace hash tag ``{menu}:`` back to ``menu:``."""
    return re.sub(r"\{([^{}]*)\}(?=[:#])", r"\1", key)


def stored(kind: str, name: str) -> str:
    """Where a cache's key ``menu#tag:x`` lives on backend ``kind`` (``{menu}#tag:x`` on a cluster)."""
    return re.sub(r"^([^:#{}]+)(?=[:#])", r"{\1}", name, count=1) if kind == "cluster" else name


# -- reads and writes ---------------------------------------------------------------


async def test_set_get_remove(backend: RedisRepository, make_cache: MakeCache) -> None:
    cache = make_cache(backend, "menu")
    assert await cache.get_async("item:1") is None
    await cache.set_async("item:1", {"name": "Margherita", "price": 8.5})
    assert await cache.get_async("item:1") == {"name": "Margherita", "price": 8.5}
    assert await keys_of(backend) == ["menu:item:1"]
    assert await cache.remove_async("item:1")
    assert not await cache.remove_async("item:1")
    assert await cache.get_async("item:1") is None


async def test_typed_values_are_rebuilt(backend: RedisRepository, make_cache: MakeCache) -> None:
    cache = make_cache(backend)
    await cache.set_async("item", Item("Margherita", 8.5))
    assert await cache.get_async("item", Item) == Item("Margherita", 8.5)
    await cache.set_async("pizza", Pizza(name="Diavola", toppings=["salami"]))
    assert await cache.get_async("pizza", Pizza) == Pizza(name="Diavola", toppings=["salami"])
    load = Loader(Item("Pepperoni", 10.0))
    miss = await cache.get_or_set_async("typed", load, type_=Item)
    hit = await cache.get_or_set_async("typed", load, type_=Item)
    assert miss == hit == Item("Pepperoni", 10.0)
    assert miss is load.value  # a miss returns the factory's own object when it has the type


async def test_without_a_type_hit_and_miss_return_the_same_shape(
    backend: RedisRepository, make_cache: MakeCache
) -> None:
    cache = make_cache(backend)
    load = Loader(Item("Margherita", 8.5))
    miss = await cache.get_or_set_async("k", load)
    hit = await cache.get_or_set_async("k", load)
    assert miss == hit == {"name": "Margherita", "price": 8.5}


async def test_a_cached_none_is_told_apart_from_a_miss(backend: RedisRepository, make_cache: MakeCache) -> None:
    cache = make_cache(backend)
    load = Loader(None)
    assert await cache.get_or_set_async("nothing", load) is None
    assert await cache.get_or_set_async("nothing", load) is None
    assert load.calls == 1  # None is cached by get_or_set (the decorator skips it by default)
    entry = await cache.get_entry_async("nothing")
    assert entry is not None
    assert entry.value is None
    assert await cache.get_entry_async("missing") is None


async def test_values_go_through_the_repositorys_envelope(
    backend: RedisRepository, make_cache: MakeCache, backend_kind: str
) -> None:
    from neuroglia.data.redis import read_envelope

    cache = make_cache(backend, "env")
    await cache.set_async("k", [1, 2, 3], tags=["a", "b"])
    raw = await backend.hgetall_async(stored(backend_kind, "env:k"))
    envelope = read_envelope(raw["v"])
    assert envelope is not None
    assert envelope.strategy == "json"
    assert envelope.payload == b"[1,2,3]"
    assert raw["t"] == "a\x1fb"
    assert len(raw["m"].split(",")) == 5


async def test_an_unrepresentable_value_raises_and_writes_nothing(
    backend: RedisRepository, make_cache: MakeCache
) -> None:
    cache = make_cache(backend)
    with pytest.raises(SerializationError):
        await cache.set_async("k", object(), tags=["t"])
    assert await keys_of(backend) == []
    load = Loader(object())
    with pytest.raises(SerializationError):
        await cache.get_or_set_async("k", load, tags=["t"])
    assert await keys_of(backend) == []  # no entry, no tag, no lease left behind
    load.value = "fine"
    assert await cache.get_or_set_async("k", load) == "fine"


async def test_an_entry_written_by_another_strategy_is_refused(
    repo_factory: RepoFactory, make_cache: MakeCache, backend_url: str
) -> None:
    json_cache = make_cache(await repo_factory(), "s")
    msgpack_cache = make_cache(await repo_factory(serializer="msgpack"), "s")
    await msgpack_cache.set_async("k", {"a": 1})
    assert await msgpack_cache.get_async("k") == {"a": 1}
    with pytest.raises(SerializationError, match="msgpack"):
        await json_cache.get_async("k")


async def test_bad_keys_and_namespaces_are_refused(backend: RedisRepository, make_cache: MakeCache) -> None:
    cache = make_cache(backend)
    for bad in ("", None, 3, b"bytes"):
        with pytest.raises(InvalidArgumentError, match="cache key"):
            await cache.get_async(bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError, match="cache key"):
            await cache.set_async(bad, 1)  # type: ignore[arg-type]
    for namespace in ("", "a#b"):
        with pytest.raises(InvalidArgumentError, match="namespace"):
            RedisCache(backend, namespace)
    with pytest.raises(InvalidArgumentError, match="tags"):
        await cache.set_async("k", 1, tags="menu")  # a str, not a list of tags
    with pytest.raises(InvalidArgumentError, match="unknown cache options"):
        cache.default_options.with_(duration=3)


async def test_the_repositorys_prefix_and_text_settings_are_respected(
    repo_factory: RepoFactory, make_cache: MakeCache, backend_url: str
) -> None:
    anchor = await repo_factory()
    prefixed = make_cache(await repo_factory(key_prefix="app:"), "menu")
    raw_bytes = make_cache(await repo_factory(key_prefix="app:", decode_responses=False), "menu")
    await prefixed.set_async("item:1", "margherita", tags=["menu"])
    assert await raw_bytes.get_async("item:1") == "margherita"
    assert await keys_of(anchor) == ["app:menu#tag:menu", "app:menu:item:1"]
    assert await raw_bytes.remove_by_tag_async("menu") == 1
    assert await keys_of(anchor) == []


# -- single-flight and the distributed lease ----------------------------------------------


async def test_concurrent_misses_run_the_factory_once(backend: RedisRepository, make_cache: MakeCache) -> None:
    cache = make_cache(backend)
    load = Loader("menu", delay=0.05)
    results = await asyncio.gather(*(cache.get_or_set_async("k", load) for _ in range(100)))
    assert results == ["menu"] * 100
    assert load.calls == 1
    stats = cache.statistics()
    assert stats.factory_runs == 1
    assert stats.stampede_waits_local == 99


async def test_a_cancelled_caller_does_not_cancel_the_shared_run(
    backend: RedisRepository, make_cache: MakeCache
) -> None:
    cache = make_cache(backend)
    load = Loader("value")
    load.gate = asyncio.Event()
    first = asyncio.create_task(cache.get_or_set_async("k", load))
    await load.started.wait()
    second = asyncio.create_task(cache.get_or_set_async("k", load))
    await asyncio.sleep(0.01)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    load.gate.set()
    assert await asyncio.wait_for(second, 5) == "value"
    assert load.calls == 1
    assert await cache.get_async("k") == "value"


async def test_a_second_process_waits_for_the_first_and_is_woken(
    repo_factory: RepoFactory, make_cache: MakeCache, backend_url: str
) -> None:
    # Two repositories (two connection pools) and two caches behave as two processes.
    a = make_cache(await repo_factory(), "menu")
    b = make_cache(await repo_factory(), "menu")
    load_a, load_b = Loader("from a"), Loader("from b")
    load_a.gate = asyncio.Event()
    in_a = asyncio.create_task(a.get_or_set_async("k", load_a, lease=10))
    await load_a.started.wait()
    in_b = asyncio.create_task(b.get_or_set_async("k", load_b, lease=10))
    await eventually(lambda: b.statistics().stampede_waits_distributed == 1, what="b waits on a's lease")
    loop = asyncio.get_running_loop()
    released = loop.time()
    load_a.gate.set()
    assert await asyncio.wait_for(in_b, 5) == "from a"
    woke_after = loop.time() - released
    assert await in_a == "from a"
    assert load_b.calls == 0
    assert woke_after < 2.0  # woken by a's write, long before the 10 s lease ran out
    assert [k for k in await keys_of(a.repository) if "#" in k] == []  # no lease, waiters or wake-up left


async def test_a_dead_lease_holder_is_taken_over_when_its_lease_runs_out(
    repo_factory: RepoFactory, make_cache: MakeCache, backend_url: str, backend_kind: str
) -> None:
    repo = await repo_factory()
    # A holder that died after taking the lease: its token stays until the lease runs out.
    assert await repo.set_async(
        stored(backend_kind, "menu#lease:k"), "token-of-a-dead-process", expiration=0.4, nx=True
    )
    cache = make_cache(repo, "menu")
    taker = Loader("taken over")
    started = time.monotonic()
    assert await asyncio.wait_for(cache.get_or_set_async("k", taker, lease=0.4), 5) == "taken over"
    took = time.monotonic() - started
    assert taker.calls == 1
    assert cache.statistics().stampede_waits_distributed == 1
    assert took >= 0.3  # it waited for the lease's end (how soon after is measured by the benchmark)


async def test_closing_a_cache_gives_its_lease_up_at_once(
    repo_factory: RepoFactory, make_cache: MakeCache, backend_url: str
) -> None:
    a = make_cache(await repo_factory(), "menu")
    b = make_cache(await repo_factory(), "menu")
    holder = Loader("never")
    holder.gate = asyncio.Event()
    stuck = asyncio.create_task(a.get_or_set_async("k", holder, lease=30))
    await holder.started.wait()
    waiting = asyncio.create_task(b.get_or_set_async("k", Loader("from b"), lease=30))
    await eventually(lambda: b.statistics().stampede_waits_distributed == 1, what="b waits on a's lease")
    await a.close()
    with pytest.raises(CacheClosedError):
        await stuck
    assert await asyncio.wait_for(waiting, 5) == "from b"  # not after the 30 s lease


async def test_a_failed_factory_releases_the_lease_at_once(
    repo_factory: RepoFactory, make_cache: MakeCache, backend_url: str
) -> None:
    a = make_cache(await repo_factory(), "menu")
    b = make_cache(await repo_factory(), "menu")
    failing = Loader("x")
    failing.gate = asyncio.Event()
    failing.fail = RuntimeError("database down")
    in_a = asyncio.create_task(a.get_or_set_async("k", failing, lease=30))
    await failing.started.wait()
    in_b = asyncio.create_task(b.get_or_set_async("k", Loader("from b"), lease=30))
    await eventually(lambda: b.statistics().stampede_waits_distributed == 1, what="b waits")
    failing.gate.set()
    with pytest.raises(RuntimeError, match="database down"):
        await in_a
    assert await asyncio.wait_for(in_b, 5) == "from b"  # not after 30 s


async def test_without_a_lease_every_process_computes(
    repo_factory: RepoFactory, make_cache: MakeCache, backend_url: str
) -> None:
    a = make_cache(await repo_factory(), "menu", lease=None)
    b = make_cache(await repo_factory(), "menu", lease=None)
    load = Loader("v", delay=0.05)
    await asyncio.gather(a.get_or_set_async("k", load), b.get_or_set_async("k", load))
    assert load.calls == 2


async def test_a_write_during_a_factory_run_is_not_overwritten(backend: RedisRepository, make_cache: MakeCache) -> None:
    cache = make_cache(backend)
    load = Loader("computed from the old data")
    load.gate = asyncio.Event()
    running = asyncio.create_task(cache.get_or_set_async("k", load))
    await load.started.wait()
    await cache.set_async("k", "written explicitly")
    load.gate.set()
    assert await running == "computed from the old data"  # its callers get it...
    assert await cache.get_async("k") == "written explicitly"  # ...but it does not replace the newer write


# -- tags -----------------------------------------------------------------------------------


async def test_remove_by_tag_removes_exactly_the_tagged_entries(
    backend: RedisRepository, make_cache: MakeCache
) -> None:
    cache = make_cache(backend, "menu")
    await cache.set_async("margherita", 1, tags=["menu", "pizza"])
    await cache.set_async("tiramisu", 2, tags=["menu", "dessert"])
    await cache.set_async("cola", 3, tags=["drinks"])
    await cache.set_async("plain", 4)
    assert await cache.remove_by_tag_async("menu") == 2
    assert await cache.get_async("margherita") is None
    assert await cache.get_async("tiramisu") is None
    assert await cache.get_async("cola") == 3
    assert await cache.get_async("plain") == 4
    # The removed entries left their other tags' sets too.
    assert await backend.zcard_async("menu#tag:pizza") == 0
    assert await backend.zcard_async("menu#tag:dessert") == 0
    assert await cache.remove_by_tag_async("menu") == 0
    assert await cache.remove_by_tag_async("never-used") == 0
    stats = cache.statistics()
    assert stats.tag_invalidations == 3
    assert stats.tag_removed_entries == 2


async def test_a_stale_tag_membership_never_deletes_a_later_entry(
    backend: RedisRepository, make_cache: MakeCache
) -> None:
    cache = make_cache(backend, "menu")
    await cache.set_async("k", "tagged", tags=["menu"])
    await cache.set_async("k", "untagged")  # the later version carries no tag
    assert await backend.zcard_async("menu#tag:menu") == 0
    assert await cache.remove_by_tag_async("menu") == 0
    assert await cache.get_async("k") == "untagged"
    await cache.set_async("k", "tagged again", tags=["other"])
    await cache.remove_async("k")
    assert await backend.zcard_async("menu#tag:other") == 0


async def test_tag_sets_expire_with_their_entries_and_shed_expired_members(
    backend: RedisRepository, make_cache: MakeCache, backend_kind: str
) -> None:
    cache = make_cache(backend, "menu")
    await cache.set_async("short", 1, expiration=0.05, tags=["menu"])
    await cache.set_async("long", 2, expiration=timedelta(minutes=5), tags=["menu"])
    ttl = await backend.pttl_async(stored(backend_kind, "menu#tag:menu"))
    assert 290_000 < ttl <= 300_000  # the set lives as long as its longest entry
    await asyncio.sleep(0.1)
    await cache.set_async("another", 3, expiration=60, tags=["menu"])  # writing the tag trims it
    members = await backend.zrange_async(stored(backend_kind, "menu#tag:menu"), 0, -1)
    assert sorted(plain(m) for m in members) == ["menu:another", "menu:long"]
    await cache.set_async("alone", 1, expiration=0.05, tags=["brief"])
    await asyncio.sleep(0.15)
    assert not await backend.exists_async(stored(backend_kind, "menu#tag:brief"))


async def test_a_large_tag_is_removed_in_batches(backend: RedisRepository, make_cache: MakeCache) -> None:
    cache = make_cache(backend, "menu", tag_batch_size=7)
    for n in range(50):
        await cache.set_async(f"item:{n}", n, tags=["menu"])
    await cache.set_async("other", 1, tags=["drinks"])
    assert await cache.remove_by_tag_async("menu") == 50
    assert await keys_of(backend) == ["menu#tag:drinks", "menu:other"]


async def test_an_entry_set_just_before_the_tag_removal_is_not_left_behind(
    backend: RedisRepository, make_cache: MakeCache
) -> None:
    cache = make_cache(backend, "menu", tag_batch_size=3)
    for round_ in range(10):
        for n in range(10):
            await cache.set_async(f"item:{n}", round_, tags=["menu"])
        writes = [asyncio.create_task(cache.set_async(f"late:{n}", round_, tags=["menu"])) for n in range(5)]
        await asyncio.gather(*writes)  # completed before the removal begins
        removal = asyncio.create_task(cache.remove_by_tag_async("menu"))
        racing = [asyncio.create_task(cache.set_async(f"racing:{n}", round_, tags=["menu"])) for n in range(5)]
        await removal
        await asyncio.gather(*racing)
        for n in range(10):
            assert await cache.get_async(f"item:{n}") is None
        for n in range(5):
            assert await cache.get_async(f"late:{n}") is None
        await cache.remove_by_tag_async("menu")  # the racing writes may have landed on either side


async def test_concurrent_removals_of_one_tag_both_return_after_everything_is_gone(
    repo_factory: RepoFactory, make_cache: MakeCache, backend_url: str
) -> None:
    a = make_cache(await repo_factory(), "menu", tag_batch_size=5)
    b = make_cache(await repo_factory(), "menu", tag_batch_size=5)
    for n in range(60):
        await a.set_async(f"item:{n}", n, tags=["menu"])

    async def remove_then_check(cache: RedisCache) -> int:
        removed = await cache.remove_by_tag_async("menu")
        remaining = [n for n in range(60) if await cache.get_async(f"item:{n}") is not None]
        assert remaining == []
        return removed

    counts = await asyncio.gather(remove_then_check(a), remove_then_check(b))
    assert sum(counts) == 60


async def test_clear_removes_the_namespace_only(backend: RedisRepository, make_cache: MakeCache) -> None:
    menu = make_cache(backend, "menu")
    other = make_cache(backend, "other")
    await menu.set_async("a", 1, tags=["t"])
    await menu.set_async("b", 2)
    await other.set_async("a", 3)
    assert await menu.clear_async() == 2
    assert await menu.get_async("a") is None
    assert await other.get_async("a") == 3
    assert await keys_of(backend) == ["other:a"]


# -- lifetime -------------------------------------------------------------------------------


async def test_a_closed_cache_refuses_calls_and_cancels_its_work(
    backend: RedisRepository, make_cache: MakeCache
) -> None:
    cache = make_cache(backend)
    load = Loader("v")
    load.gate = asyncio.Event()
    waiting = asyncio.create_task(cache.get_or_set_async("k", load))
    await load.started.wait()
    await cache.close()
    with pytest.raises(CacheClosedError):
        await waiting
    with pytest.raises(CacheClosedError):
        await cache.get_async("k")
    assert cache.closed
    assert backend.is_connected  # the repository is not the cache's to close


async def test_a_factory_cancelled_by_itself_is_an_error_not_a_closed_cache(
    backend: RedisRepository, make_cache: MakeCache
) -> None:
    cache = make_cache(backend)

    async def cancelled() -> str:
        raise asyncio.CancelledError

    with pytest.raises(CacheException, match="was cancelled") as caught:
        await cache.get_or_set_async("k", cancelled)
    assert not isinstance(caught.value, CacheClosedError)
    assert await cache.get_or_set_async("k", Loader("fine")) == "fine"
    assert cache.statistics().stampede_waits_distributed == 0  # its lease was given up, not left to run out


async def test_per_call_options_object_and_overrides(backend: RedisRepository, make_cache: MakeCache) -> None:
    cache = make_cache(backend, default_expiration=timedelta(minutes=1), fail_safe=True)
    assert cache.default_options.fail_safe
    assert cache.default_options.expiration_s == 60
    custom = CacheOptions(expiration=5)
    await cache.set_async("k", 1, options=custom)
    entry = await cache.get_entry_async("k")
    assert entry is not None
    assert entry.expires_at is not None
    assert entry.created_at is not None
    assert entry.expires_at - entry.created_at == pytest.approx(5, abs=0.01)
    await cache.set_async("k2", 1, options=custom, expiration=7)  # a keyword wins over the object
    entry = await cache.get_entry_async("k2")
    assert entry is not None
    assert entry.expires_at is not None
    assert entry.created_at is not None
    assert entry.expires_at - entry.created_at == pytest.approx(7, abs=0.01)
