"""Hashes: fields of one key."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..core.arguments import Key, KeyMapping, ScalarValue, Value
from ..core.command import Command, command
from ..core.family import Family
from ..core.replies import (
    to_float,
    to_int,
)
from ..exceptions import InvalidArgumentError

__all__ = ["HashCommands"]


class HashCommands(Family):
    """Hashes: fields of one key."""

    @command
    def hset_async(
        self,
        key: Key,
        field: Key | KeyMapping | None = None,
        value: ScalarValue | None = None,
        *,
        mapping: KeyMapping | None = None,
    ) -> Command[int]:
        """Set hash fields: ``hset_async(key, {"f": "v"})`` or ``hset_async(key, "f", "v")``.

        Returns the number of fields that were added (not updated).
        """
        pairs: list[Any] = []
        if mapping is not None and not isinstance(mapping, Mapping):
            raise InvalidArgumentError(f"mapping must be a mapping of fields to values, got {type(mapping).__name__}")
        if isinstance(field, Mapping):
            if mapping is not None:
                raise InvalidArgumentError("give the fields once: a mapping argument or mapping=, not both")
            if value is not None:
                raise InvalidArgumentError("a value cannot follow a mapping of fields")
            mapping, field = field, None
        if field is not None:
            pairs += (self._arg.value(field, "field"), self._arg.value(value, f"value of field {field!r}"))
        elif value is not None:
            raise InvalidArgumentError("a value was given without a field")
        for f, v in (mapping or {}).items():
            pairs += (self._arg.value(f, "field"), self._arg.value(v, f"value of field {f!r}"))
        if not pairs:
            raise InvalidArgumentError("hset_async needs a field and value, or a non-empty mapping")
        return Command(("HSET", self._arg.key(key), *pairs), to_int)

    @command
    def hsetnx_async(self, key: Key, field: Key, value: ScalarValue) -> Command[bool]:
        """Set a hash field only if it does not exist yet."""
        return Command(
            ("HSETNX", self._arg.key(key), self._arg.value(field, "field"), self._arg.value(value)),
            bool,
            idempotent=False,
        )

    @command
    def hget_async(self, key: Key, field: Key) -> Command[Value | None]:
        """The value of one hash field, or ``None``."""
        return Command(("HGET", self._arg.key(key), self._arg.value(field, "field")), self._reply.text, read=True)

    @command
    def hgetall_async(self, key: Key) -> Command[dict[Any, Any]]:
        """Every field of the hash (``{}`` when the key does not exist)."""
        return Command(("HGETALL", self._arg.key(key)), self._reply.pairs, read=True)

    @command
    def hmget_async(self, key: Key, fields: Key | Iterable[Key], *more: Key) -> Command[list[Value | None]]:
        """Several hash fields in one call, ``None`` for missing ones, in order."""
        names = self._arg.items(fields, more, "fields", "a field or an iterable of fields")
        return Command(
            ("HMGET", self._arg.key(key), *self._arg.values(tuple(names), "field")), self._reply.texts, read=True
        )

    @command
    def hdel_async(self, key: Key, *fields: Key) -> Command[int]:
        """Delete hash fields; returns how many existed."""
        return Command(("HDEL", self._arg.key(key), *self._arg.values(fields, "field")), to_int)

    @command
    def hincrby_async(self, key: Key, field: Key, amount: int = 1) -> Command[int]:
        """Add ``amount`` to an integer hash field; returns the new value."""
        args = ("HINCRBY", self._arg.key(key), self._arg.value(field, "field"), self._arg.integer(amount, "amount"))
        return Command(args, to_int, idempotent=False)

    @command
    def hincrbyfloat_async(self, key: Key, field: Key, amount: float) -> Command[float]:
        """Add a float ``amount`` to a hash field; returns the new value."""
        args = ("HINCRBYFLOAT", self._arg.key(key), self._arg.value(field, "field"), self._arg.number(amount, "amount"))
        return Command(args, to_float, idempotent=False)

    @command
    def hexists_async(self, key: Key, field: Key) -> Command[bool]:
        """Whether the hash has ``field``."""
        return Command(("HEXISTS", self._arg.key(key), self._arg.value(field, "field")), bool)

    @command
    def hkeys_async(self, key: Key) -> Command[list[Any]]:
        """The hash's field names."""
        return Command(("HKEYS", self._arg.key(key)), self._reply.texts)

    @command
    def hvals_async(self, key: Key) -> Command[list[Any]]:
        """The hash's values."""
        return Command(("HVALS", self._arg.key(key)), self._reply.texts)

    @command
    def hlen_async(self, key: Key) -> Command[int]:
        """The number of fields in the hash."""
        return Command(("HLEN", self._arg.key(key)), to_int)
