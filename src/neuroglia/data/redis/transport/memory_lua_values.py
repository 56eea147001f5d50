"""Lua values as Redis' Lua 5.1 sees them, for the ``memory://`` script environment.

The conversions the libraries of :mod:`.memory_lua` and
:mod:`.memory_lua_msgpack` share: C's ``strtod`` (``lua_tonumber``), the
``(long long)`` cast, ``tostring`` of a number, the argument checks of the
Lua auxiliary library, and the error a library function raises.
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

from fakeredis.commands_mixins.scripting_mixin import LUA_MODULE

__all__ = [
    "LuaLibraryError",
    "c_double",
    "checknumber",
    "checkstring",
    "lua_integer",
    "lua_number",
    "lua_type_name",
    "number_text",
]

_LLONG_MIN: Final = -(2**63)
_LuaError: Any = LUA_MODULE.LuaError


class LuaLibraryError(_LuaError):  # type: ignore[misc]
    """An error raised in a library function; Lua sees its message, as from ``luaL_error``.

    A ``LuaError`` of the runtime fakeredis uses: lupa raises it again once
    the script has unwound (unless ``pcall`` caught it), and fakeredis turns
    it into the script's error reply.
    """


# What Lua 5.1's lua_tonumber reads in a string (C's strtod, glibc flavour,
# surrounded by optional spaces): decimal, hexadecimal (with a binary
# exponent), infinities and NaN. Python's float() reads more ("1_000",
# Arabic-Indic digits), so the text is matched first.
_LUA_DECIMAL: Final = re.compile(rb"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_LUA_HEX: Final = re.compile(rb"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?\d+)?")
_LUA_SPECIAL: Final = re.compile(rb"[+-]?(?:inf|infinity|nan(?:\([0-9A-Za-z_]*\))?)", re.IGNORECASE)
_C_SPACES: Final = b" \t\n\v\f\r"


def c_double(text: bytes) -> float | None:
    """What C's ``strtod`` reads when it consumes all of ``text`` (no spaces around), else ``None``.

    Decimal, hexadecimal with a binary exponent, infinities and NaN; beyond a
    double's range it gives an infinity, below it zero, as ``strtod`` does
    (with ``ERANGE``, which callers check themselves).
    """
    try:
        if _LUA_HEX.fullmatch(text):
            negative = text.startswith(b"-")
            number = float.fromhex(text.lstrip(b"+-").decode())
            return -number if negative else number
        if _LUA_DECIMAL.fullmatch(text) or _LUA_SPECIAL.fullmatch(text):
            return float(text.split(b"(")[0])
    except OverflowError:
        return -math.inf if text.startswith(b"-") else math.inf
    return None


def lua_number(value: Any) -> float | None:
    """What ``lua_tonumber`` gives for a value from Lua (a number, or a string that reads as one), else ``None``."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, bytes):
        return None
    return c_double(value.strip(_C_SPACES))


def checknumber(value: Any, position: int, function: str) -> float:
    number = lua_number(value)
    if number is None:
        got = "no value" if value is None else lua_type_name(value)
        raise LuaLibraryError(f"bad argument #{position} to '{function}' (number expected, got {got})")
    return number


def lua_type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, bytes):
        return "string"
    if isinstance(value, int | float):
        return "number"
    return "table" if hasattr(value, "items") else "userdata"


def lua_integer(number: float) -> int:
    """C's ``(long long)`` cast of a Lua number on x86-64: truncation, and LLONG_MIN when out of range or NaN."""
    if math.isnan(number) or math.isinf(number):
        return _LLONG_MIN
    truncated = int(number)
    return truncated if -(2**63) <= truncated < 2**63 else _LLONG_MIN


def number_text(number: float) -> bytes:
    """Lua 5.1's ``tostring`` of a number (``"%.14g"``)."""
    if float(number).is_integer() and abs(number) < 1e15:
        return str(int(number)).encode()
    return f"{number:.14g}".encode()


def checkstring(value: Any, position: int, function: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return number_text(value)
    got = "no value" if value is None else lua_type_name(value)
    raise LuaLibraryError(f"bad argument #{position} to '{function}' (string expected, got {got})")
