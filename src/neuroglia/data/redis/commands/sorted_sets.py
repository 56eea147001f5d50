"""Sorted sets: members with scores, ranges by rank and by score, pops."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.arguments import Key, ScalarValue, ScoreMapping
from ..core.command import Command, command
from ..core.family import Family
from ..core.replies import (
    optional_float,
    optional_int,
    to_float,
    to_int,
)
from ..exceptions import InvalidArgumentError

__all__ = ["SortedSetCommands"]


class SortedSetCommands(Family):
    """Sorted sets: members with scores, ranges by rank and by score, pops."""

    @command
    def zadd_async(
        self,
        key: Key,
        mapping: ScoreMapping,
        *,
        nx: bool = False,
        xx: bool = False,
        gt: bool = False,
        lt: bool = False,
        ch: bool = False,
    ) -> Command[int]:
        """Add members with scores: ``zadd_async(key, {"member": 1.5})``.

        ``nx``/``xx`` only add new / update existing members; ``gt``/``lt``
        only update when the new score is greater / less. Returns the number
        of members added (changed, with ``ch=True``).
        """
        if not isinstance(mapping, Mapping) or not mapping:
            raise InvalidArgumentError("zadd_async needs a non-empty mapping of member to score")
        if nx and (xx or gt or lt):
            raise InvalidArgumentError("nx=True cannot be combined with xx, gt or lt")
        if gt and lt:
            raise InvalidArgumentError("gt=True and lt=True contradict each other")
        flags = [name for name, on in (("NX", nx), ("XX", xx), ("GT", gt), ("LT", lt), ("CH", ch)) if on]
        pairs: list[Any] = []
        for member, score in mapping.items():
            pairs += (self._arg.score(score, f"the score of member {member!r}"), self._arg.value(member, "member"))
        return Command(("ZADD", self._arg.key(key), *flags, *pairs), to_int)

    @command
    def zincrby_async(self, key: Key, amount: float, member: ScalarValue) -> Command[float]:
        """Add ``amount`` to ``member``'s score; returns the new score."""
        args = ("ZINCRBY", self._arg.key(key), self._arg.score(amount, "amount"), self._arg.value(member, "member"))
        return Command(args, to_float, idempotent=False)

    @command
    def zrange_async(
        self, key: Key, start: int, end: int, desc: bool = False, withscores: bool = False
    ) -> Command[list[Any]]:
        """Members by rank, lowest first (highest first with ``desc``).

        With ``withscores`` the items are ``(member, score)`` tuples.
        """
        args: list[Any] = [
            "ZRANGE",
            self._arg.key(key),
            self._arg.integer(start, "start"),
            self._arg.integer(end, "end"),
        ]
        if desc:
            args.append("REV")
        return self._zrange(args, withscores)

    @command
    def zrevrange_async(self, key: Key, start: int, end: int, withscores: bool = False) -> Command[list[Any]]:
        """Members by rank, highest first."""
        args: list[Any] = [
            "ZRANGE",
            self._arg.key(key),
            self._arg.integer(start, "start"),
            self._arg.integer(end, "end"),
            "REV",
        ]
        return self._zrange(args, withscores)

    @command
    def zrangebyscore_async(
        self,
        key: Key,
        min: float | str,
        max: float | str,
        *,
        withscores: bool = False,
        offset: int | None = None,
        count: int | None = None,
    ) -> Command[list[Any]]:
        """Members with ``min <= score <= max``, lowest first (``"(x"`` excludes x)."""
        args: list[Any] = [
            "ZRANGE",
            self._arg.key(key),
            self._arg.bound(min, "min"),
            self._arg.bound(max, "max"),
            "BYSCORE",
        ]
        return self._zrange(args + self._arg.limit(offset, count), withscores)

    @command
    def zrevrangebyscore_async(
        self,
        key: Key,
        max: float | str,
        min: float | str,
        *,
        withscores: bool = False,
        offset: int | None = None,
        count: int | None = None,
    ) -> Command[list[Any]]:
        """Members with ``max >= score >= min``, highest first."""
        args: list[Any] = [
            "ZRANGE",
            self._arg.key(key),
            self._arg.bound(max, "max"),
            self._arg.bound(min, "min"),
            "BYSCORE",
            "REV",
        ]
        return self._zrange(args + self._arg.limit(offset, count), withscores)

    def _zrange(self, args: list[Any], withscores: bool) -> Command[list[Any]]:
        if withscores:
            return Command((*args, "WITHSCORES"), self._reply.scored)
        return Command(tuple(args), self._reply.texts)

    @command
    def zrem_async(self, key: Key, *members: ScalarValue) -> Command[int]:
        """Remove members; returns how many were present."""
        return Command(("ZREM", self._arg.key(key), *self._arg.values(members, "member")), to_int)

    @command
    def zremrangebyrank_async(self, key: Key, start: int, end: int) -> Command[int]:
        """Remove members by rank (``0, -51`` keeps the top 50); returns how many."""
        start, end = self._arg.integer(start, "start"), self._arg.integer(end, "end")
        # Keeping the lowest `start` and highest `-end-1` members (start >= 0,
        # end < 0, as in "keep the top 50") is the same twice; removing a
        # fixed rank range (0, 2: the three lowest) removes three more when resent.
        idempotent = start >= 0 and end < 0
        return Command(("ZREMRANGEBYRANK", self._arg.key(key), start, end), to_int, idempotent=idempotent)

    @command
    def zremrangebyscore_async(self, key: Key, min: float | str, max: float | str) -> Command[int]:
        """Remove members with ``min <= score <= max``; returns how many."""
        args = ("ZREMRANGEBYSCORE", self._arg.key(key), self._arg.bound(min, "min"), self._arg.bound(max, "max"))
        return Command(args, to_int)

    @command
    def zscore_async(self, key: Key, member: ScalarValue) -> Command[float | None]:
        """``member``'s score, or ``None``."""
        return Command(("ZSCORE", self._arg.key(key), self._arg.value(member, "member")), optional_float)

    @command
    def zrank_async(self, key: Key, member: ScalarValue) -> Command[int | None]:
        """``member``'s rank, lowest score first, or ``None``."""
        return Command(("ZRANK", self._arg.key(key), self._arg.value(member, "member")), optional_int)

    @command
    def zrevrank_async(self, key: Key, member: ScalarValue) -> Command[int | None]:
        """``member``'s rank, highest score first, or ``None``."""
        return Command(("ZREVRANK", self._arg.key(key), self._arg.value(member, "member")), optional_int)

    @command
    def zcard_async(self, key: Key) -> Command[int]:
        """The number of members."""
        return Command(("ZCARD", self._arg.key(key)), to_int)

    @command
    def zcount_async(self, key: Key, min: float | str, max: float | str) -> Command[int]:
        """How many members have ``min <= score <= max``."""
        return Command(("ZCOUNT", self._arg.key(key), self._arg.bound(min, "min"), self._arg.bound(max, "max")), to_int)

    @command
    def zpopmax_async(self, key: Key, count: int = 1) -> Command[list[tuple[Any, float]]]:
        """Remove and return up to ``count`` highest-scored ``(member, score)`` pairs."""
        return Command(
            ("ZPOPMAX", self._arg.key(key), self._arg.positive_count(count)), self._reply.scored, idempotent=False
        )

    @command
    def zpopmin_async(self, key: Key, count: int = 1) -> Command[list[tuple[Any, float]]]:
        """Remove and return up to ``count`` lowest-scored ``(member, score)`` pairs."""
        return Command(
            ("ZPOPMIN", self._arg.key(key), self._arg.positive_count(count)), self._reply.scored, idempotent=False
        )
