"""The options of one call: the cache's defaults, or a given object, with the call's overrides.

A call names a whole :class:`~.options.CacheOptions` object (``options=``)
and/or single fields (``expiration=``, ``tags=``, keyword overrides); the
resolved variants are remembered, since building a frozen options object
(with its checks) on every call would cost more than the Redis read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from ._library import InvalidArgumentError
from .options import CacheOptions, Duration, check_tags

__all__ = ["OptionsResolver", "check_options"]

_MEMO_SIZE: Final = 256


def check_options(options: Any) -> CacheOptions:
    """``options`` if it is a :class:`CacheOptions`; a clear error otherwise."""
    if not isinstance(options, CacheOptions):
        raise InvalidArgumentError(f"options must be a CacheOptions, got {type(options).__name__}")
    return options


class OptionsResolver:
    """The options of one cache's calls, from its defaults."""

    __slots__ = ("_memo", "defaults")

    def __init__(self, defaults: CacheOptions) -> None:
        self.defaults = defaults
        """The options a call starts from."""
        self._memo: dict[tuple[Any, ...], tuple[CacheOptions, CacheOptions]] = {}

    @classmethod
    def for_cache(
        cls, options: CacheOptions | None, expiration: Duration | None, defaults: Mapping[str, Any]
    ) -> OptionsResolver:
        """The resolver of a cache built with ``options`` (a whole object), ``expiration`` and field ``defaults``."""
        base = check_options(options if options is not None else CacheOptions())
        if expiration is not None:
            defaults = {**defaults, "expiration": expiration}
        return cls(base.with_(**defaults))

    def resolve(
        self,
        options: CacheOptions | None,
        overrides: Mapping[str, Any],
        expiration: Duration | None = None,
        tags: Iterable[str] | None = None,
    ) -> CacheOptions:
        """``options`` (the defaults when ``None``) with ``overrides``, ``expiration`` and ``tags`` applied."""
        base = self.defaults if options is None else check_options(options)
        if expiration is not None or tags is not None:
            overrides = dict(overrides)
            if expiration is not None:
                overrides["expiration"] = expiration
            if tags is not None:
                overrides["tags"] = check_tags(tags)
        if not overrides:
            return base
        try:
            memo_key = (id(base), *sorted(overrides.items()))
            found = self._memo.get(memo_key)
        except TypeError:  # an unhashable override value
            return base.with_(**overrides)
        if found is not None and found[0] is base:
            return found[1]
        resolved = base.with_(**overrides)
        if len(self._memo) >= _MEMO_SIZE:
            self._memo.clear()
        self._memo[memo_key] = (base, resolved)
        return resolved
