"""Factories: what computes a missing value, and what they may tell the cache.

A factory is an async callable with no argument, or with one: a
:class:`FactoryContext` through which it can see the stale value being
replaced and adapt how its result is cached (FusionCache's adaptive caching)::

    async def load(ctx: FactoryContext) -> dict:
        item = await db.load(ctx.key)
        if item is None:
            ctx.expiration = timedelta(seconds=30)   # cache "not found" briefly
        return item
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ._library import InvalidArgumentError
from .entry import StoredEntry
from .options import CacheOptions, Duration, check_tags, seconds_of

if TYPE_CHECKING:
    from ._library import EnvelopeSerializer

__all__ = ["Factory", "FactoryContext", "call_factory"]

T = TypeVar("T")

Factory = Callable[[], Awaitable[T]] | Callable[["FactoryContext"], Awaitable[T]]
"""An async callable computing a value: ``async def load() -> T`` or ``async def load(ctx) -> T``."""


class FactoryContext:
    """What a factory run knows and may change.

    ``key``
        The cache key being computed.
    ``expiration``, ``tags``
        How the result will be stored (start: the call's options); assign to change them.
    ``do_not_cache``
        Set to ``True`` to return the result to the callers without storing it.
    ``has_stale_value``, ``stale_value``
        The expired value this run replaces, if fail-safe kept one (decoded plain,
        as the serializer returns it), e.g. to ask the source "modified since?".
    """

    __slots__ = ("_codec", "_expiration", "_stale", "_tags", "do_not_cache", "key")

    def __init__(self, key: str, options: CacheOptions, stale: StoredEntry | None, codec: EnvelopeSerializer) -> None:
        self.key = key
        self._expiration: float = options.expiration_s
        self._tags: tuple[str, ...] = tuple(options.tags)
        self._stale = stale
        self._codec = codec
        self.do_not_cache = False

    @property
    def expiration(self) -> float:
        """Seconds the result stays fresh."""
        return self._expiration

    @expiration.setter
    def expiration(self, value: Duration) -> None:
        seconds = seconds_of(value, "ctx.expiration", optional=False)
        assert seconds is not None
        self._expiration = seconds

    @property
    def tags(self) -> tuple[str, ...]:
        """The tags stored with the result."""
        return self._tags

    @tags.setter
    def tags(self, value: Any) -> None:
        self._tags = check_tags(value, "ctx.tags")

    @property
    def has_stale_value(self) -> bool:
        """Whether an expired value is at hand."""
        return self._stale is not None

    @property
    def stale_value(self) -> Any:
        """The expired value (decoded plain), or ``None``."""
        return None if self._stale is None else self._codec.loads(self._stale.data)

    def __repr__(self) -> str:
        return f"FactoryContext(key={self.key!r}, expiration={self._expiration:g}s, tags={self._tags!r})"


def _wants_context(factory: Callable[..., Any]) -> bool:
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # a builtin without a signature: call it plainly
        return False
    required = [
        p
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    if len(required) > 1:
        raise InvalidArgumentError(
            f"a factory takes no argument or one (a FactoryContext); {factory!r} requires {len(required)}"
        )
    return len(required) == 1


async def call_factory(factory: Callable[..., Any], ctx: FactoryContext) -> Any:
    """Run ``factory`` (with ``ctx`` if it takes an argument); a plain (sync) result is accepted too."""
    if not callable(factory):
        raise InvalidArgumentError(f"factory must be callable, got {type(factory).__name__}")
    result = factory(ctx) if _wants_context(factory) else factory()
    if inspect.isawaitable(result):
        result = await result
    return result
