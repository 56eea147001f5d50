"""Lists: pushes, pops (blocking too), moves, ranges and trims."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..core.arguments import Key, ScalarValue, Value
from ..core.command import Command, CommandQueue, command
from ..core.family import Family
from ..core.replies import (
    ok,
    to_int,
)
from ..exceptions import InvalidArgumentError

__all__ = ["ListCommands"]


class ListCommands(Family):
    """Lists: pushes, pops (blocking too), moves, ranges and trims."""

    @command
    def lpush_async(self, key: Key, *values: ScalarValue) -> Command[int]:
        """Prepend values (the last one ends up first); returns the new length."""
        return Command(("LPUSH", self._arg.key(key), *self._arg.values(values, "value")), to_int, idempotent=False)

    @command
    def rpush_async(self, key: Key, *values: ScalarValue) -> Command[int]:
        """Append values; returns the new length."""
        return Command(("RPUSH", self._arg.key(key), *self._arg.values(values, "value")), to_int, idempotent=False)

    @command
    def lpop_async(self, key: Key) -> Command[Value | None]:
        """Remove and return the first element, or ``None`` if the list is empty."""
        return Command(("LPOP", self._arg.key(key)), self._reply.text, idempotent=False)

    @command
    def rpop_async(self, key: Key) -> Command[Value | None]:
        """Remove and return the last element, or ``None`` if the list is empty."""
        return Command(("RPOP", self._arg.key(key)), self._reply.text, idempotent=False)

    @command
    def lpop_many_async(self, key: Key, count: int) -> Command[list[Any]]:
        """Remove and return up to ``count`` elements from the head."""
        n = self._arg.positive_count(count)
        return Command(("LPOP", self._arg.key(key), n), self._reply.optional_texts, idempotent=False)

    @command
    def rpop_many_async(self, key: Key, count: int) -> Command[list[Any]]:
        """Remove and return up to ``count`` elements from the tail."""
        n = self._arg.positive_count(count)
        return Command(("RPOP", self._arg.key(key), n), self._reply.optional_texts, idempotent=False)

    @command
    def blpop_async(self, keys: Key | Iterable[Key], timeout: float) -> Command[tuple[Any, Any] | None]:
        """Pop from the first non-empty list, waiting up to ``timeout`` seconds.

        Returns ``(key, value)`` or ``None`` when the timeout passes.
        ``timeout=0`` waits forever. It cannot be queued in a pipeline or a
        transaction (:class:`~neuroglia.data.redis.InvalidArgumentError`):
        queue ``lpop_async`` there.
        """
        return self._blocking_pop("BLPOP", keys, timeout)

    @command
    def brpop_async(self, keys: Key | Iterable[Key], timeout: float) -> Command[tuple[Any, Any] | None]:
        """Like :meth:`blpop_async`, from the tail."""
        return self._blocking_pop("BRPOP", keys, timeout)

    def _blocking_pop(self, name: str, keys: Key | Iterable[Key], timeout: float) -> Command[tuple[Any, Any] | None]:
        if isinstance(self, CommandQueue):
            # In a pipeline the pop would hold the batch's connection for its
            # whole timeout, cut by the socket timeout; inside MULTI it would
            # not block at all. Neither is what the caller asked for.
            method, plain = f"{name.lower()}_async", f"{name[1:].lower()}_async"
            raise InvalidArgumentError(
                f"{method} cannot be queued in a pipeline or a transaction (it would hold the batch's connection, "
                f"or not wait at all inside MULTI): queue {plain}, or await {method} on the repository"
            )
        full = self._arg.keys(keys)
        if not full:
            raise InvalidArgumentError(f"{name} needs at least one key")
        seconds = self._arg.block_timeout(timeout)

        def parse(reply: Any) -> tuple[Any, Any] | None:
            return None if reply is None else (self._reply.strip(reply[0]), self._reply.text(reply[1]))

        return Command((name, *full, seconds), parse, idempotent=False, block=seconds)

    @command
    def lmove_async(
        self, source: Key, destination: Key, wherefrom: str = "LEFT", whereto: str = "RIGHT"
    ) -> Command[Value | None]:
        """Atomically move an element between lists (a reliable queue's hand-off)."""
        ends = ("LEFT", "RIGHT")
        args = (
            "LMOVE",
            self._arg.key(source),
            self._arg.key(destination),
            self._arg.choice(wherefrom, "wherefrom", ends),
            self._arg.choice(whereto, "whereto", ends),
        )
        return Command(args, self._reply.text, idempotent=False)

    @command
    def lrange_async(self, key: Key, start: int = 0, end: int = -1) -> Command[list[Any]]:
        """Elements from ``start`` to ``end`` inclusive (negative counts from the end)."""
        args = ("LRANGE", self._arg.key(key), self._arg.integer(start, "start"), self._arg.integer(end, "end"))
        return Command(args, self._reply.texts)

    @command
    def lindex_async(self, key: Key, index: int) -> Command[Value | None]:
        """The element at ``index``, or ``None``."""
        return Command(("LINDEX", self._arg.key(key), self._arg.integer(index, "index")), self._reply.text)

    @command
    def llen_async(self, key: Key) -> Command[int]:
        """The list's length (0 when it does not exist)."""
        return Command(("LLEN", self._arg.key(key)), to_int)

    @command
    def ltrim_async(self, key: Key, start: int, end: int) -> Command[bool]:
        """Keep only the elements from ``start`` to ``end`` inclusive."""
        start, end = self._arg.integer(start, "start"), self._arg.integer(end, "end")
        # Keeping the first N (0, N-1) or the last N (-N, -1) is the same twice;
        # any other range (1, -1: drop the head) trims again when resent.
        idempotent = (start == 0 and end >= 0) or (end == -1 and start <= 0)
        return Command(("LTRIM", self._arg.key(key), start, end), ok, idempotent=idempotent)

    @command
    def lrem_async(self, key: Key, count: int, value: ScalarValue) -> Command[int]:
        """Remove occurrences of ``value`` (``count`` > 0 from the head, < 0 from the tail, 0 all)."""
        args = ("LREM", self._arg.key(key), self._arg.integer(count, "count"), self._arg.value(value))
        return Command(args, to_int, idempotent=False)

    @command
    def lset_async(self, key: Key, index: int, value: ScalarValue) -> Command[bool]:
        """Replace the element at ``index``."""
        return Command(("LSET", self._arg.key(key), self._arg.integer(index, "index"), self._arg.value(value)), ok)
