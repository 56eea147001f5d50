"""Which keys a command may have changed: what an in-process cache must forget after it.

Redis tells a tracking client about changes itself (``CLIENT TRACKING``); a
client that must not wait for that message (its own writes) or a backend
without it (``memory://``) needs the same answer from the command alone.
:func:`written_keys` gives it conservatively: nothing for a command known to
only read, every argument for any other command (arguments that are not keys
cost a useless lookup, never a stale read), and "everything" for commands
that empty a database.
"""

from __future__ import annotations

from typing import Any, Final

from .contract import Args

__all__ = ["FLUSHING_COMMANDS", "READ_ONLY_COMMANDS", "invalidation_message", "written_keys"]

# fmt: off
READ_ONLY_COMMANDS: Final[frozenset[str]] = frozenset({
    "GET", "MGET", "GETRANGE", "SUBSTR", "STRLEN", "LCS",
    "HGET", "HMGET", "HGETALL", "HKEYS", "HVALS", "HLEN", "HEXISTS", "HSTRLEN", "HRANDFIELD", "HSCAN",
    "LLEN", "LRANGE", "LINDEX", "LPOS",
    "SCARD", "SISMEMBER", "SMISMEMBER", "SMEMBERS", "SRANDMEMBER", "SINTER", "SUNION", "SDIFF",
    "SINTERCARD", "SSCAN",
    "ZCARD", "ZCOUNT", "ZSCORE", "ZMSCORE", "ZRANK", "ZREVRANK", "ZRANGE", "ZREVRANGE", "ZRANGEBYSCORE",
    "ZREVRANGEBYSCORE", "ZRANGEBYLEX", "ZREVRANGEBYLEX", "ZLEXCOUNT", "ZRANDMEMBER", "ZSCAN", "ZINTER", "ZUNION",
    "ZDIFF", "ZINTERCARD",
    "BITCOUNT", "BITPOS", "GETBIT", "GEOPOS", "GEODIST", "GEOHASH", "GEOSEARCH", "XLEN", "XRANGE", "XREVRANGE",
    "EXISTS", "TYPE", "TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME", "DUMP", "OBJECT", "MEMORY", "SCAN", "KEYS",
    "RANDOMKEY", "DBSIZE",
    "PING", "ECHO", "INFO", "TIME", "CLIENT", "HELLO", "AUTH", "COMMAND", "SCRIPT", "WATCH", "UNWATCH", "MULTI",
    "EXEC", "DISCARD",
    "EVAL_RO", "EVALSHA_RO", "FCALL_RO", "PUBLISH", "WAIT",
})
# fmt: on
"""Commands that never change a key."""

FLUSHING_COMMANDS: Final[frozenset[str]] = frozenset({"FLUSHDB", "FLUSHALL", "SWAPDB", "DEBUG"})
"""Commands that may change every key (of a database, or all of them)."""


def _name(args: Args) -> str:
    name = args[0]
    if name.__class__ is str:
        return name.upper()
    if isinstance(name, bytes):
        return name.decode("ascii", "replace").upper()
    return str(name).upper()


def written_keys(args: Args) -> tuple[Any, ...] | None:
    """The arguments of ``args`` that may name a key it changed: ``()`` for a read, ``None`` for "every key".

    Not a key table: any argument of a writing command is returned
    (values and options included), so nothing a command may change is
    missed; only ``str`` and ``bytes`` arguments can be keys.
    """
    if not args:
        return ()
    name = _name(args)
    if name in READ_ONLY_COMMANDS:
        return ()
    if name in FLUSHING_COMMANDS:
        return None
    return tuple(arg for arg in args[1:] if arg.__class__ is str or arg.__class__ is bytes)


def invalidation_message(keys: tuple[Any, ...] | None) -> list[Any]:
    """The RESP3 push message Redis sends a tracking client for ``keys`` (``None``: every key)."""
    if keys is None:
        return [b"invalidate", None]
    return [b"invalidate", [key if key.__class__ is bytes else str(key).encode() for key in keys]]
