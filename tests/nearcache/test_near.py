"""NearCache without a transport: what it serves, what it keeps, what it drops (a fake clock, replies given by hand)."""

from __future__ import annotations

from typing import Any

import pytest

from neuroglia.data.redis import CacheCommandError, CacheMetrics, Delivery, NearCacheOptions
from neuroglia.data.redis.nearcache import MISS, Entry, NearCache
from neuroglia.data.redis.testing import FakeClock


def make(clock: FakeClock, metrics: CacheMetrics | None = None, **options: Any) -> NearCache:
    near = NearCache(NearCacheOptions(**options), key_prefix="app:", metrics=metrics, clock=clock)
    near.ready = True  # as a confirmed tracking session would
    near.trusted_until = clock() + near.trust_window
    return near


def read(near: NearCache, args: tuple[Any, ...], *replies: Any) -> Any:
    """One read through the near cache, Redis' replies to its batch given by hand."""
    found = near.get(args)
    if found is not MISS:
        return found
    fetch = near.fetch(args)
    assert fetch is not None, f"{args} is not cacheable"
    try:
        return fetch.reply if fetch.done else fetch.finish(list(replies))
    finally:
        fetch.close()


def test_a_read_is_sent_with_its_keys_ttl_and_kept() -> None:
    clock = FakeClock()
    near = make(clock)
    fetch = near.fetch(("GET", "app:menu"))
    assert fetch is not None
    assert fetch.commands == (("GET", "app:menu"), ("PTTL", "app:menu"))
    assert fetch.finish([b"pizza", -1]) == b"pizza"
    fetch.close()
    assert near.get(("GET", "app:menu")) == b"pizza"
    stats = near.statistics()
    assert (stats.hits, stats.misses, stats.entries) == (1, 1, 1)


def test_the_keys_ttl_bounds_the_entry_from_when_the_read_began() -> None:
    clock = FakeClock()
    near = make(clock, heartbeat_interval=None)
    fetch = near.fetch(("GET", "app:session"))
    assert fetch is not None
    clock.advance(0.4)  # the round trip
    fetch.finish([b"s", 1000])  # PTTL: one second left when Redis answered
    fetch.close()
    clock.advance(0.59)
    assert near.get(("GET", "app:session")) == b"s"
    clock.advance(0.01)  # one second after the read began: Redis may have expired it
    assert near.get(("GET", "app:session")) is MISS
    assert near.statistics().evictions == 1


def test_a_missing_key_is_kept_as_missing() -> None:
    near = make(FakeClock())
    assert read(near, ("GET", "app:none"), None, -2) is None
    assert near.get(("GET", "app:none")) is None  # a hit: None, not MISS


def test_a_failed_ttl_keeps_nothing_and_a_failed_read_raises() -> None:
    near = make(FakeClock())
    refused = CacheCommandError("WRONGTYPE").with_delivery(Delivery.NOT_APPLIED)
    assert read(near, ("GET", "app:k"), b"v", refused) == b"v"
    assert near.get(("GET", "app:k")) is MISS
    with pytest.raises(CacheCommandError):
        read(near, ("HGET", "app:k", "f"), refused, -1)
    assert near.store.tracked_keys() == 0  # the reads ended


def test_nothing_is_kept_without_a_confirmed_tracking_session() -> None:
    clock = FakeClock()
    near = make(clock)
    near.ready = False
    assert read(near, ("GET", "app:k"), b"v", -1) == b"v"
    assert len(near.store) == 0


def test_hits_stop_when_redis_was_not_heard_from_lately_and_resume_after() -> None:
    clock = FakeClock()
    near = make(clock, heartbeat_interval=1.0)
    read(near, ("GET", "app:k"), b"v", -1)
    clock.advance(1.9)
    assert near.serving
    assert near.get(("GET", "app:k")) == b"v"
    clock.advance(0.1)  # two heartbeat intervals without proof
    assert not near.serving
    assert near.get(("GET", "app:k")) is MISS
    assert len(near.store) == 1  # kept: nothing says it changed, only that it might have
    near.trusted_until = clock() + near.trust_window  # a heartbeat answered
    assert near.get(("GET", "app:k")) == b"v"


def test_a_reply_extends_the_trust_like_a_heartbeat() -> None:
    clock = FakeClock()
    near = make(clock, heartbeat_interval=1.0)
    clock.advance(1.5)
    read(near, ("GET", "app:k"), b"v", -1)  # began at 1.5: proves the connection up to then
    clock.advance(1.9)
    assert near.get(("GET", "app:k")) == b"v"


@pytest.mark.parametrize(
    "args",
    [
        ("SCAN", "0"),  # not a cacheable command
        ("GET",),  # no key
        ("GET", 7),  # not a key
        ("GET", ""),
        ("GET", "app:" + "x" * 2000),  # too long to track
        ("MGET", b"", 7),  # none of its keys cacheable
    ],
)
def test_what_is_not_cacheable_goes_to_redis_untouched(args: tuple[Any, ...]) -> None:
    assert make(FakeClock()).fetch(args) is None


def test_commands_and_prefixes_limit_what_is_cached() -> None:
    near = make(FakeClock(), commands=["GET"], prefixes=["menu:"])
    assert near.fetch(("HGETALL", "app:menu:1")) is None
    assert near.fetch(("GET", "app:orders:1")) is None  # the prefixes are below the repository's key_prefix
    assert near.fetch(("GET", b"app:orders:1")) is None
    assert near.fetch(("GET", "app:menu:1")) is not None
    assert near.fetch(("GET", b"app:menu:1")) is not None
    assert near.cacheable("app:menu:1")
    assert not near.cacheable("menu:1")


def test_mget_reads_only_the_keys_not_held_and_keeps_them_one_by_one() -> None:
    near = make(FakeClock())
    read(near, ("GET", "app:a"), b"1", -1)
    fetch = near.fetch(("MGET", "app:a", "app:b", "app:c"))
    assert fetch is not None
    assert fetch.commands == (("MGET", "app:b", "app:c"), ("PTTL", "app:b"), ("PTTL", "app:c"))
    assert fetch.finish([[b"2", None], -1, -2]) == [b"1", b"2", None]
    fetch.close()
    assert near.get(("GET", "app:b")) == b"2"
    assert near.get(("GET", "app:c")) is None
    whole = near.fetch(("MGET", "app:c", "app:a"))
    assert whole is not None
    assert whole.done
    assert whole.reply == [None, b"1"]
    whole.close()


def test_mget_keeps_the_keys_that_may_be_kept_and_reads_the_others_every_time() -> None:
    near = make(FakeClock(), prefixes=["menu:"])
    fetch = near.fetch(("MGET", "app:menu:1", "app:orders:1", "app:menu:2"))
    assert fetch is not None
    assert fetch.commands == (
        ("MGET", "app:menu:1", "app:orders:1", "app:menu:2"),
        ("PTTL", "app:menu:1"),
        ("PTTL", "app:menu:2"),
    )
    assert fetch.finish([[b"m1", b"o1", b"m2"], -1, -1]) == [b"m1", b"o1", b"m2"]
    fetch.close()
    again = near.fetch(("MGET", "app:menu:1", "app:orders:1", "app:menu:2"))
    assert again is not None
    assert again.commands == (("MGET", "app:orders:1"),)
    assert again.finish([[b"o2"]]) == [b"m1", b"o2", b"m2"]
    again.close()
    assert near.store.tracked_keys() == 2


def test_an_invalidation_while_a_read_is_in_flight_keeps_nothing() -> None:
    near = make(FakeClock())
    fetch = near.fetch(("GET", "app:k"))
    assert fetch is not None
    near.on_push([b"invalidate", [b"app:k"]])  # came in before the reply
    assert fetch.finish([b"old", -1]) == b"old"  # the caller gets what Redis said
    fetch.close()
    assert near.get(("GET", "app:k")) is MISS


def test_a_local_write_while_a_read_is_in_flight_keeps_nothing() -> None:
    near = make(FakeClock())
    fetch = near.fetch(("HGETALL", "app:order"))
    assert fetch is not None
    near.wrote((("HSET", "app:order", "status", "baked"),))
    fetch.finish([[b"status", b"raw"], -1])
    fetch.close()
    assert near.get(("HGETALL", "app:order")) is MISS


def test_writes_drop_their_keys_reads_do_not() -> None:
    near = make(FakeClock())
    for key in ("app:a", "app:b", "app:c", "app:d"):
        read(near, ("GET", key), b"v", -1)
    near.wrote((("EXISTS", "app:a"), ("TTL", "app:b")))
    assert near.get(("GET", "app:a")) == b"v"
    assert near.get(("GET", "app:b")) == b"v"
    near.wrote((("SET", "app:a", "w"),))
    near.wrote((("MULTI",), ("DEL", "app:b"), ("EXPIRE", "app:c", 5), ("EXEC",)))
    assert [near.get(("GET", k)) for k in ("app:a", "app:b", "app:c")] == [MISS, MISS, MISS]
    assert near.get(("GET", "app:d")) == b"v"
    near.wrote((("EVALSHA", "abc", 1, "app:d", "arg"),))  # a script's keys
    assert near.get(("GET", "app:d")) is MISS
    assert near.statistics().invalidations == 4


def test_flushdb_flushes() -> None:
    near = make(FakeClock())
    read(near, ("GET", "app:a"), b"v", -1)
    near.wrote((("FLUSHDB",),))
    assert len(near.store) == 0
    assert near.statistics().flushes == 1


@pytest.mark.parametrize(
    ("message", "flushed"),
    [
        ([b"invalidate", [b"app:a"]], False),
        ([b"invalidate", None], True),  # FLUSHDB/FLUSHALL, or the tracking table overflowed
        ([b"tracking-redir-broken", 12], True),
    ],
)
def test_push_messages(message: list[Any], flushed: bool) -> None:
    near = make(FakeClock())
    read(near, ("GET", "app:a"), b"1", -1)
    read(near, ("GET", "app:b"), b"2", -1)
    near.on_push(message)
    assert near.get(("GET", "app:a")) is MISS
    assert (near.get(("GET", "app:b")) is MISS) is flushed
    assert near.statistics().flushes == int(flushed)


def test_other_push_messages_are_ignored() -> None:
    near = make(FakeClock())
    read(near, ("GET", "app:a"), b"1", -1)
    near.on_push([b"message", b"channel", b"data"])
    near.on_push([])
    assert near.get(("GET", "app:a")) == b"1"


def test_figures_go_to_the_repository_metrics() -> None:
    clock = FakeClock()
    metrics = CacheMetrics()
    near = make(clock, metrics, max_entries=1, max_age=10)
    read(near, ("GET", "app:a"), b"1", -1)
    read(near, ("GET", "app:a"), b"1", -1)  # a hit
    read(near, ("GET", "app:b"), b"2", -1)  # evicts a
    near.on_push([b"invalidate", [b"app:b"]])
    read(near, ("GET", "app:c"), b"3", -1)
    clock.advance(10)
    assert near.get(("GET", "app:c")) is MISS  # expired
    near.flush("connection_lost")
    assert metrics.get_counter("near_cache_hits_total") == 1
    assert metrics.get_counter("near_cache_misses_total") == 3
    assert metrics.get_counter("near_cache_evictions_total", {"reason": "size"}) == 1
    assert metrics.get_counter("near_cache_evictions_total", {"reason": "expired"}) == 1
    assert metrics.get_counter("near_cache_invalidations_total", {"source": "redis"}) == 1
    assert metrics.get_counter("near_cache_flushes_total", {"reason": "connection_lost"}) == 1
    stats = near.statistics()
    assert (stats.hits, stats.misses, stats.evictions, stats.invalidations, stats.flushes) == (1, 3, 2, 1, 1)
    assert stats.hit_ratio == 0.25


def test_removal_listeners_are_told_and_a_failing_one_is_contained(caplog: pytest.LogCaptureFixture) -> None:
    near = make(FakeClock())
    seen: list[tuple[str, int]] = []

    def failing(entries: list[Entry], reason: str) -> None:
        raise RuntimeError("listener bug")

    def listening(entries: list[Entry], reason: str) -> None:
        seen.append((reason, len(entries)))

    near.add_listener(failing)
    near.add_listener(listening)
    read(near, ("GET", "app:a"), b"1", -1)
    near.invalidate(["app:a"])
    near.remove_listener(failing)
    near.remove_listener(failing)  # twice: no error
    assert seen == [("written", 1)]
    assert "removal listener failed" in caplog.text
