"""Commands to RESP bytes: hiredis packs them, this module only prepares odd arguments.

``hiredis.pack_command`` takes ``str``, ``bytes``, ``int`` and ``float``
exactly (no subclasses, no ``bytearray``); the library's command builders
already send those, so the fast path is one C call. Anything else (a
``StrEnum`` member, an ``IntEnum``, a ``memoryview``) is converted to its
plain value first, and text that cannot be encoded as UTF-8 is refused
before a byte is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import hiredis

from neuroglia.data.redis.exceptions import Delivery, InvalidArgumentError

__all__ = ["pack", "pack_many"]

_pack_command = hiredis.pack_command


def pack(args: tuple[Any, ...]) -> bytes:
    """The RESP encoding of one command (``args[0]`` is its name)."""
    try:
        packed: bytes = _pack_command(args)
    except TypeError:
        packed = _pack_command(tuple(_plain(arg, args) for arg in args))  # type: ignore[arg-type]
    except UnicodeEncodeError as exc:
        raise _not_text(exc, args) from exc
    return packed


def pack_many(commands: Sequence[tuple[Any, ...]]) -> bytes:
    """The RESP encoding of several commands, back to back (one write)."""
    return b"".join([pack(args) for args in commands])


def _plain(arg: Any, args: tuple[Any, ...]) -> str | bytes | int | float:
    """``arg`` as one of the four types hiredis packs, or :class:`InvalidArgumentError`."""
    if isinstance(arg, bool):
        # True would be sent as "True": a caller bug, never what Redis expects.
        raise _refused(args, f"a bool argument ({arg!r}); send 1/0 or a string")
    if isinstance(arg, str):
        return str.__str__(arg)
    if isinstance(arg, int):
        return int(arg)
    if isinstance(arg, float):
        return float(arg)
    if isinstance(arg, bytes | bytearray | memoryview):
        return bytes(arg)
    raise _refused(args, f"an argument of type {type(arg).__name__}; expected str, bytes, int or float")


def _name(args: tuple[Any, ...]) -> str:
    return str(args[0]).upper() if args else "?"


def _refused(args: tuple[Any, ...], what: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"{_name(args)}: {what}; nothing was sent").with_delivery(Delivery.NOT_SENT)


def _not_text(exc: UnicodeEncodeError, args: tuple[Any, ...]) -> InvalidArgumentError:
    return _refused(
        args, f"a key, field or value is not valid Unicode text ({exc.reason} at position {exc.start})"
    )
