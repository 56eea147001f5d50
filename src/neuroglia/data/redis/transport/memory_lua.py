"""The Lua environment of Redis 7 for ``memory://`` scripts: the libraries fakeredis lacks, and the sandbox.

Redis loads ``bit`` (LuaBitOp), ``struct`` (Roberto Ierusalimschy's
``lua_struct``) and ``cmsgpack`` (``lua_cmsgpack``) into every script, gives
``redis`` a few more members (``sha1hex``, ``REDIS_VERSION``, the
replication constants...), removes what could reach the host (``os``,
``io``, ``require``, ``print``...), and makes the global table read-only: a
script that reads an undefined global or creates one fails. fakeredis runs
scripts in lupa's Lua 5.1 without any of that; :func:`install` adds it to a
fakeredis server's Lua runtime. The libraries are written here in Python,
following the C sources byte for byte where it shows (integer conversions,
encodings chosen by size, alignment), and are called from Lua through lupa.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Callable
from typing import Any, Final

from .memory_lua_msgpack import cmsgpack_library
from .memory_lua_values import (
    LuaLibraryError,
    c_double,
    checknumber,
    checkstring,
    lua_integer,
    lua_number,
    lua_type_name,
    number_text,
)

__all__ = ["c_double", "install", "lua_integer", "lua_number"]

# Globals of a Lua 5.1 runtime that Redis 7 does not give scripts.
_REMOVED: Final = (
    "debug",
    "dofile",
    "getfenv",
    "io",
    "loadfile",
    "module",
    "newproxy",
    "os",
    "package",
    "print",
    "python",
    "require",
    "setfenv",
)

_MASK64: Final = 2**64 - 1


# -- bit (LuaBitOp 1.0) ---------------------------------------------------------------


def _barg(value: Any, position: int, function: str) -> int:
    """LuaBitOp's ``barg``: add 2**52 + 2**51 and keep the low 32 bits of the double (rounds, wraps)."""
    number = checknumber(value, position, function)
    biased = number + 6755399441055744.0
    bits: int = struct.unpack("<Q", struct.pack("<d", biased))[0]
    return bits & 0xFFFFFFFF


def _signed(bits: int) -> int:
    bits &= 0xFFFFFFFF
    return bits - (1 << 32) if bits & 0x80000000 else bits


def _bit_library() -> dict[bytes, Callable[..., Any]]:
    def tobit(x: Any = None) -> int:
        return _signed(_barg(x, 1, "tobit"))

    def bnot(x: Any = None) -> int:
        return _signed(~_barg(x, 1, "bnot"))

    def fold(name: str, operation: Callable[[int, int], int]) -> Callable[..., int]:
        def apply(*args: Any) -> int:
            bits = _barg(args[0] if args else None, 1, name)
            for position in range(len(args), 1, -1):  # from the last argument, as LuaBitOp does
                bits = operation(bits, _barg(args[position - 1], position, name))
            return _signed(bits)

        return apply

    def shift(name: str, operation: Callable[[int, int], int]) -> Callable[..., int]:
        def apply(x: Any = None, n: Any = None) -> int:
            bits = _barg(x, 1, name)
            count = _barg(n, 2, name) & 31
            return _signed(operation(bits, count))

        return apply

    def tohex(*args: Any) -> bytes:
        bits = _barg(args[0] if args else None, 1, "tohex")
        count = 8 if len(args) < 2 else _signed(_barg(args[1], 2, "tohex"))
        digits = "0123456789abcdef"
        if count < 0:
            count, digits = -count, "0123456789ABCDEF"
        count = min(count, 8)
        out = []
        for _ in range(count):
            out.append(digits[bits & 15])
            bits >>= 4
        return "".join(reversed(out)).encode()

    def bswap(x: Any = None) -> int:
        bits = _barg(x, 1, "bswap")
        return _signed(int.from_bytes(bits.to_bytes(4, "little"), "big"))

    return {
        b"tobit": tobit,
        b"bnot": bnot,
        b"band": fold("band", lambda a, b: a & b),
        b"bor": fold("bor", lambda a, b: a | b),
        b"bxor": fold("bxor", lambda a, b: a ^ b),
        b"lshift": shift("lshift", lambda b, n: b << n),
        b"rshift": shift("rshift", lambda b, n: b >> n),
        b"arshift": shift("arshift", lambda b, n: _signed(b) >> n),
        b"rol": shift("rol", lambda b, n: (b << n) | (b >> (32 - n))),
        b"ror": shift("ror", lambda b, n: (b << (32 - n)) | (b >> n)),
        b"tohex": tohex,
        b"bswap": bswap,
    }


# -- struct (lua_struct 0.2, as bundled with Redis) ---------------------------------------

_STRUCT_MAXINTSIZE: Final = 32
_STRUCT_MAXALIGN: Final = 8  # max(padding of double, sizeof(int)) on x86-64
_SIZES: Final = {"b": 1, "B": 1, "h": 2, "H": 2, "l": 8, "L": 8, "T": 8, "f": 4, "d": 8, "x": 1}


class _Format:
    """A cursor over a struct format: options, sizes, endianness and alignment."""

    def __init__(self, fmt: Any, function: str) -> None:
        if not isinstance(fmt, bytes):
            if isinstance(fmt, int | float) and not isinstance(fmt, bool):
                fmt = number_text(fmt)
            else:
                got = lua_type_name(fmt) if fmt is not None else "nil"
                raise LuaLibraryError(f"bad argument #1 to '{function}' (string expected, got {got})")
        self.text = fmt.decode("latin-1")
        self.position = 0
        self.little = True  # native: x86-64
        self.align = 1
        self.function = function

    def number(self, default: int) -> int:
        start = self.position
        while self.position < len(self.text) and self.text[self.position].isdigit():
            self.position += 1
        if start == self.position:
            return default
        return int(self.text[start : self.position])

    def next(self) -> tuple[str, int] | None:
        if self.position >= len(self.text):
            return None
        option = self.text[self.position]
        self.position += 1
        if option in _SIZES:
            size = _SIZES[option]
        elif option == "c":
            size = self.number(1)
        elif option in "iI":
            size = self.number(4)
            if size > _STRUCT_MAXINTSIZE:
                raise LuaLibraryError(f"integral size {size} is larger than limit of {_STRUCT_MAXINTSIZE}")
        else:
            size = 0
        return option, size

    def to_align(self, length: int, option: str, size: int) -> int:
        if size == 0 or option == "c":
            return 0
        size = min(size, self.align)
        return (size - (length & (size - 1))) & (size - 1)

    def control(self, option: str) -> None:
        if option == " ":
            return
        if option == ">":
            self.little = False
        elif option == "<":
            self.little = True
        elif option == "!":
            align = self.number(_STRUCT_MAXALIGN)
            if align <= 0 or align & (align - 1):
                raise LuaLibraryError(f"alignment {align} is not a power of 2")
            self.align = align
        else:
            raise LuaLibraryError(f"bad argument #1 to '{self.function}' (invalid format option '{option}')")


def _c_unsigned(number: float) -> int:
    """gcc's ``(unsigned long)`` of a double on x86-64: NaN gives 2**63, 2**64 and beyond give 0."""
    if math.isnan(number):
        return 1 << 63
    if number >= 2**63:
        return int(number) if number < 2**64 else 0
    return int(number)


def _pack_integer(number: float, size: int, little: bool) -> bytes:
    # (Uinttype)(Inttype)n for a negative n, (Uinttype)n otherwise
    value = (lua_integer(number) if number < 0 else _c_unsigned(number)) & _MASK64
    out = bytearray(size)
    for i in range(size):
        out[i if little else size - 1 - i] = value & 0xFF
        value >>= 8
    return bytes(out)


def _unpack_integer(data: bytes, little: bool, signed: bool, size: int) -> int:
    value = 0
    ordered = reversed(data) if little else data
    for byte in ordered:
        value = ((value << 8) | byte) & _MASK64
    if signed and 0 < size <= 8:
        mask = (_MASK64 << (size * 8 - 1)) & _MASK64
        if value & mask:
            value |= mask
        if value >= 2**63:
            value -= 2**64
    return value


def _float_bytes(number: float, size: int, little: bool) -> bytes:
    code = ("<" if little else ">") + ("f" if size == 4 else "d")
    try:
        return struct.pack(code, number)
    except OverflowError:  # C's (float) of a double beyond its range is an infinity
        return struct.pack(code, math.copysign(math.inf, number))


def _struct_library() -> dict[bytes, Callable[..., Any]]:
    def pack(fmt: Any = None, *args: Any) -> bytes:
        cursor = _Format(fmt, "pack")
        out = bytearray()
        argument = 0
        while (item := cursor.next()) is not None:
            option, size = item
            padding = cursor.to_align(len(out), option, size)
            out += b"\0" * padding
            if option in "bBhHlLTiI":
                number = checknumber(args[argument] if argument < len(args) else None, argument + 2, "pack")
                argument += 1
                out += _pack_integer(number, size, cursor.little)
            elif option == "x":
                out += b"\0"
            elif option in "fd":
                number = checknumber(args[argument] if argument < len(args) else None, argument + 2, "pack")
                argument += 1
                out += _float_bytes(number, size, cursor.little)
            elif option in "cs":
                text = checkstring(args[argument] if argument < len(args) else None, argument + 2, "pack")
                argument += 1
                if size == 0:
                    size = len(text)
                if len(text) < size:
                    raise LuaLibraryError(f"bad argument #{argument + 1} to 'pack' (string too short)")
                out += text[:size]
                if option == "s":
                    out += b"\0"
            else:
                cursor.control(option)
        return bytes(out)

    def unpack(fmt: Any = None, data: Any = None, init: Any = None) -> tuple[Any, ...]:
        cursor = _Format(fmt, "unpack")
        raw = checkstring(data, 2, "unpack")
        position = 0 if init is None else int(checknumber(init, 3, "unpack")) - 1
        if not 0 <= position <= len(raw):
            raise LuaLibraryError("bad argument #3 to 'unpack' (initial position must be within the string)")
        results: list[Any] = []
        while (item := cursor.next()) is not None:
            option, size = item
            position += cursor.to_align(position, option, size)
            if size > len(raw) or position > len(raw) - size:
                raise LuaLibraryError("bad argument #2 to 'unpack' (data string too short)")
            if option in "bBhHlLTiI":
                number = _unpack_integer(raw[position : position + size], cursor.little, option.islower(), size)
                results.append(float(number) if number >= 2**63 else number)  # a lua_Number either way
            elif option in "fd":
                code = ("<" if cursor.little else ">") + option
                results.append(struct.unpack(code, raw[position : position + size])[0])
            elif option == "c":
                if size == 0:
                    if not results or lua_number(results[-1]) is None:
                        raise LuaLibraryError("format 'c0' needs a previous size")
                    size = int(lua_number(results.pop()) or 0)
                    if size > len(raw) or position > len(raw) - size:
                        raise LuaLibraryError("bad argument #2 to 'unpack' (data string too short)")
                results.append(raw[position : position + size])
            elif option == "s":
                end = raw.find(b"\0", position)
                if end == -1:
                    raise LuaLibraryError("unfinished string in data")
                size = end - position + 1
                results.append(raw[position:end])
            elif option != "x":
                cursor.control(option)
            position += size
        return (*results, position + 1)

    def size(fmt: Any = None) -> int:
        cursor = _Format(fmt, "size")
        position = 0
        while (item := cursor.next()) is not None:
            option, length = item
            position += cursor.to_align(position, option, length)
            if option == "s":
                raise LuaLibraryError("bad argument #1 to 'size' (options 's' cannot be used in size)")
            if option == "c" and length == 0:
                raise LuaLibraryError("bad argument #1 to 'size' (options 'c0' cannot be used in size)")
            if option not in _SIZES and option not in "ciI":
                cursor.control(option)
            position += length
        return position

    return {b"pack": pack, b"unpack": unpack, b"size": size}


# -- cmsgpack (lua_cmsgpack 0.4, as bundled with Redis) ------------------------------------


class _Rand48:
    """The ``lrand48`` generator Redis gives ``math.random``: one sequence per server, from its start.

    Redis 7 neither reseeds it per script nor draws from the C library's
    ``rand()``, as plain Lua does: the first ``math.random()`` of a fresh
    server is always 0.39646477363839.
    """

    _MULTIPLIER: Final = 0x5DEECE66D
    _INCREMENT: Final = 0xB
    _MASK48: Final = (1 << 48) - 1
    _MAX: Final = 2147483647  # REDIS_LRAND48_MAX

    def __init__(self) -> None:
        self.state = 0x1234ABCD330E

    def _next(self) -> float:
        self.state = (self._MULTIPLIER * self.state + self._INCREMENT) & self._MASK48
        return ((self.state >> 17) % self._MAX) / self._MAX

    def random(self, *args: Any) -> float:
        value = self._next()
        if not args:
            return value
        if len(args) == 1:
            upper = _checkint(args[0], 1, "random")
            if upper < 1:
                raise LuaLibraryError("bad argument #1 to 'random' (interval is empty)")
            return float(math.floor(value * upper) + 1)
        if len(args) == 2:
            lower, upper = _checkint(args[0], 1, "random"), _checkint(args[1], 2, "random")
            if lower > upper:
                raise LuaLibraryError("bad argument #2 to 'random' (interval is empty)")
            return float(math.floor(value * (upper - lower + 1)) + lower)
        raise LuaLibraryError("wrong number of arguments")

    def randomseed(self, seed: Any = None) -> None:
        self.state = ((_checkint(seed, 1, "randomseed") & 0xFFFFFFFF) << 16) | 0x330E


def _checkint(value: Any, position: int, function: str) -> int:
    """``luaL_checkint``: the number truncated, then as a C ``int`` (32 bits)."""
    number = lua_integer(checknumber(value, position, function)) & 0xFFFFFFFF
    return number - (1 << 32) if number & 0x80000000 else number


# -- installing it all -----------------------------------------------------------------------

# Run once in the runtime: the members of `redis` fakeredis leaves out, the
# sandbox, and read-only globals. KEYS and ARGV are assigned by fakeredis
# before each script: they exist already, so the guard never sees them.
_SETUP: Final = b"""
local version, version_num, sha1hex, acl_check_cmd, removed, random, randomseed = ...
math.random = random
math.randomseed = randomseed
redis.REDIS_VERSION = version
redis.REDIS_VERSION_NUM = version_num
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.sha1hex = sha1hex
redis.acl_check_cmd = acl_check_cmd
redis.breakpoint = function() return false end
redis.debug = function() end
redis.replicate_commands = function() return true end
redis.set_repl = function() end
for _, name in ipairs(removed) do
  rawset(_G, name, nil)
end
-- Python callables are userdata to Lua: wrap them, so that type() says "function" as in Redis.
local function wrap(lib)
  for name, member in pairs(lib) do
    if type(member) == 'userdata' then
      lib[name] = function(...) return member(...) end
    end
  end
end
wrap(bit)
wrap(struct)
wrap(cmsgpack)
wrap(redis)
wrap(math)
-- Redis makes the libraries read-only: a script cannot change them for the
-- scripts after it. Each becomes an empty proxy that reads through to it
-- (so pairs() over a library lists nothing here), and strings' methods go
-- through the proxy of `string`.
local function readonly(library)
  return setmetatable({}, {
    __index = library,
    __newindex = function()
      error("Attempt to modify a readonly table", 2)
    end,
    __metatable = false,
  })
end
for _, name in ipairs({'string', 'math', 'table', 'coroutine', 'bit', 'struct', 'cmsgpack', 'cjson', 'redis'}) do
  rawset(_G, name, readonly(rawget(_G, name)))
end
getmetatable('').__index = rawget(_G, 'string')
-- lupa itself looks up `debug` (for tracebacks) from C, where an error
-- cannot be caught: it reads as nil instead of failing.
local quiet = {debug = true}
setmetatable(_G, {
  __index = function(_, name)
    if quiet[name] then
      return nil
    end
    error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
  end,
  __newindex = function()
    error("Attempt to modify a readonly table", 2)
  end,
  __metatable = false,
})
"""


def install(
    runtime: Any, lua_type: Callable[[Any], str | None], version: tuple[int, ...], known: Callable[[bytes], bool]
) -> None:
    """Give a fakeredis server's Lua runtime what Redis 7 gives scripts (see the module docstring).

    ``lua_type`` is lupa's ``lua_type``; ``version`` the server version;
    ``known(name)`` whether a command exists (for ``redis.acl_check_cmd``).
    """
    globals_ = runtime.globals()

    def table_of(members: dict[bytes, Any]) -> Any:
        table = runtime.table()
        for name, member in members.items():
            table[name] = member
        return table

    globals_[b"bit"] = table_of(_bit_library())
    globals_[b"struct"] = table_of(_struct_library())
    globals_[b"cmsgpack"] = table_of(cmsgpack_library(lua_type, runtime.table))

    def sha1hex(*args: Any) -> bytes:
        if len(args) != 1:
            raise LuaLibraryError("wrong number of arguments")
        return hashlib.sha1(checkstring(args[0], 1, "sha1hex"), usedforsecurity=False).hexdigest().encode()

    def acl_check_cmd(*args: Any) -> bool:
        if not args or not isinstance(args[0], bytes):
            raise LuaLibraryError("Please specify at least one argument for this redis lib call")
        if not known(args[0].lower()):
            raise LuaLibraryError("Invalid command passed to redis.acl_check_cmd()")
        return True  # the embedded backend has one user, allowed everything

    generator = _Rand48()
    padded = (*version, 0, 0)[:3]
    runtime.execute(
        _SETUP,
        ".".join(str(part) for part in padded).encode(),
        (padded[0] << 16) | (padded[1] << 8) | padded[2],
        sha1hex,
        acl_check_cmd,
        runtime.table_from([name.encode() for name in _REMOVED]),
        generator.random,
        generator.randomseed,
    )
