"""The ``memory://`` server's commands where fakeredis answers differently from Redis 7.

fakeredis runs each client connection on a "socket" object whose methods are
the commands. :class:`MemorySocket` is that socket with the corrections the
library makes, so they hold wherever a command can run (alone, in a
pipeline, inside ``MULTI``/``EXEC``, from a Lua script):

* ``INCRBYFLOAT``/``HINCRBYFLOAT`` compute in Redis' ``long double`` and
  print as Redis does (:mod:`.long_double`), and refuse what Redis refuses;
* ``DECRBY`` of the smallest integer is refused as Redis refuses it;
* sorted-set scores and score ranges are read as C's ``strtod`` reads them
  (hexadecimal accepted; ``1_0`` and non-ASCII digits refused), where
  fakeredis uses Python's ``float()``;
* ``INFO`` and ``MEMORY USAGE`` exist (memory figures are estimates: the
  embedded backend has no allocator to ask);
* a number a script returns becomes an integer as Redis converts it (C's
  ``(long long)`` cast: out of range and NaN give the smallest integer);
* scripts get Redis' Lua libraries and sandbox (:mod:`.memory_lua`).

:class:`MemoryConnection` makes fakeredis' client use this socket. Nothing
here changes fakeredis for anyone else in the process.
"""

from __future__ import annotations

import math
import pickle
from typing import TYPE_CHECKING, Any, Final

from fakeredis import _msgs as fakeredis_messages
from fakeredis._command_args_parsing import Int
from fakeredis._commands import SUPPORTED_COMMANDS, Key, Signature
from fakeredis._helpers import SimpleError
from fakeredis.aioredis import AsyncFakeSocket, FakeAsyncRedisConnection, FakeReader, FakeWriter
from fakeredis.commands_mixins.scripting_mixin import LUA_MODULE
from fakeredis.model import Hash

from .long_double import add as long_double_add
from .long_double import format_human
from .long_double import parse as parse_long_double
from .memory_lua import install
from .memory_lua_values import c_double, lua_integer

if TYPE_CHECKING:
    from fakeredis._core import CommandItem

__all__ = ["MemoryConnection", "MemorySocket"]

_NOT_A_FLOAT: Final = "ERR value is not a valid float"
_HASH_NOT_A_FLOAT: Final = "ERR hash value is not a float"
_WOULD_BE_INFINITE: Final = "ERR increment would produce NaN or Infinity"
_INCREMENT_INFINITE: Final = "ERR value is NaN or Infinity"
_LLONG_MIN: Final = -(2**63)
# What a real server adds to a key's serialized size (its dictionary entry,
# object header, expiry slot): MEMORY USAGE of a short string is about this.
_PER_KEY_OVERHEAD: Final = 76


def _flags(name: str) -> str:
    return "".join(SUPPORTED_COMMANDS[name].flags)


def _signature(name: str, method: str, fixed: tuple[Any, ...], repeat: tuple[Any, ...] = (), flags: str = "") -> Any:
    """A fakeredis command signature: argument types (``Key(...)`` for keys), answered by ``method``."""
    return Signature(name, method, fixed, repeat, flags=flags)


# The commands answered here, by the name fakeredis looks them up under.
_SIGNATURES: Final = {
    "incrbyfloat": _signature("incrbyfloat", "ng_incrbyfloat", (Key(bytes), bytes), flags=_flags("incrbyfloat")),
    "hincrbyfloat": _signature(
        "hincrbyfloat", "ng_hincrbyfloat", (Key(Hash), bytes, bytes), flags=_flags("hincrbyfloat")
    ),
    "decrby": _signature("decrby", "ng_decrby", (Key(bytes), Int), flags=_flags("decrby")),
    "info": _signature("info", "ng_info", (), (bytes,)),
    "memory": _signature("memory", "ng_memory", (bytes,), (bytes,)),
}

# INFO's sections on memory://, in Redis' order; "default", "all" and
# "everything" give them all.
_SECTIONS: Final = ("server", "clients", "memory", "keyspace")


# Sorted-set commands and the positions of their double arguments (after the
# command name): scores and increments are read as getDoubleFromObject reads
# them, range bounds as zslParseRange does.
_SCORE_FLAGS: Final = frozenset({b"nx", b"xx", b"gt", b"lt", b"ch", b"incr"})
_RANGE_COMMANDS: Final = {"zcount": 1, "zrangebyscore": 1, "zrevrangebyscore": 1, "zremrangebyscore": 1}
_INVALID: Final = b"not-a-float"
_C_SPACES: Final = b" \t\n\v\f\r"


def _score(text: bytes) -> bytes:
    """A score or increment in the text fakeredis reads as Redis would read ``text`` (or one it refuses)."""
    if not text or text[:1].isspace():
        return _INVALID
    value = c_double(text)
    if value is None or math.isnan(value):
        return _INVALID
    written_infinite = b"inf" in text.lower()
    if (math.isinf(value) and not written_infinite) or (value == 0 and _has_nonzero_digit(text)):
        return _INVALID  # out of range: strtod's ERANGE, refused
    return repr(value).encode()


def _bound(text: bytes) -> bytes:
    """A range bound (``(``: exclusive) as zslParseRange reads it: a C string, spaces skipped, ERANGE allowed."""
    text = text.split(b"\0", 1)[0]
    exclusive = text.startswith(b"(")
    body = (text[1:] if exclusive else text).lstrip(_C_SPACES)
    value = 0.0 if not body else c_double(body)
    if value is None or math.isnan(value):
        return _INVALID
    return (b"(" if exclusive else b"") + repr(value).encode()


def _has_nonzero_digit(text: bytes) -> bool:
    mantissa = text.lower().lstrip(b"+-").removeprefix(b"0x").split(b"e")[0].split(b"p")[0]
    return any(c in b"123456789abcdef" for c in mantissa)


def _doubles_as_redis_reads_them(name: str, args: list[Any]) -> list[Any]:
    if name == "zadd":
        args = list(args)
        index = 1
        while index < len(args) and bytes(args[index]).lower() in _SCORE_FLAGS:
            index += 1
        for position in range(index, len(args), 2):
            args[position] = _score(bytes(args[position]))
        return args
    if name == "zincrby" and len(args) > 1:
        return [args[0], _score(bytes(args[1])), *args[2:]]
    first = _RANGE_COMMANDS.get(name)
    if first is None and name in ("zrange", "zrangestore"):
        offset = 1 if name == "zrangestore" else 0
        if any(bytes(a).lower() == b"byscore" for a in args[3 + offset :]):
            first = 1 + offset
    if first is not None and len(args) > first + 1:
        args = list(args)
        args[first], args[first + 1] = _bound(bytes(args[first])), _bound(bytes(args[first + 1]))
    return args


def _estimate(value: Any) -> int:
    """Bytes a value would take on a server: its serialized size plus the per-key overhead."""
    return len(pickle.dumps(value)) + _PER_KEY_OVERHEAD


class MemorySocket(AsyncFakeSocket):
    """fakeredis' connection state, answering some commands as Redis does (see the module docstring)."""

    def _name_to_func(self, cmd_name: str) -> tuple[Any, Signature]:
        signature = _SIGNATURES.get(cmd_name)
        if signature is not None:
            return getattr(self, signature.func_name), signature
        return super()._name_to_func(cmd_name)

    # -- numbers -------------------------------------------------------------------------

    def _run_command(self, func: Any, sig: Any, args: list[Any], from_script: bool) -> Any:
        name = sig.name
        if name.startswith("z") and (name in _RANGE_COMMANDS or name in ("zadd", "zincrby", "zrange", "zrangestore")):
            args = _doubles_as_redis_reads_them(name, args)
        return super()._run_command(func, sig, args, from_script)

    def ng_incrbyfloat(self, key: CommandItem, amount: bytes) -> bytes:
        current = parse_long_double(key.get(b"0"))
        if current is None:
            raise SimpleError(_NOT_A_FLOAT)
        increment = parse_long_double(amount)
        if increment is None:
            raise SimpleError(_NOT_A_FLOAT)
        total = long_double_add(current, increment)
        if total is None or isinstance(total, float):
            raise SimpleError(_WOULD_BE_INFINITE)
        encoded = format_human(total)
        key.update(encoded)
        return encoded

    def ng_hincrbyfloat(self, key: CommandItem, field: bytes, amount: bytes) -> bytes:
        increment = parse_long_double(amount)
        if increment is None:
            raise SimpleError(_NOT_A_FLOAT)
        if isinstance(increment, float):
            raise SimpleError(_INCREMENT_INFINITE)
        current = parse_long_double(key.value.get(field, b"0"))
        if current is None:
            raise SimpleError(_HASH_NOT_A_FLOAT)
        total = long_double_add(current, increment)
        if total is None or isinstance(total, float):
            raise SimpleError(_WOULD_BE_INFINITE)
        encoded = format_human(total)
        key.value.update({field: encoded}, clear_expiration=False)
        key.updated()
        self.add_subkey_event(b"hincrbyfloat", key.key, (field,))
        return encoded

    def ng_decrby(self, key: CommandItem, amount: int) -> int:
        if amount == _LLONG_MIN:  # its negation does not fit
            raise SimpleError("ERR decrement would overflow")
        return self.decrby(key, amount)  # type: ignore[no-any-return]

    # -- server ----------------------------------------------------------------------------

    def ng_info(self, *sections: bytes) -> bytes:
        wanted = {s.decode("utf-8", "replace").lower() for s in sections} or {"default"}
        if wanted & {"default", "all", "everything"}:
            wanted = set(_SECTIONS)
        lines: list[str] = []
        for section in _SECTIONS:
            if section in wanted:
                lines += getattr(self, f"_info_{section}")()
        return "\r\n".join(lines).encode() + (b"\r\n" if lines else b"")

    def _info_server(self) -> list[str]:
        version = ".".join(str(part) for part in (*self._server.version, 0, 0)[:3])
        return ["# Server", f"redis_version:{version}", "redis_mode:embedded", "fakeredis:1", ""]

    def _info_clients(self) -> list[str]:
        return ["# Clients", f"connected_clients:{max(1, len(self._server.sockets))}", ""]

    def _info_memory(self) -> list[str]:
        used = 0
        for database in self._server.dbs.values():
            for name in list(database):
                item = database.get(name)
                if item is not None:
                    used += _estimate(item.value)
        return ["# Memory", f"used_memory:{used}", f"used_memory_human:{used / 1024:.2f}K", ""]

    def _info_keyspace(self) -> list[str]:
        lines = ["# Keyspace"]
        for number, database in sorted(self._server.dbs.items()):
            names = list(database)
            if names:
                expiring = sum(1 for name in names if (item := database.get(name)) is not None and item.expireat)
                lines.append(f"db{number}:keys={len(names)},expires={expiring},avg_ttl=0")
        return [*lines, ""]

    def ng_memory(self, subcommand: bytes, *args: bytes) -> int | None:
        if subcommand.lower() != b"usage":
            raise SimpleError(f"ERR unknown subcommand '{subcommand.decode('utf-8', 'replace')}'. Try MEMORY HELP.")
        if not args or len(args) not in (1, 3) or (len(args) == 3 and args[1].lower() != b"samples"):
            raise SimpleError(fakeredis_messages.SYNTAX_ERROR_MSG)
        item = self._db.get(args[0])
        return None if item is None else _estimate(item.value)

    # -- scripts -------------------------------------------------------------------------------

    def _convert_lua_result(self, result: Any, nested: bool = True) -> Any:
        # A Lua number is a double; Redis hands it back as an integer reply by
        # C's cast, which gives the smallest integer for NaN, infinities and
        # anything out of range (x86-64).
        if isinstance(result, float | int) and not isinstance(result, bool):
            return lua_integer(float(result)) if isinstance(result, float) else _clamped(result)
        return super()._convert_lua_result(result, nested)

    def _get_server_runtime(self, server: Any) -> Any:
        runtime = super()._get_server_runtime(server)
        if not getattr(server, "ng_lua_ready", False):
            install(runtime, LUA_MODULE.lua_type, tuple(server.version), _known_command)
            # fakeredis refuses globals a script leaves behind by comparing
            # with the ones it knew: it must know the libraries added here
            # (in place: its callbacks hold this very set).
            server._lua_expected_globals.update(runtime.globals().keys())
            server.ng_lua_ready = True
        return runtime


def _clamped(value: int) -> int:
    return value if -(2**63) <= value < 2**63 else _LLONG_MIN


def _known_command(name: bytes) -> bool:
    text = name.decode("utf-8", "replace")
    return text in SUPPORTED_COMMANDS or text in _SIGNATURES


class MemoryConnection(FakeAsyncRedisConnection):
    """fakeredis' connection, on a :class:`MemorySocket`."""

    async def _connect(self) -> None:
        server: Any = self._server
        if not server.connected:
            raise self._connection_error_class(fakeredis_messages.CONNECTION_ERROR_MSG)
        socket = MemorySocket(
            server,
            self.db,
            client_class=self._client_class,
            lua_modules=self._lua_modules,
            client_info=self._client_info,
        )
        self._sock = socket
        self._reader = FakeReader(socket)
        self._writer = FakeWriter(socket)
