"""``cmsgpack`` for ``memory://`` scripts: Redis' ``lua_cmsgpack`` (pack, unpack, unpack_one, unpack_limit).

Part of the Lua environment :mod:`.memory_lua` installs; written in Python
after the C source, with the same encodings chosen by size and the same
nesting limit.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from typing import Any, Final

from .memory_lua_values import LuaLibraryError, checknumber, checkstring

__all__ = ["cmsgpack_library"]


_MAX_NESTING: Final = 16


class _Unpacker:
    def __init__(self, data: bytes, offset: int, make_table: Callable[[], Any]) -> None:
        self.data = data
        self.position = offset
        self.make_table = make_table

    def take(self, count: int) -> bytes:
        if self.position + count > len(self.data):
            raise LuaLibraryError("Missing bytes in input.")
        chunk = self.data[self.position : self.position + count]
        self.position += count
        return chunk

    def value(self) -> Any:
        code = self.take(1)[0]
        if code <= 0x7F:
            return code
        if code >= 0xE0:
            return code - 0x100
        if 0xA0 <= code <= 0xBF:
            return self.take(code & 0x1F)
        if 0x90 <= code <= 0x9F:
            return self.array(code & 0x0F)
        if 0x80 <= code <= 0x8F:
            return self.map(code & 0x0F)
        simple: dict[int, tuple[str, int]] = {
            0xCC: (">B", 1),
            0xCD: (">H", 2),
            0xCE: (">I", 4),
            0xCF: (">Q", 8),
            0xD0: (">b", 1),
            0xD1: (">h", 2),
            0xD2: (">i", 4),
            0xD3: (">q", 8),
            0xCA: (">f", 4),
            0xCB: (">d", 8),
        }
        if code in simple:
            form, width = simple[code]
            number = struct.unpack(form, self.take(width))[0]
            return float(number) if code == 0xCF and number >= 2**63 else number
        if code == 0xC0:
            return None
        if code == 0xC2:
            return False
        if code == 0xC3:
            return True
        lengths = {0xD9: (">B", 1), 0xDA: (">H", 2), 0xDB: (">I", 4), 0xC4: (">B", 1), 0xC5: (">H", 2), 0xC6: (">I", 4)}
        if code in lengths:
            form, width = lengths[code]
            return self.take(struct.unpack(form, self.take(width))[0])
        if code in (0xDC, 0xDD):
            return self.array(struct.unpack(">H" if code == 0xDC else ">I", self.take(2 if code == 0xDC else 4))[0])
        if code in (0xDE, 0xDF):
            return self.map(struct.unpack(">H" if code == 0xDE else ">I", self.take(2 if code == 0xDE else 4))[0])
        raise LuaLibraryError("Bad data format in input.")

    def array(self, count: int) -> Any:
        table = self.make_table()
        for index in range(1, count + 1):
            table[index] = self.value()
        return table

    def map(self, count: int) -> Any:
        table = self.make_table()
        for _ in range(count):
            key = self.value()
            item = self.value()
            if key is None:
                raise LuaLibraryError("table index is nil")
            table[key] = item
        return table


def cmsgpack_library(lua_type: Callable[[Any], str | None], make_table: Callable[[], Any]) -> dict[bytes, Any]:
    def encode(value: Any, level: int, out: bytearray) -> None:
        kind = lua_type(value)
        if kind == "table" and level == _MAX_NESTING:
            kind = None
            value = None
        if value is None or (kind is not None and kind != "table"):
            out.append(0xC0)  # nil, and what msgpack cannot hold (functions...)
        elif kind == "table":
            encode_table(value, level, out)
        elif isinstance(value, bool):
            out.append(0xC3 if value else 0xC2)
        elif isinstance(value, bytes):
            encode_bytes(value, out)
        elif isinstance(value, int | float):
            encode_number(float(value), out)
        else:
            out.append(0xC0)

    def encode_number(number: float, out: bytearray) -> None:
        if not math.isinf(number) and not math.isnan(number) and -(2**63) <= number < 2**63 and number == int(number):
            encode_integer(int(number), out)
            return
        try:
            single = struct.unpack(">f", struct.pack(">f", number))[0]
        except OverflowError:
            single = None
        if single is not None and (single == number or (math.isinf(number) and single == number)):
            out += b"\xca" + struct.pack(">f", number)
        else:
            out += b"\xcb" + struct.pack(">d", number)

    def encode_integer(n: int, out: bytearray) -> None:
        if n >= 0:
            if n <= 127:
                out.append(n)
            elif n <= 0xFF:
                out += b"\xcc" + struct.pack(">B", n)
            elif n <= 0xFFFF:
                out += b"\xcd" + struct.pack(">H", n)
            elif n <= 0xFFFFFFFF:
                out += b"\xce" + struct.pack(">I", n)
            else:
                out += b"\xcf" + struct.pack(">Q", n)
        elif n >= -32:
            out += struct.pack(">b", n)
        elif n >= -128:
            out += b"\xd0" + struct.pack(">b", n)
        elif n >= -32768:
            out += b"\xd1" + struct.pack(">h", n)
        elif n >= -2147483648:
            out += b"\xd2" + struct.pack(">i", n)
        else:
            out += b"\xd3" + struct.pack(">q", n)

    def encode_bytes(data: bytes, out: bytearray) -> None:
        size = len(data)
        if size < 32:
            out.append(0xA0 | size)
        elif size <= 0xFF:
            out += b"\xd9" + struct.pack(">B", size)
        elif size <= 0xFFFF:
            out += b"\xda" + struct.pack(">H", size)
        else:
            out += b"\xdb" + struct.pack(">I", size)
        out += data

    def encode_table(table: Any, level: int, out: bytearray) -> None:
        items = list(table.items())
        count, highest, is_array = 0, 0, True
        for key, _ in items:
            if isinstance(key, bool) or not isinstance(key, int | float) or key <= 0 or key != int(key):
                is_array = False
                break
            highest = max(highest, int(key))
            count += 1
        if is_array and count == highest:
            length = len(table)
            if length <= 15:
                out.append(0x90 | length)
            elif length <= 0xFFFF:
                out += b"\xdc" + struct.pack(">H", length)
            else:
                out += b"\xdd" + struct.pack(">I", length)
            for index in range(1, length + 1):
                encode(table[index], level + 1, out)
            return
        size = len(items)
        if size <= 15:
            out.append(0x80 | size)
        elif size <= 0xFFFF:
            out += b"\xde" + struct.pack(">H", size)
        else:
            out += b"\xdf" + struct.pack(">I", size)
        for key, item in items:
            encode(key, level + 1, out)
            encode(item, level + 1, out)

    def pack(*args: Any) -> bytes:
        if not args:
            raise LuaLibraryError("bad argument #0 to 'pack' (MessagePack pack needs input.)")
        out = bytearray()
        for value in args:
            encode(value, 0, out)
        return bytes(out)

    def unpack_full(data: Any, limit: int, offset: int) -> tuple[Any, ...]:
        raw = checkstring(data, 1, "unpack")
        decode_all = not limit and not offset
        if offset < 0 or limit < 0:
            raise LuaLibraryError(f"Invalid request to unpack with offset of {offset} and limit of {len(raw)}.")
        if offset > len(raw):
            raise LuaLibraryError(f"Start offset {offset} greater than input length {len(raw)}.")
        unpacker = _Unpacker(raw, offset, make_table)
        values: list[Any] = []
        while unpacker.position < len(raw) and (decode_all or len(values) < limit):
            values.append(unpacker.value())
        if decode_all:
            return tuple(values)
        left = len(raw) - unpacker.position
        return (-1 if left == 0 else unpacker.position, *values)

    def unpack(data: Any = None) -> tuple[Any, ...]:
        return unpack_full(data, 0, 0)

    def unpack_one(data: Any = None, offset: Any = None) -> tuple[Any, ...]:
        start = 0 if offset is None else int(checknumber(offset, 2, "unpack_one"))
        return unpack_full(data, 1, start)

    def unpack_limit(data: Any = None, limit: Any = None, offset: Any = None) -> tuple[Any, ...]:
        count = int(checknumber(limit, 2, "unpack_limit"))
        start = 0 if offset is None else int(checknumber(offset, 3, "unpack_limit"))
        return unpack_full(data, count, start)

    return {
        b"pack": pack,
        b"unpack": unpack,
        b"unpack_one": unpack_one,
        b"unpack_limit": unpack_limit,
        b"_NAME": b"cmsgpack",
        b"_VERSION": b"lua-cmsgpack 0.4.0",
        b"_COPYRIGHT": b"Copyright (C) 2012, Salvatore Sanfilippo",
        b"_DESCRIPTION": b"MessagePack C implementation for Lua",
    }


# -- math.random (Redis' rand48) ------------------------------------------------------------
