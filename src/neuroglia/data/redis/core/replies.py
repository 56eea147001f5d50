"""Reply parsers: raw RESP2 replies into the repository's results.

:class:`Replies` holds one repository's text policy (``decode_responses``)
and key prefix (stripped from keys the server returns); the module-level
functions are the policy-free conversions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = [
    "Replies",
    "decode_text",
    "is_hit",
    "keep_bytes",
    "ok",
    "optional_float",
    "optional_int",
    "parse_info",
    "scan_reply",
    "to_float",
    "to_int",
    "zero",
]


def decode_text(value: Any) -> Any:
    """UTF-8 bytes become ``str``; bytes that are not UTF-8 stay ``bytes``.

    Containers are decoded element by element. This is the default reply
    policy (``decode_responses=True``): text reads as text, while msgpack,
    pickle or compressed values come back intact instead of mangled.
    """
    cls = value.__class__
    if cls is bytes:
        try:
            return value.decode()
        except UnicodeDecodeError:
            return value
    if cls is list:
        return [decode_text(v) for v in value]
    return value


def keep_bytes(value: Any) -> Any:
    """The ``decode_responses=False`` policy: replies stay as sent."""
    return value


def is_hit(reply: Any) -> bool:
    """Whether a read found something: a value, or a non-empty multi-reply with a value in it."""
    if reply.__class__ is list:  # HGETALL/SMEMBERS of a missing key, MGET of missing keys
        return any(item is not None for item in reply)
    return reply is not None


def ok(reply: Any) -> bool:
    """``OK``/``1`` as ``True``; nil or ``0`` as ``False``."""
    return reply is not None and reply != 0 and reply != b"0"


def to_int(reply: Any) -> int:
    return int(reply)


def to_float(reply: Any) -> float:
    return float(reply)


def optional_float(reply: Any) -> float | None:
    return None if reply is None else float(reply)


def optional_int(reply: Any) -> int | None:
    return None if reply is None else int(reply)


def zero(_: Any) -> int:
    return 0


def scan_reply(reply: Any) -> tuple[int, list[Any]]:
    """``SCAN``'s ``[cursor, keys]``."""
    return int(reply[0]), reply[1]


def parse_info(raw: Any) -> dict[str, Any]:
    """Parse an ``INFO`` reply into a flat dict with numbers converted.

    ``db0:keys=1,expires=0`` style lines become nested dicts.
    """
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    info: dict[str, Any] = {}
    for line in text.splitlines():
        if not line or line.startswith("#") or ":" not in line:
            continue
        key, _, value = line.partition(":")
        if ("=" in value and "," in value) or (key.startswith("db") and "=" in value):
            info[key] = {k: _number(v) for k, _, v in (p.partition("=") for p in value.split(","))}
        else:
            info[key] = _number(value)
    return info


def _number(value: str) -> Any:
    for convert in (int, float):
        try:
            return convert(value)
        except ValueError:
            pass
    return value


class Replies:
    """One repository's reply decoding: its text policy and its key prefix."""

    __slots__ = ("_prefix_bytes", "text")

    def __init__(self, prefix: str = "", *, decode: bool = True) -> None:
        self._prefix_bytes = prefix.encode()
        self.text: Callable[[Any], Any] = decode_text if decode else keep_bytes
        """The text policy for one value: ``str`` where it is UTF-8 (default), else ``bytes``."""

    def strip(self, key: Any) -> Any:
        """Remove the key prefix from a raw key returned by the server."""
        prefix = self._prefix_bytes
        if prefix and key.startswith(prefix):
            key = key[len(prefix) :]
        return self.text(key)

    def pairs(self, reply: list[Any]) -> dict[Any, Any]:
        """A flat ``[field, value, ...]`` reply as a dict."""
        text = self.text
        it = iter(reply)
        return {text(k): text(v) for k, v in zip(it, it, strict=True)}

    def scored(self, reply: list[Any]) -> list[tuple[Any, float]]:
        """A ``[member, score, ...]`` reply as ``(member, score)`` tuples."""
        text = self.text
        it = iter(reply)
        return [(text(m), float(s)) for m, s in zip(it, it, strict=True)]

    def members(self, reply: list[Any]) -> set[Any]:
        """A set reply as a Python set."""
        text = self.text
        return {text(v) for v in reply}

    def texts(self, reply: list[Any]) -> list[Any]:
        """An array reply with the text policy applied to each element."""
        text = self.text
        return [text(v) for v in reply]

    def optional_texts(self, reply: list[Any] | None) -> list[Any]:
        """Like :meth:`texts`, with nil as an empty list."""
        return [] if reply is None else self.texts(reply)

    def deep(self, reply: Any) -> Any:
        """Text policy applied through nested lists (script replies)."""
        if isinstance(reply, list):
            return [self.deep(r) for r in reply]
        return self.text(reply)
