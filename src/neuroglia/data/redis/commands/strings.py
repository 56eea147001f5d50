"""Strings: ``GET``/``SET`` and friends, counters, many keys at once, and typed objects.

Typed objects are string values holding an object serialized by the
configured strategy inside the versioned envelope (``docs/security.md``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from ..core.arguments import Expiration, Key, KeyMapping, ScalarValue, Value
from ..core.command import Command, command
from ..core.family import Family
from ..core.replies import (
    ok,
    to_float,
    to_int,
)
from ..exceptions import InvalidArgumentError, SerializationError
from ..serialization.deferred import resolve
from ..serialization.envelope import EnvelopeSerializer

T = TypeVar("T")

__all__ = ["StringCommands", "StringOperations"]


class StringCommands(Family):
    """Strings: ``GET``/``SET`` and friends, counters, and typed objects."""

    _codec: EnvelopeSerializer

    @command
    def get_async(self, key: Key) -> Command[Value | None]:
        """Return the value at ``key``, or ``None`` when the key does not exist."""
        return Command(("GET", self._arg.key(key)), self._reply.text, read=True)

    @command
    def set_async(
        self,
        key: Key,
        value: ScalarValue,
        expiration: Expiration | None = None,
        *,
        nx: bool = False,
        xx: bool = False,
        keepttl: bool = False,
    ) -> Command[bool]:
        """Store ``value`` at ``key``; ``expiration`` is a ``timedelta`` or seconds.

        ``nx`` only sets a key that does not exist, ``xx`` only one that does,
        ``keepttl`` keeps the current time to live. Returns whether the value
        was written.
        """
        args: list[Any] = ["SET", self._arg.key(key), self._arg.value(value)]
        if expiration is not None:
            if keepttl:
                raise InvalidArgumentError("expiration and keepttl=True contradict each other")
            ms = self._arg.milliseconds(expiration)
            args += ("EX", ms // 1000) if ms % 1000 == 0 else ("PX", ms)
        if nx and xx:
            raise InvalidArgumentError("nx=True and xx=True contradict each other")
        if nx:
            args.append("NX")
        elif xx:
            args.append("XX")
        if keepttl:
            args.append("KEEPTTL")
        # SET NX answers "was it written": resent after a lost reply, it would
        # say no for this caller's own write. Never resent after an uncertain send.
        return Command(tuple(args), ok, idempotent=not nx)

    @command
    def get_many_async(self, keys: Iterable[Key]) -> Command[dict[Key, Value | None]]:
        """Read many keys in one round trip: ``{key: value or None}``."""
        wanted = self._arg.items(keys, (), "keys", "a key or an iterable of keys")
        full = self._arg.keys(wanted)
        if not full:
            return Command((), lambda _: {})
        text = self._reply.text
        return Command(
            ("MGET", *full), lambda reply: {k: text(v) for k, v in zip(wanted, reply, strict=True)}, read=True
        )

    @command
    def incr_async(self, key: Key, amount: int = 1) -> Command[int]:
        """Add ``amount`` to the integer at ``key`` (missing counts as 0); returns the new value."""
        return Command(("INCRBY", self._arg.key(key), self._arg.integer(amount, "amount")), to_int, idempotent=False)

    @command
    def incrby_async(self, key: Key, amount: int) -> Command[int]:
        """Add ``amount`` to the integer at ``key``; returns the new value."""
        return Command(("INCRBY", self._arg.key(key), self._arg.integer(amount, "amount")), to_int, idempotent=False)

    @command
    def decr_async(self, key: Key, amount: int = 1) -> Command[int]:
        """Subtract ``amount`` from the integer at ``key``; returns the new value."""
        return Command(("DECRBY", self._arg.key(key), self._arg.integer(amount, "amount")), to_int, idempotent=False)

    @command
    def decrby_async(self, key: Key, amount: int) -> Command[int]:
        """Subtract ``amount`` from the integer at ``key``; returns the new value."""
        return Command(("DECRBY", self._arg.key(key), self._arg.integer(amount, "amount")), to_int, idempotent=False)

    @command
    def incrbyfloat_async(self, key: Key, amount: float) -> Command[float]:
        """Add a float ``amount`` to the number at ``key``; returns the new value."""
        return Command(
            ("INCRBYFLOAT", self._arg.key(key), self._arg.number(amount, "amount")), to_float, idempotent=False
        )

    @command
    def set_object_async(
        self, key: Key, value: Any, expiration: Expiration | None = None, *, nx: bool = False, xx: bool = False
    ) -> Command[bool]:
        """Serialize ``value`` with the configured strategy and store it in the versioned envelope.

        The envelope names the strategy (a reader configured with another one
        refuses the value instead of misreading it) and compresses large
        values; see ``docs/security.md``.
        """
        if value is None:
            raise SerializationError("value is None; Redis cannot store None (use delete_async to remove a key)")
        data = self._codec.dumps(value)
        return StringCommands.set_async.build(self, key, data, expiration, nx=nx, xx=xx)

    @command
    def get_object_async(self, key: Key, type_: type[T] | None = None) -> Command[T | None]:
        """Load and deserialize the value at ``key``; ``type_`` rebuilds a dataclass or model.

        ``type_`` converts nested fields by their annotations (nested
        dataclasses, ``datetime``, ``set``, ``tuple``, ``Decimal``, ``UUID``,
        enums). A value written by another strategy raises
        :class:`~neuroglia.data.redis.SerializationError` naming both; a value
        without the envelope (written by ``set_async``) goes to the strategy
        as it is. A large value is decoded in a worker thread, off the event
        loop, within the envelope policy's bounds (``docs/security.md``).
        """
        begin = self._codec.begin

        def parse(reply: Any) -> Any:
            # A Deferred for a large value: the repository (or the pipeline) awaits it.
            return None if reply is None else begin(reply, type_)

        return Command(("GET", self._arg.key(key)), parse, read=True)


class StringOperations(StringCommands):
    """The strings operations that are not one command (not queueable in a pipeline)."""

    async def get_object_async(self, key: Key, type_: type[T] | None = None) -> T | None:
        """Load and deserialize the value at ``key``; ``type_`` rebuilds a dataclass or model.

        ``type_`` converts nested fields by their annotations (nested
        dataclasses, ``datetime``, ``set``, ``tuple``, ``Decimal``, ``UUID``,
        enums). A value written by another strategy raises
        :class:`~neuroglia.data.redis.SerializationError` naming both; a value
        without the envelope (written by ``set_async``) goes to the strategy
        as it is. A large value is decoded in a worker thread, off the event
        loop, within the envelope policy's bounds (``docs/security.md``).
        """
        # The command runs through the executor as any other (breaker, retry,
        # fallback); only the decoding of a large reply continues off the loop.
        found = await self._executor.run(StringCommands.get_object_async.build(self, key, type_))
        return await resolve(found)

    async def set_many_async(self, mapping: KeyMapping, expiration: Expiration | None = None) -> None:
        """Write many keys in one round trip, atomically (``MSET``, or ``MULTI`` with a TTL).

        On a Redis Cluster keys of different hash slots are written per slot,
        in parallel and not atomically (see ``docs/scale-out.md``).
        """
        if not isinstance(mapping, Mapping):
            raise InvalidArgumentError(f"set_many_async expects a mapping, got {type(mapping).__name__}")
        items = [(self._arg.key(k), self._arg.value(v, f"value for key {k!r}")) for k, v in mapping.items()]
        if not items:
            return
        if expiration is None:
            flat = [part for item in items for part in item]
            await self._executor.run(Command(("MSET", *flat), ok))
            return
        ms = self._arg.milliseconds(expiration)
        cmds: list[Command[Any]] = [Command(("SET", k, v, "PX", ms), ok) for k, v in items]
        # A transaction needs one hash slot on a cluster: there the writes go
        # to each node in parallel instead, not atomically (as MSET there).
        cluster = getattr(getattr(self, "_config", None), "topology", "standalone") == "cluster"
        for result in await self._executor.run_many(cmds, transaction=not cluster):
            if isinstance(result, BaseException):
                raise result
