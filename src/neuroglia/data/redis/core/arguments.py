"""Argument checks: what may be sent, refused before anything is sent.

Every command builder validates its arguments here, so bad input fails with
an :class:`~neuroglia.data.redis.InvalidArgumentError` (or a
:class:`~neuroglia.data.redis.SerializationError` for an unstorable value)
that names the argument, and nothing is half-written. Keys get the
repository's prefix here too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any, Final

from ..exceptions import InvalidArgumentError, SerializationError
from .keys import escape_pattern

__all__ = [
    "MAX_MILLISECONDS",
    "MAX_VALUE_BYTES",
    "Arguments",
    "Expiration",
    "Key",
    "KeyMapping",
    "ScalarValue",
    "ScoreMapping",
    "Value",
]

Key = str | bytes
Value = str | bytes
Expiration = timedelta | int | float
ScalarValue = str | bytes | int | float
# Mapping is invariant in its key type: spell out the key types a caller's
# dict may have, so that a plain dict[str, str] type-checks.
KeyMapping = Mapping[str, ScalarValue] | Mapping[bytes, ScalarValue] | Mapping[Key, ScalarValue]
ScoreMapping = Mapping[str, float] | Mapping[bytes, float] | Mapping[int, float] | Mapping[ScalarValue, float]

# Redis refuses bulk strings above proto-max-bulk-len (512 MiB by default);
# refusing earlier spares the round trip and the server's memory spike.
MAX_VALUE_BYTES: Final = 512 * 1024 * 1024
# Redis adds the current time (about 2**41 ms) to an expiration or a blocking
# timeout in a signed 64-bit number: anything up to 2**62 ms (about 146
# million years) fits, and "forever" never needs more.
MAX_MILLISECONDS: Final = 2**62
_INT64: Final = range(-(2**63), 2**63)
# A score bound as Redis reads it (strtod, then not NaN), without what Python's
# float() also accepts and Redis does not: underscores, spaces, "nan".
_BOUND: Final = re.compile(
    r"\(?[+-]?(?:inf|infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)", re.IGNORECASE | re.ASCII
)


def _shown(value: Any) -> str:
    """``repr(value)``, cut short: an error message never quotes 400 digits."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"


def _text_ok(text: str, what: str) -> None:
    """Refuse text that cannot be sent: a lone surrogate has no UTF-8 form."""
    if not text.isascii():  # O(1) for ASCII text, the common case
        try:
            text.encode()
        except UnicodeEncodeError as exc:
            raise InvalidArgumentError(
                f"{what} is not valid Unicode text ({exc.reason} at position {exc.start}); nothing was sent"
            ) from None


class Arguments:
    """The checks and conversions of one repository's command arguments (its key prefix)."""

    __slots__ = ("_prefix", "_prefix_bytes")

    def __init__(self, prefix: str = "") -> None:
        self._prefix = prefix
        self._prefix_bytes = prefix.encode()

    @property
    def prefix(self) -> str:
        """The key prefix prepended to every key."""
        return self._prefix

    # -- keys --------------------------------------------------------------------

    def key(self, key: Key) -> Key:
        """``key`` with the prefix; refuses empty and non-text keys, and text that cannot be encoded."""
        cls = key.__class__
        if cls is str:
            if key:
                if not key.isascii():  # O(1): checked only when it may matter
                    _text_ok(key, "a key")  # type: ignore[arg-type]
                return self._prefix + key if self._prefix else key  # type: ignore[operator]
        elif cls is bytes:
            if key:
                return self._prefix_bytes + key if self._prefix else key  # type: ignore[operator]
        elif isinstance(key, str | bytes):
            # A subclass (a StrEnum member...) is sent as its plain value.
            return self.key(str.__str__(key) if isinstance(key, str) else bytes(key))
        else:
            raise InvalidArgumentError(f"a key must be str or bytes, got {cls.__name__}")
        raise InvalidArgumentError("a key must not be empty")

    def keys(self, keys: Key | Iterable[Key], more: tuple[Key, ...] = (), what: str = "keys") -> list[Key]:
        """One key or an iterable of keys (plus ``more``), prefixed."""
        return [self.key(k) for k in self.items(keys, more, what, "a key or an iterable of keys")]

    def nonempty_keys(self, keys: Key | Iterable[Key], more: tuple[Key, ...] = (), what: str = "keys") -> list[Key]:
        """Like :meth:`keys`, refusing none at all."""
        full = self.keys(keys, more, what)
        if not full:
            raise InvalidArgumentError(f"{what}: at least one key is required")
        return full

    @staticmethod
    def items(given: Any, more: tuple[Any, ...], what: str, expected: str) -> list[Any]:
        """One ``str``/``bytes`` or an iterable of them (not a mapping), plus ``more``, as a list."""
        if isinstance(given, str | bytes):
            return [given, *more]
        if isinstance(given, Mapping | bytearray | memoryview) or not isinstance(given, Iterable):
            raise InvalidArgumentError(f"{what}: expected {expected}, got {type(given).__name__}")
        return [*given, *more]

    def pattern(self, pattern: str) -> str:
        """A glob pattern relative to the prefix (the prefix itself escaped)."""
        if not isinstance(pattern, str) or not pattern:
            raise InvalidArgumentError(f"a pattern must be a non-empty str, got {_shown(pattern)}")
        _text_ok(pattern, "the pattern")
        return escape_pattern(self._prefix) + pattern

    @staticmethod
    def text(value: Any, what: str) -> str:
        """A non-empty ``str`` that can be sent."""
        if not isinstance(value, str) or not value:
            raise InvalidArgumentError(f"{what} must be a non-empty str, got {type(value).__name__}")
        _text_ok(value, what)
        return str.__str__(value)

    @staticmethod
    def choice(value: Any, what: str, choices: tuple[str, ...]) -> str:
        """One of ``choices`` (upper case), in any case."""
        if not isinstance(value, str) or value.upper() not in choices:
            raise InvalidArgumentError(f"{what} must be one of {choices}, got {_shown(value)}")
        return value.upper()

    # -- values ------------------------------------------------------------------

    @staticmethod
    def value(value: Any, what: str = "value") -> ScalarValue:
        """A storable scalar: ``str``, ``bytes``, ``int`` or a finite ``float``."""
        cls = value.__class__
        if cls is str:
            if len(value) > MAX_VALUE_BYTES // 4 and len(value.encode(errors="surrogatepass")) > MAX_VALUE_BYTES:
                raise InvalidArgumentError(f"{what} is larger than Redis' 512 MiB limit")
            if not value.isascii():
                _text_ok(value, what)
            return value  # type: ignore[no-any-return]
        if cls is bytes or cls is bytearray or cls is memoryview:
            if len(value) > MAX_VALUE_BYTES:
                raise InvalidArgumentError(f"{what} is larger than Redis' 512 MiB limit")
            return bytes(value) if cls is not bytes else value
        if cls is int:
            return value  # type: ignore[no-any-return]
        if cls is float:
            if not math.isfinite(value):
                raise SerializationError(f"{what} {value!r} is not a finite number")
            return value  # type: ignore[no-any-return]
        if value is None:
            raise SerializationError(f"{what} is None; Redis cannot store None (use delete_async to remove a key)")
        if isinstance(value, bool):
            raise SerializationError(f"{what} is a bool; store '1'/'0' or use set_object_async")
        if isinstance(value, str | int):
            # A subclass (StrEnum, IntEnum...) is stored as its plain value, not its repr.
            return Arguments.value(str.__str__(value) if isinstance(value, str) else int(value), what)
        raise SerializationError(
            f"{what} of type {type(value).__name__} is not str, bytes, int or float; "
            "serialize it first or use set_object_async"
        )

    def values(self, values: tuple[Any, ...], what: str) -> list[ScalarValue]:
        """At least one value, given as arguments or as one list/tuple/set."""
        if not values:
            raise InvalidArgumentError(f"at least one {what} is required")
        if len(values) == 1 and isinstance(values[0], list | tuple | set | frozenset):
            values = tuple(values[0])
            if not values:
                raise InvalidArgumentError(f"at least one {what} is required")
        return [self.value(v, what) for v in values]

    # -- numbers -----------------------------------------------------------------

    @staticmethod
    def milliseconds(expiration: Expiration, what: str = "expiration") -> int:
        """An expiration (``timedelta`` or seconds) in whole milliseconds, from 1 to :data:`MAX_MILLISECONDS`."""
        if isinstance(expiration, timedelta):
            ms = expiration // timedelta(milliseconds=1)
        elif isinstance(expiration, int) and not isinstance(expiration, bool):
            ms = int(expiration) * 1000  # exact, however large: checked below
        elif isinstance(expiration, float):
            if not math.isfinite(expiration):
                raise InvalidArgumentError(f"{what} must be a finite number of seconds, got {expiration!r}")
            ms = round(expiration * 1000)
        else:
            raise InvalidArgumentError(
                f"{what} must be a timedelta or a number of seconds, got {type(expiration).__name__}"
            )
        if ms <= 0:
            raise InvalidArgumentError(f"{what} must be at least 1 millisecond, got {_shown(expiration)}")
        if ms > MAX_MILLISECONDS:
            raise InvalidArgumentError(f"{what} must be at most 2**62 milliseconds (146 million years)")
        return ms

    @staticmethod
    def block_timeout(timeout: Any, what: str = "timeout") -> float:
        """A blocking command's timeout in seconds: finite, >= 0 (0 waits forever), at most 2**62 ms."""
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise InvalidArgumentError(f"{what} must be a number of seconds >= 0, got {type(timeout).__name__}")
        if isinstance(timeout, int):
            if not 0 <= timeout <= MAX_MILLISECONDS // 1000:
                raise InvalidArgumentError(
                    f"{what} must be a number of seconds from 0 to 2**62 ms, got {_shown(timeout)}"
                )
            return float(timeout)
        if not math.isfinite(timeout) or not 0 <= timeout <= MAX_MILLISECONDS / 1000:
            raise InvalidArgumentError(
                f"{what} must be a finite number of seconds from 0 (wait forever) to 2**62 ms, got {timeout!r}"
            )
        return float(timeout)

    @staticmethod
    def integer(value: Any, what: str) -> int:
        """An ``int`` (not a ``bool``) that fits Redis' signed 64 bits."""
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgumentError(f"{what} must be an int, got {type(value).__name__}")
        if value not in _INT64:
            raise InvalidArgumentError(f"{what} must be an int that fits 64 bits, got {_shown(value)}")
        return int(value)

    @staticmethod
    def number(value: Any, what: str) -> float:
        """A finite ``int`` or ``float``, as a ``float``."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidArgumentError(f"{what} must be a finite number, got {_shown(value)}")
        try:
            number = float(value)
        except OverflowError:
            raise InvalidArgumentError(f"{what} must be a finite number, got an int too large for a float") from None
        if not math.isfinite(number):
            raise InvalidArgumentError(f"{what} must be a finite number, got {_shown(value)}")
        return number

    @staticmethod
    def positive_count(count: Any, what: str = "count") -> int:
        """An ``int`` >= 1."""
        n = Arguments.integer(count, what)
        if n < 1:
            raise InvalidArgumentError(f"{what} must be >= 1, got {n}")
        return n

    @staticmethod
    def score(score: Any, what: str = "score") -> float:
        """A sorted-set score, a double (an infinite score is allowed, NaN is not)."""
        if isinstance(score, bool) or not isinstance(score, int | float):
            raise InvalidArgumentError(f"{what} must be a number, got {_shown(score)}")
        if isinstance(score, int):
            try:
                float(score)
            except OverflowError:
                raise InvalidArgumentError(f"{what} must fit a double, got an int too large") from None
            return int(score)  # sent as its exact digits
        if math.isnan(score):
            raise InvalidArgumentError(f"{what} must be a number, got nan")
        return float(score)

    @staticmethod
    def bound(value: Any, what: str) -> Any:
        """A score bound: a number, ``"-inf"``/``"+inf"``, or ``"(x"`` for exclusive."""
        if isinstance(value, bool):
            raise InvalidArgumentError(f"{what} must be a number or a score bound string, got {_shown(value)}")
        if isinstance(value, int):
            return Arguments.score(value, what)
        if isinstance(value, float):
            if math.isnan(value):
                raise InvalidArgumentError(f"{what} must not be NaN")
            return "+inf" if value == math.inf else "-inf" if value == -math.inf else value
        if isinstance(value, str):
            if not _BOUND.fullmatch(value):
                raise InvalidArgumentError(f"{what} {_shown(value)} is not a number, '-inf', '+inf' or '(number'")
            return value
        raise InvalidArgumentError(f"{what} must be a number or a score bound string, got {type(value).__name__}")

    @staticmethod
    def limit(offset: int | None, count: int | None) -> list[Any]:
        """``LIMIT offset count`` arguments, or none."""
        if offset is None and count is None:
            return []
        if offset is None or count is None:
            raise InvalidArgumentError("offset and count go together")
        return ["LIMIT", Arguments.integer(offset, "offset"), Arguments.integer(count, "count")]
