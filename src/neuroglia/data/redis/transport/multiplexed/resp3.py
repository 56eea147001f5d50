"""RESP3 replies back into the RESP2 shapes the repository parses.

hiredis gives RESP3 maps as ``dict``, doubles as ``float``, booleans as
``bool``, sets as ``list`` and pushes as :class:`hiredis.PushNotification`.
The transport contract promises RESP2 shapes whatever the protocol spoken,
so maps become flat ``[key, value, ...]`` lists, doubles their text as a
RESP2 server would send it, booleans ``1``/``0``. A few commands also nest
their pairs in RESP3 (``ZRANGE ... WITHSCORES`` answers ``[[member, score],
...]`` instead of ``[member, score, ...]``): :func:`shape_for` knows them and
flattens their reply one level.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

__all__ = ["normalize", "shape_for"]

_SCALARS = (bytes, int, type(None))


def _double(value: float) -> bytes:
    """A double as RESP2 spells it: integral values without a fraction, ``inf``, ``-inf``."""
    if math.isfinite(value):
        if value.is_integer() and abs(value) < 1e17:
            return b"%d" % value
        return repr(value).encode()
    return b"nan" if math.isnan(value) else (b"inf" if value > 0 else b"-inf")


def normalize(reply: Any) -> Any:
    """``reply`` (as hiredis parsed a RESP3 stream) in RESP2 shapes."""
    cls = reply.__class__
    if cls is bytes or cls is int or reply is None:
        return reply
    if cls is list:
        for item in reply:
            if item.__class__ not in _SCALARS:
                return [normalize(item) for item in reply]
        return reply
    if cls is dict:
        flat: list[Any] = []
        for key, value in reply.items():
            flat.append(normalize(key))
            flat.append(normalize(value))
        return flat
    if cls is float:
        return _double(reply)
    if cls is bool:
        return 1 if reply else 0
    if isinstance(reply, list):  # a PushNotification or another list subclass
        return [normalize(item) for item in reply]
    return reply  # a ReplyError, or a type no Redis 7 command answers


def _flatten_pairs(reply: Any) -> Any:
    if reply.__class__ is not list or not reply or reply[0].__class__ is not list:
        return reply
    return [part for pair in reply for part in pair]


# Commands whose RESP3 reply nests pairs, and the argument that makes them do so.
_PAIRS_WITH: dict[str, str | None] = {
    "ZRANGE": "WITHSCORES",
    "ZRANGEBYSCORE": "WITHSCORES",
    "ZREVRANGE": "WITHSCORES",
    "ZREVRANGEBYSCORE": "WITHSCORES",
    "ZUNION": "WITHSCORES",
    "ZINTER": "WITHSCORES",
    "ZDIFF": "WITHSCORES",
    "ZRANDMEMBER": "WITHSCORES",
    "HRANDFIELD": "WITHVALUES",
    "ZPOPMIN": None,  # with a count
    "ZPOPMAX": None,
}


def shape_for(args: tuple[Any, ...]) -> Callable[[Any], Any] | None:
    """The extra reshaping ``args``' RESP3 reply needs (``None``: the generic one suffices)."""
    name = args[0]
    if name.__class__ is bytes:
        name = name.decode("ascii", "replace")
    marker = _PAIRS_WITH.get(str(name).upper(), "")
    if marker == "":
        return None
    if marker is None:
        return _flatten_pairs if len(args) > 2 else None
    for arg in args[2:]:
        if isinstance(arg, str | bytes) and len(arg) == len(marker):
            text = arg.decode("ascii", "replace") if isinstance(arg, bytes) else arg
            if text.upper() == marker:
                return _flatten_pairs
    return None
