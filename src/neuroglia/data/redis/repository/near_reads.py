"""The near cache's hit path for the repository's most common reads.

A near-cache hit costs what Python costs, so what a read does besides the
lookup shows: building its :class:`~neuroglia.data.redis.core.Command` and
a second coroutine take more time than the lookup itself. For a repository
with a near cache, :func:`install_near_reads` gives ``get_async``,
``get_object_async``, ``hget_async`` and ``hgetall_async`` a first step
that checks the arguments as their builders do, looks the command up and
parses a hit as their builders would; anything else (a miss, an argument the
check refuses) goes the ordinary way, through the builder and the executor.
The tests hold each fast read to its builder: same command, same result.

A subclass that overrides one of these methods keeps its override.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..commands import HashCommands, StringCommands
from ..nearcache import MISS
from ..serialization import from_plain

if TYPE_CHECKING:
    from .repository import RedisRepository

__all__ = ["NEAR_READS", "install_near_reads"]

NEAR_READS = ("get_async", "get_object_async", "hget_async", "hgetall_async")
"""The methods given a near-cache first step."""


def install_near_reads(repo: RedisRepository, base: type[Any]) -> None:
    """Give ``repo`` the near-cache hit path of :data:`NEAR_READS` (those ``base`` defines and its class keeps)."""
    near = repo.near_cache
    if near is None:
        return
    lookup = near.get
    run = repo._run
    arguments = repo._arg
    key_of = arguments.key
    field_of = arguments.value
    replies = repo._reply
    text = replies.text
    pairs = replies.pairs
    loads = repo.codec.loads
    cls = type(repo)

    build_get = StringCommands.get_async.build
    build_get_object = StringCommands.get_object_async.build
    build_hget = HashCommands.hget_async.build
    build_hgetall = HashCommands.hgetall_async.build

    async def get_async(key: Any) -> Any:
        reply = lookup(("GET", key_of(key)))
        if reply is MISS:
            return await run(build_get(repo, key))
        return text(reply)

    async def get_object_async(key: Any, type_: Any = None) -> Any:
        reply = lookup(("GET", key_of(key)))
        if reply is MISS:
            return await run(build_get_object(repo, key, type_))
        return None if reply is None else from_plain(loads(reply), type_)

    async def hget_async(key: Any, field: Any) -> Any:
        reply = lookup(("HGET", key_of(key), field_of(field, "field")))
        if reply is MISS:
            return await run(build_hget(repo, key, field))
        return text(reply)

    async def hgetall_async(key: Any) -> Any:
        reply = lookup(("HGETALL", key_of(key)))
        if reply is MISS:
            return await run(build_hgetall(repo, key))
        return pairs(reply)

    fast: dict[str, Callable[..., Any]] = {
        "get_async": get_async,
        "get_object_async": get_object_async,
        "hget_async": hget_async,
        "hgetall_async": hgetall_async,
    }
    for name, function in fast.items():
        ordinary = inspect.getattr_static(cls, name, None)
        if ordinary is None or ordinary is not inspect.getattr_static(base, name, None):
            continue  # overridden by a subclass: its own behaviour wins
        bound = getattr(repo, name)
        functools.update_wrapper(function, bound)
        function.__wrapped__ = bound  # type: ignore[attr-defined]  # the signature shown is the method's
        setattr(repo, name, function)
