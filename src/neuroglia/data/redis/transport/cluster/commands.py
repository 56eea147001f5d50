"""Where a command's keys are, and whether it only reads: what routing needs to know of each command.

A static table covers every command the library sends (the repository's
families, the locks' and cache layer's scripts, the server commands), and
the common ones an application may send through ``eval_async`` or a
pipeline; :func:`keys_of` returns ``None`` for a command it does not know,
and the transport then asks the server (``COMMAND GETKEYS``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

__all__ = ["READ_ONLY", "SCRIPTS", "command_key", "keys_of", "what_of"]

Args = tuple[Any, ...]
Positions = Callable[[Args], list[Any]]


def _first(args: Args) -> list[Any]:
    return [args[1]] if len(args) > 1 else []


def _second(args: Args) -> list[Any]:
    return [args[2]] if len(args) > 2 else []


def _all(args: Args) -> list[Any]:
    return list(args[1:])


def _all_but_last(args: Args) -> list[Any]:  # BLPOP k1 k2 timeout
    return list(args[1:-1])


def _pairs(args: Args) -> list[Any]:  # MSET k1 v1 k2 v2
    return list(args[1::2])


def _two(args: Args) -> list[Any]:  # SMOVE src dst member, RENAME a b, LMOVE src dst ...
    return list(args[1:3])


def _numkeys_at(index: int, *, dest: bool = False) -> Positions:
    """Keys counted by the argument at ``index`` (EVAL script 2 k1 k2; ZUNION 2 k1 k2); ``dest``: args[1] too."""

    def positions(args: Args) -> list[Any]:
        try:
            count = int(args[index])
        except (IndexError, ValueError, TypeError):
            return []
        keys = list(args[index + 1 : index + 1 + count])
        return [args[1], *keys] if dest else keys

    return positions


def _none(args: Args) -> list[Any]:
    return []


def _object(args: Args) -> list[Any]:  # OBJECT ENCODING key; OBJECT HELP
    return [args[2]] if len(args) > 2 else []


def _memory(args: Args) -> list[Any]:  # MEMORY USAGE key; MEMORY STATS
    name = args[1].upper() if len(args) > 1 and isinstance(args[1], str) else args[1] if len(args) > 1 else ""
    return [args[2]] if name in ("USAGE", b"USAGE", b"usage") and len(args) > 2 else []


_FIRST = (
    # strings
    "GET SET SETNX SETEX PSETEX GETSET GETDEL GETEX APPEND STRLEN INCR DECR INCRBY DECRBY INCRBYFLOAT "
    "GETRANGE SETRANGE SETBIT GETBIT BITCOUNT BITPOS BITFIELD BITFIELD_RO "
    # keyspace
    "EXPIRE PEXPIRE EXPIREAT PEXPIREAT EXPIRETIME PEXPIRETIME TTL PTTL PERSIST TYPE DUMP RESTORE "
    # hashes
    "HGET HSET HSETNX HMSET HMGET HGETALL HDEL HEXISTS HINCRBY HINCRBYFLOAT HKEYS HVALS HLEN HSTRLEN "
    "HRANDFIELD HSCAN "
    # lists
    "LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LLEN LRANGE LINDEX LSET LREM LTRIM LINSERT LPOS "
    # sets
    "SADD SREM SMEMBERS SISMEMBER SMISMEMBER SCARD SPOP SRANDMEMBER SSCAN "
    # sorted sets
    "ZADD ZREM ZSCORE ZMSCORE ZINCRBY ZCARD ZCOUNT ZLEXCOUNT ZRANGE ZRANGEBYSCORE ZRANGEBYLEX ZREVRANGE "
    "ZREVRANGEBYSCORE ZREVRANGEBYLEX ZRANK ZREVRANK ZREMRANGEBYRANK ZREMRANGEBYSCORE ZREMRANGEBYLEX "
    "ZPOPMIN ZPOPMAX ZRANDMEMBER ZSCAN "
    # streams, geo, hyperloglog (one key first)
    "XADD XLEN XRANGE XREVRANGE XDEL XTRIM XACK XCLAIM XAUTOCLAIM XPENDING XSETID "
    "GEOADD GEODIST GEOHASH GEOPOS GEOSEARCH GEORADIUS_RO GEORADIUSBYMEMBER_RO PFADD"
)
_ALL = "DEL UNLINK EXISTS TOUCH MGET SINTER SUNION SDIFF WATCH PFCOUNT PFMERGE SINTERSTORE SUNIONSTORE SDIFFSTORE"

TABLE: Final[dict[str, Positions]] = {
    **dict.fromkeys(_FIRST.split(), _first),
    **dict.fromkeys(_ALL.split(), _all),
    **dict.fromkeys(("BLPOP", "BRPOP", "BZPOPMIN", "BZPOPMAX"), _all_but_last),
    **dict.fromkeys(("MSET", "MSETNX"), _pairs),
    **dict.fromkeys(("SMOVE", "RENAME", "RENAMENX", "LMOVE", "RPOPLPUSH", "COPY", "GEOSEARCHSTORE"), _two),
    **dict.fromkeys(("BLMOVE", "BRPOPLPUSH", "ZRANGESTORE"), _two),
    **dict.fromkeys(("EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"), _numkeys_at(2)),
    **dict.fromkeys(("ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"), _numkeys_at(2, dest=True)),
    **dict.fromkeys(("ZUNION", "ZINTER", "ZDIFF", "ZINTERCARD", "SINTERCARD", "LMPOP", "ZMPOP"), _numkeys_at(1)),
    **dict.fromkeys(("BLMPOP", "BZMPOP"), _numkeys_at(2)),
    "OBJECT": _object,
    "MEMORY": _memory,
    "XGROUP": _second,
    "XINFO": _second,
    **dict.fromkeys(
        [
            "PING",
            "ECHO",
            "INFO",
            "DBSIZE",
            "FLUSHDB",
            "FLUSHALL",
            "SCAN",
            "KEYS",
            "RANDOMKEY",
            "TIME",
            "CLIENT",
            "CONFIG",
            "SCRIPT",
            "FUNCTION",
            "COMMAND",
            "CLUSTER",
            "READONLY",
            "READWRITE",
            "ASKING",
            "HELLO",
            "AUTH",
            "SELECT",
            "LASTSAVE",
            "SLOWLOG",
            "LATENCY",
            "MULTI",
            "EXEC",
            "DISCARD",
            "UNWATCH",
            "WAIT",
            "PUBLISH",
            "ROLE",
            "QUIT",
        ],
        _none,
    ),
}

READ_ONLY: Final[frozenset[str]] = frozenset(
    [
        "GET",
        "MGET",
        "STRLEN",
        "GETRANGE",
        "GETBIT",
        "BITCOUNT",
        "BITPOS",
        "BITFIELD_RO",
        "EXISTS",
        "TTL",
        "PTTL",
        "EXPIRETIME",
        "PEXPIRETIME",
        "TYPE",
        "DUMP",
        "HGET",
        "HMGET",
        "HGETALL",
        "HEXISTS",
        "HKEYS",
        "HVALS",
        "HLEN",
        "HSTRLEN",
        "HRANDFIELD",
        "HSCAN",
        "LLEN",
        "LRANGE",
        "LINDEX",
        "LPOS",
        "SMEMBERS",
        "SISMEMBER",
        "SMISMEMBER",
        "SCARD",
        "SRANDMEMBER",
        "SSCAN",
        "SINTER",
        "SUNION",
        "SDIFF",
        "SINTERCARD",
        "ZSCORE",
        "ZMSCORE",
        "ZCARD",
        "ZCOUNT",
        "ZLEXCOUNT",
        "ZRANGE",
        "ZRANGEBYSCORE",
        "ZRANGEBYLEX",
        "ZREVRANGE",
        "ZREVRANGEBYSCORE",
        "ZREVRANGEBYLEX",
        "ZRANK",
        "ZREVRANK",
        "ZRANDMEMBER",
        "ZSCAN",
        "ZUNION",
        "ZINTER",
        "ZDIFF",
        "ZINTERCARD",
        "XLEN",
        "XRANGE",
        "XREVRANGE",
        "GEODIST",
        "GEOHASH",
        "GEOPOS",
        "GEOSEARCH",
        "GEORADIUS_RO",
        "GEORADIUSBYMEMBER_RO",
        "PFCOUNT",
        "EVAL_RO",
        "EVALSHA_RO",
        "FCALL_RO",
    ]
)
"""Commands a replica may answer (``read_from="replica"|"nearest"``)."""


def command_key(name: Any) -> str:
    """The command's name in capitals (``"GET"``) whatever type it was given as."""
    if isinstance(name, bytes):
        return name.decode("ascii", errors="replace").upper()
    return str(name).upper()


def keys_of(args: Args) -> list[Any] | None:
    """The keys of the command ``args``, or ``None`` when the table does not know it."""
    positions = TABLE.get(command_key(args[0]))
    return None if positions is None else positions(args)


SCRIPTS: Final[frozenset[str]] = frozenset(("EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"))


def what_of(name: str) -> str:
    """How a cross-slot error names the kind of command."""
    return "a Lua script (EVAL/EVALSHA/FCALL)" if name in SCRIPTS else f"a multi-key command ({name})"
