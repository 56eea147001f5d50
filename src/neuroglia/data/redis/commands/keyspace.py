"""Keys whatever their type: delete, exists, expiry, type, and scans by pattern."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

from ..core.arguments import Expiration, Key
from ..core.command import Command, command
from ..core.family import Family
from ..core.replies import (
    decode_text,
    scan_reply,
    to_int,
    zero,
)
from ..exceptions import InvalidArgumentError

__all__ = ["KeyCommands", "KeyOperations"]


class KeyCommands(Family):
    """Keys whatever their type: delete, exists, expiry, type, and scans by pattern."""

    @command
    def delete_async(self, key: Key | Iterable[Key], *keys: Key) -> Command[int]:
        """Delete one or many keys; returns how many existed."""
        full = self._arg.keys(key, keys)
        return Command(("DEL", *full), to_int) if full else Command((), zero)

    @command
    def exists_async(self, key: Key) -> Command[bool]:
        """Whether ``key`` exists."""
        return Command(("EXISTS", self._arg.key(key)), bool)

    @command
    def exists_many_async(self, keys: Iterable[Key]) -> Command[int]:
        """How many of ``keys`` exist (a key named twice counts twice)."""
        full = self._arg.keys(keys)
        return Command(("EXISTS", *full), to_int) if full else Command((), zero)

    @command
    def expire_async(
        self,
        key: Key,
        expiration: Expiration,
        *,
        nx: bool = False,
        xx: bool = False,
        gt: bool = False,
        lt: bool = False,
    ) -> Command[bool]:
        """Set the time to live of ``key``; returns whether it was set."""
        args: list[Any] = ["PEXPIRE", self._arg.key(key), self._arg.milliseconds(expiration)]
        flags = [name for name, on in (("NX", nx), ("XX", xx), ("GT", gt), ("LT", lt)) if on]
        if len(flags) > 1 and not (set(flags) <= {"XX", "GT"} or set(flags) <= {"XX", "LT"}):
            raise InvalidArgumentError(f"expire flags {flags} contradict each other")
        return Command((*args, *flags), bool)

    @command
    def ttl_async(self, key: Key) -> Command[int]:
        """Seconds to live: ``-1`` if the key has no expiry, ``-2`` if it does not exist."""
        return Command(("TTL", self._arg.key(key)), to_int)

    @command
    def pttl_async(self, key: Key) -> Command[int]:
        """Milliseconds to live: ``-1`` without expiry, ``-2`` if the key does not exist."""
        return Command(("PTTL", self._arg.key(key)), to_int)

    @command
    def persist_async(self, key: Key) -> Command[bool]:
        """Remove the expiry of ``key``; returns whether it had one."""
        return Command(("PERSIST", self._arg.key(key)), bool)

    @command
    def type_async(self, key: Key) -> Command[str | None]:
        """The Redis type of ``key`` (``"string"``, ``"hash"``...), or ``None``."""
        return Command(("TYPE", self._arg.key(key)), lambda r: None if r in (b"none", "none") else decode_text(r))


class KeyOperations(KeyCommands):
    """The keyspace operations that are not one command (not queueable in a pipeline)."""

    async def scan_async(self, pattern: str = "*", *, count: int = 500, type: str | None = None) -> AsyncIterator[Key]:
        """Iterate over the keys matching ``pattern`` (SCAN, never KEYS).

        ``pattern`` is relative to the key prefix. Escape untrusted parts with
        :func:`escape_pattern`. A key may be yielded twice if it is modified
        during the scan (a property of SCAN).
        """
        match = self._arg.pattern(pattern)
        cursor: Any = 0
        while True:
            args: tuple[Any, ...] = ("SCAN", cursor, "MATCH", match, "COUNT", self._arg.integer(count, "count"))
            if type is not None:
                args += ("TYPE", type)
            cursor, keys = await self._executor.run(Command(args, scan_reply))
            for raw in keys:
                yield self._reply.strip(raw)
            if cursor == 0:
                return

    async def delete_pattern_async(self, pattern: str, *, batch_size: int = 500) -> int:
        """Delete every key matching ``pattern`` with SCAN and UNLINK in batches.

        Never uses ``KEYS``, so it does not block the server on large
        databases. ``pattern`` is relative to the key prefix; escape
        untrusted parts with :func:`escape_pattern`. Returns how many keys
        were removed.
        """
        match = self._arg.pattern(pattern)
        count = self._arg.integer(batch_size, "batch_size")
        if count < 1:
            raise InvalidArgumentError(f"batch_size must be >= 1, got {count}")
        deleted = 0
        cursor: Any = 0
        while True:
            cursor, keys = await self._executor.run(
                Command(("SCAN", cursor, "MATCH", match, "COUNT", count), scan_reply)
            )
            if keys:
                deleted += await self._executor.run(Command(("UNLINK", *keys), to_int))
            if cursor == 0:
                return deleted
