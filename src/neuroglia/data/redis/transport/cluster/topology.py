"""The cluster's shape: which primary (and which replicas) serve each slot, and the redirections that change it.

:class:`SlotMap` is read from ``CLUSTER SLOTS`` (one reply lists every
range of slots with its primary first, then its replicas). A map is never
changed in place by a refresh: the transport swaps in a new one, so a
command routed with the old map finishes with it. A ``MOVED`` reply
patches the one slot at once (the next command goes to the right node
without waiting for the refresh it also triggers).

:func:`redirection` reads a ``MOVED``/``ASK`` out of an error reply;
:func:`retryable` tells ``TRYAGAIN`` (a multi-key command met a slot being
migrated) and ``CLUSTERDOWN`` (the cluster lost a slot's owner, usually for
the length of a failover) apart from real failures.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from neuroglia.data.redis.exceptions import CacheException

from .slots import SLOTS

__all__ = ["Address", "Redirect", "Shard", "SlotMap", "parse_cluster_slots", "redirection", "retryable"]

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Redirect:
    """A ``MOVED`` (the slot has a new owner) or an ``ASK`` (this key, this once, is on ``address``)."""

    kind: str
    slot: int
    address: Address


_REDIRECT = re.compile(r"\b(MOVED|ASK) (\d+) (\S+)")


def redirection(error: BaseException) -> Redirect | None:
    """The ``MOVED``/``ASK`` an error reply carries, if it is one."""
    if not isinstance(error, CacheException):
        return None
    found = _REDIRECT.search(str(error))
    if found is None:
        return None
    host, _, port = found.group(3).rpartition(":")
    try:
        return Redirect(found.group(1), int(found.group(2)), (host.strip("[]"), int(port)))
    except ValueError:
        return None


def retryable(error: BaseException) -> str | None:
    """``"TRYAGAIN"`` or ``"CLUSTERDOWN"`` when the error reply is one of them."""
    if not isinstance(error, CacheException):
        return None
    text = str(error)
    for code in ("TRYAGAIN", "CLUSTERDOWN"):
        if code in text:
            return code
    return None


@dataclass(slots=True)
class Shard:
    """One primary and its replicas."""

    primary: Address
    replicas: list[Address] = field(default_factory=list)


class SlotMap:
    """Slot -> shard, as one node described the cluster."""

    __slots__ = ("_owners", "shards")

    def __init__(self, shards: list[Shard], owners: list[int | None]) -> None:
        self.shards = shards
        self._owners = owners

    @classmethod
    def empty(cls) -> SlotMap:
        """A map that knows no slot."""
        return cls([], [None] * SLOTS)

    def shard(self, slot: int) -> Shard | None:
        """The shard serving ``slot`` (``None`` when no node does)."""
        index = self._owners[slot]
        return None if index is None else self.shards[index]

    def primaries(self) -> list[Address]:
        """Every primary serving at least one slot, in a stable order."""
        return sorted({shard.primary for shard in self.shards})

    def addresses(self) -> set[Address]:
        """Every node of the map."""
        return {a for shard in self.shards for a in (shard.primary, *shard.replicas)}

    def moved(self, slot: int, address: Address) -> SlotMap:
        """A copy where ``slot`` is served by the primary at ``address``."""
        shards = list(self.shards)
        owners = list(self._owners)
        index = next((i for i, s in enumerate(shards) if s.primary == address), None)
        if index is None:
            shards.append(Shard(address))
            index = len(shards) - 1
        owners[slot] = index
        return SlotMap(shards, owners)

    @property
    def covered(self) -> int:
        """How many slots have an owner."""
        return sum(1 for owner in self._owners if owner is not None)

    def __repr__(self) -> str:
        return f"SlotMap(primaries={self.primaries()}, covered={self.covered})"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _address(entry: Any, asked: Address) -> Address:
    host = _text(entry[0]) if entry and entry[0] not in (b"", "", None, b"?") else asked[0]
    return (host, int(entry[1]))


def parse_cluster_slots(reply: Any, asked: Address) -> SlotMap:
    """A map from a ``CLUSTER SLOTS`` reply given by the node at ``asked`` (whose own host may be unannounced)."""
    shards: dict[Address, Shard] = {}
    owners: list[int | None] = [None] * SLOTS
    order: list[Address] = []
    for entry in reply or ():
        start, end = int(entry[0]), int(entry[1])
        primary = _address(entry[2], asked)
        shard = shards.get(primary)
        if shard is None:
            shard = shards[primary] = Shard(primary)
            order.append(primary)
        for replica in entry[3:]:
            address = _address(replica, asked)
            if address not in shard.replicas:
                shard.replicas.append(address)
        index = order.index(primary)
        for slot in range(start, end + 1):
            owners[slot] = index
    return SlotMap([shards[a] for a in order], owners)


def merge_addresses(*groups: Iterable[Address]) -> list[Address]:
    """Addresses of several groups, each once, in order."""
    seen: dict[Address, None] = {}
    for group in groups:
        for address in group:
            seen.setdefault(address, None)
    return list(seen)
