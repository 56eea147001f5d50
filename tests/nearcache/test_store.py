"""The near cache's store alone: bounds, deadlines, and which reads may be stored (a fake clock, no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from neuroglia.data.redis.nearcache import MISS, Entry, NearCacheStore
from neuroglia.data.redis.nearcache.store import ENTRY_OVERHEAD, MAX_KEY_LENGTH, key_of, size_of
from neuroglia.data.redis.testing import FakeClock


class Removals:
    """Records what the store reports as removed."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, list[tuple[Any, ...]]]] = []

    def __call__(self, entries: list[Entry], reason: str) -> None:
        self.seen.append((reason, [entry.args for entry in entries]))

    def reasons(self) -> list[str]:
        return [reason for reason, _ in self.seen]


def make(
    clock: FakeClock, *, max_entries: int = 100, max_bytes: int = 1 << 20, max_age: float | None = 60.0
) -> tuple[NearCacheStore, Removals]:
    removals = Removals()
    return NearCacheStore(max_entries, max_bytes, max_age, clock=clock, on_remove=removals), removals


def cost(args: tuple[Any, ...], reply: Any) -> int:
    """Bytes the store counts for one entry."""
    return ENTRY_OVERHEAD + size_of(reply) + sum(size_of(arg) for arg in args)


def read(store: NearCacheStore, key: str, reply: Any, ttl: float | None = None, command: str = "GET") -> bool:
    """One complete read of ``key``: begin, store, end."""
    ticket = store.begin([key])
    try:
        return store.store(ticket, 0, (command, key), reply, ttl)
    finally:
        store.end(ticket)


def test_a_stored_read_is_served_until_its_key_is_invalidated() -> None:
    clock = FakeClock()
    store, removals = make(clock)
    assert read(store, "menu", b"pizza")
    assert store.get(("GET", "menu")) == b"pizza"
    assert store.invalidate([b"menu"]) == 1  # Redis names keys in bytes: the same key
    assert store.get(("GET", "menu")) is MISS
    assert removals.seen == [("invalidated", [("GET", "menu")])]
    assert store.tracked_keys() == 0
    assert len(store) == 0
    assert store.size_bytes == 0


def test_a_missing_key_is_cached_as_none_not_as_a_miss() -> None:
    store, _ = make(FakeClock())
    assert read(store, "nothing", None)
    assert store.get(("GET", "nothing")) is None


def test_invalidating_a_key_drops_every_command_read_from_it() -> None:
    store, _ = make(FakeClock())
    ticket = store.begin(["order:7", "order:7"])
    assert store.store(ticket, 0, ("HGET", "order:7", "status"), b"baking", None)
    assert store.store(ticket, 1, ("HGETALL", "order:7"), [b"status", b"baking"], None)
    store.end(ticket)
    assert read(store, "order:8", b"other")
    assert store.invalidate(["order:7"]) == 2
    assert store.get(("HGET", "order:7", "status")) is MISS
    assert store.get(("HGETALL", "order:7")) is MISS
    assert store.get(("GET", "order:8")) == b"other"


def test_a_read_in_flight_across_an_invalidation_is_not_stored() -> None:
    store, _ = make(FakeClock())
    ticket = store.begin(["menu"])
    store.invalidate(["menu"])  # the invalidation arrived before the reply
    assert not store.valid(ticket, 0)
    assert not store.store(ticket, 0, ("GET", "menu"), b"old", None)
    store.end(ticket)
    assert store.get(("GET", "menu")) is MISS
    assert store.tracked_keys() == 0
    # A read that begins after the invalidation stores normally.
    assert read(store, "menu", b"new")
    assert store.get(("GET", "menu")) == b"new"


def test_a_read_in_flight_across_a_flush_is_not_stored() -> None:
    store, removals = make(FakeClock())
    assert read(store, "a", b"1")
    ticket = store.begin(["b"])
    assert store.flush() == 1
    assert not store.store(ticket, 0, ("GET", "b"), b"2", None)
    store.end(ticket)
    assert len(store) == 0
    assert store.tracked_keys() == 0
    assert removals.reasons() == ["flushed"]


def test_an_invalidation_of_another_key_does_not_stop_a_read() -> None:
    store, _ = make(FakeClock())
    ticket = store.begin(["a"])
    store.invalidate(["b"])
    assert store.store(ticket, 0, ("GET", "a"), b"1", None)
    store.end(ticket)
    assert store.get(("GET", "a")) == b"1"


def test_concurrent_reads_of_one_key_share_its_state_until_the_last_ends() -> None:
    store, _ = make(FakeClock())
    first = store.begin(["k"])
    second = store.begin(["k"])
    store.end(first)
    assert store.tracked_keys() == 1  # the second read still holds it
    assert store.keys_being_read() == ["k"]
    assert store.store(second, 0, ("GET", "k"), b"v", None)
    store.end(second)
    assert store.keys_being_read() == []
    assert store.tracked_keys() == 1  # now held for its entry


def test_least_recently_used_entries_go_first_when_the_count_is_exceeded() -> None:
    store, removals = make(FakeClock(), max_entries=3)
    for key in ("a", "b", "c"):
        read(store, key, b"x")
    assert store.get(("GET", "a")) == b"x"  # a is now the most recently used
    read(store, "d", b"x")
    assert store.get(("GET", "b")) is MISS
    assert [store.get(("GET", k)) for k in ("a", "c", "d")] == [b"x", b"x", b"x"]
    assert removals.seen == [("evicted", [("GET", "b")])]
    assert store.tracked_keys() == 3  # b's state went with its entry


def test_bytes_are_bounded_too() -> None:
    value = b"v" * 1000
    per_entry = cost(("GET", "k0"), value)
    store, removals = make(FakeClock(), max_bytes=per_entry * 3 + 10)
    for n in range(5):
        read(store, f"k{n}", value)
    assert len(store) == 3
    assert store.size_bytes <= store.max_bytes
    assert [args for reason, batch in removals.seen for args in batch] == [("GET", "k0"), ("GET", "k1")]


def test_an_entry_larger_than_the_byte_bound_is_not_kept_and_evicts_nothing() -> None:
    store, removals = make(FakeClock(), max_bytes=2000)
    read(store, "small", b"s")
    assert not read(store, "huge", b"h" * 5000)
    assert store.get(("GET", "small")) == b"s"
    assert removals.seen == []


def test_max_age_bounds_an_entry() -> None:
    clock = FakeClock()
    store, removals = make(clock, max_age=10)
    read(store, "k", b"v")
    clock.advance(9.9)
    assert store.get(("GET", "k")) == b"v"
    clock.advance(0.1)
    assert store.get(("GET", "k")) is MISS
    assert removals.reasons() == ["expired"]
    assert store.tracked_keys() == 0


def test_the_keys_time_to_live_bounds_an_entry_before_max_age() -> None:
    clock = FakeClock()
    store, _ = make(clock, max_age=60)
    read(store, "session", b"s", ttl=2.0)
    clock.advance(1.99)
    assert store.get(("GET", "session")) == b"s"
    clock.advance(0.01)
    assert store.get(("GET", "session")) is MISS


def test_without_max_age_only_the_ttl_bounds_an_entry() -> None:
    clock = FakeClock()
    store, _ = make(clock, max_age=None)
    read(store, "forever", b"f")
    read(store, "brief", b"b", ttl=1.0)
    clock.advance(10**6)
    assert store.get(("GET", "forever")) == b"f"
    assert store.get(("GET", "brief")) is MISS


def test_a_read_whose_ttl_ran_out_in_flight_is_not_kept() -> None:
    store, _ = make(FakeClock())
    assert not read(store, "gone", b"g", ttl=-0.001)
    assert not read(store, "gone", b"g", ttl=0.0)
    assert store.get(("GET", "gone")) is MISS


def test_a_newer_read_of_the_same_command_replaces_the_entry() -> None:
    store, removals = make(FakeClock())
    read(store, "k", b"1")
    read(store, "k", b"2")
    assert store.get(("GET", "k")) == b"2"
    assert len(store) == 1
    assert store.size_bytes == cost(("GET", "k"), b"2")
    assert removals.seen == []


def test_invalidate_where_drops_held_keys_and_reads_in_flight() -> None:
    store, _ = make(FakeClock())
    read(store, "menu:1", b"1")
    read(store, "other", b"o")
    ticket = store.begin(["menu:2"])
    assert store.invalidate_where(lambda key: not key.startswith("menu:")) == 1
    assert not store.store(ticket, 0, ("GET", "menu:2"), b"2", None)
    store.end(ticket)
    assert store.get(("GET", "other")) == b"o"
    assert store.get(("GET", "menu:1")) is MISS


def test_keys_are_the_same_in_str_and_in_utf8_bytes_and_others_stay_bytes() -> None:
    assert key_of(b"caf\xc3\xa9") == "café"
    assert key_of("café") == "café"
    assert key_of(b"\xff\xfe") == b"\xff\xfe"
    store, _ = make(FakeClock())
    read(store, "café", b"1")
    ticket = store.begin([b"\xff"])
    store.store(ticket, 0, ("GET", b"\xff"), b"2", None)
    store.end(ticket)
    assert store.invalidate([b"caf\xc3\xa9", b"\xff"]) == 2


def test_overlong_keys_in_invalidations_are_skipped() -> None:
    store, _ = make(FakeClock())
    read(store, "k", b"v")
    assert store.invalidate(["x" * (MAX_KEY_LENGTH + 1), "k"]) == 1


def test_entries_is_a_snapshot_in_lru_order() -> None:
    store, _ = make(FakeClock())
    for key in ("a", "b", "c"):
        read(store, key, b"x")
    store.get(("GET", "a"))
    snapshot = store.entries()
    store.invalidate(["b"])  # removing while iterating the snapshot is safe
    assert [entry.args[1] for entry in snapshot] == ["b", "c", "a"]


@pytest.mark.parametrize(
    ("reply", "size"),
    [(b"abc", 3), ("abc", 3), (None, 8), (7, 8), ([b"ab", None], 2 + 8 + 16), ([[b"a"]], 1 + 8 + 8)],
)
def test_size_of_counts_payloads_and_slots(reply: Any, size: int) -> None:
    assert size_of(reply) == size
