"""Sets: members, and intersections, unions and differences of several sets."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..core.arguments import Key, ScalarValue, Value
from ..core.command import Command, command
from ..core.family import Family
from ..core.replies import (
    to_int,
)

__all__ = ["SetCommands"]


class SetCommands(Family):
    """Sets: members, and intersections, unions and differences of several sets."""

    @command
    def sadd_async(self, key: Key, *members: ScalarValue) -> Command[int]:
        """Add members; returns how many were new."""
        return Command(("SADD", self._arg.key(key), *self._arg.values(members, "member")), to_int)

    @command
    def srem_async(self, key: Key, *members: ScalarValue) -> Command[int]:
        """Remove members; returns how many were present."""
        return Command(("SREM", self._arg.key(key), *self._arg.values(members, "member")), to_int)

    @command
    def smembers_async(self, key: Key) -> Command[set[Any]]:
        """Every member (an empty set when the key does not exist)."""
        return Command(("SMEMBERS", self._arg.key(key)), self._reply.members, read=True)

    @command
    def sismember_async(self, key: Key, member: ScalarValue) -> Command[bool]:
        """Whether ``member`` is in the set."""
        return Command(("SISMEMBER", self._arg.key(key), self._arg.value(member, "member")), bool)

    @command
    def scard_async(self, key: Key) -> Command[int]:
        """The number of members."""
        return Command(("SCARD", self._arg.key(key)), to_int)

    @command
    def spop_async(self, key: Key) -> Command[Value | None]:
        """Remove and return a random member, or ``None``."""
        return Command(("SPOP", self._arg.key(key)), self._reply.text, idempotent=False)

    @command
    def srandmember_async(self, key: Key) -> Command[Value | None]:
        """A random member without removing it, or ``None``."""
        return Command(("SRANDMEMBER", self._arg.key(key)), self._reply.text)

    @command
    def sinter_async(self, keys: Key | Iterable[Key], *more: Key) -> Command[set[Any]]:
        """Members present in every set."""
        return Command(("SINTER", *self._arg.nonempty_keys(keys, more)), self._reply.members)

    @command
    def sunion_async(self, keys: Key | Iterable[Key], *more: Key) -> Command[set[Any]]:
        """Members present in any set."""
        return Command(("SUNION", *self._arg.nonempty_keys(keys, more)), self._reply.members)

    @command
    def sdiff_async(self, keys: Key | Iterable[Key], *more: Key) -> Command[set[Any]]:
        """Members of the first set that are in none of the others."""
        return Command(("SDIFF", *self._arg.nonempty_keys(keys, more)), self._reply.members)

    @command
    def sinterstore_async(self, destination: Key, keys: Key | Iterable[Key], *more: Key) -> Command[int]:
        """Store the intersection at ``destination``; returns its size."""
        return Command(("SINTERSTORE", self._arg.key(destination), *self._arg.nonempty_keys(keys, more)), to_int)

    @command
    def sunionstore_async(self, destination: Key, keys: Key | Iterable[Key], *more: Key) -> Command[int]:
        """Store the union at ``destination``; returns its size."""
        return Command(("SUNIONSTORE", self._arg.key(destination), *self._arg.nonempty_keys(keys, more)), to_int)

    @command
    def sdiffstore_async(self, destination: Key, keys: Key | Iterable[Key], *more: Key) -> Command[int]:
        """Store the difference at ``destination``; returns its size."""
        return Command(("SDIFFSTORE", self._arg.key(destination), *self._arg.nonempty_keys(keys, more)), to_int)
