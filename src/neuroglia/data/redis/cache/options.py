"""CacheOptions: what one cache call does, FusionCache style.

A :class:`~neuroglia.data.redis.RedisCache` holds *default* options; each call
may pass a whole :class:`CacheOptions` object and/or keyword overrides of single
fields, applied on top of it::

    cache = RedisCache(repo, namespace="menu", default_expiration=timedelta(minutes=5), fail_safe=True)
    await cache.get_or_set_async("item:1", load, expiration=timedelta(minutes=10))     # one field
    quick = cache.default_options.with_(factory_soft_timeout=0.1)
    await cache.get_or_set_async("item:1", load, quick)                                # a whole object

Durations are a :class:`~datetime.timedelta` or seconds. For every optional
feature ``0`` and ``None`` mean *off*.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypedDict

from ._library import InvalidArgumentError

__all__ = [
    "TAG_SEPARATOR",
    "CacheOptions",
    "CacheOptionsOverrides",
    "CallOverrides",
    "Duration",
    "check_tags",
    "seconds_of",
]

Duration = timedelta | float | int
"""A duration: a timedelta, or a number of seconds."""

TAG_SEPARATOR = "\x1f"
"""Joins an entry's tags in its stored ``t`` field; a tag cannot contain it."""
_MAX_TAG_LENGTH = 512


def seconds_of(value: Any, name: str, *, optional: bool) -> float | None:
    if value is None:
        if optional:
            return None
        raise InvalidArgumentError(f"{name} is required (a timedelta or seconds > 0)")
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise InvalidArgumentError(f"{name} must be a timedelta or a number of seconds, got {type(value).__name__}")
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise InvalidArgumentError(f"{name} must be a finite duration >= 0, got {value!r}")
    if seconds == 0:
        if optional:
            return None
        raise InvalidArgumentError(f"{name} must be longer than 0, got {value!r}")
    return seconds


def _fraction(value: Any, name: str, low: float, high: float, *, inclusive_high: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise InvalidArgumentError(f"{name} must be a number, got {value!r}")
    ok = low <= value <= high if inclusive_high else low <= value < high
    if not ok:
        bound = "]" if inclusive_high else ")"
        raise InvalidArgumentError(f"{name} must be in [{low:g}, {high:g}{bound}, got {value!r}")
    return float(value)


def check_tags(tags: Any, what: str = "tags") -> tuple[str, ...]:
    """Validate tags (an iterable of non-empty str) and drop duplicates, keeping their order."""
    if tags is None:
        return ()
    if isinstance(tags, str | bytes):
        raise InvalidArgumentError(
            f"{what} must be a list of str, got the single {type(tags).__name__} {tags!r}; write [{tags!r}]"
        )
    if not isinstance(tags, Iterable):
        raise InvalidArgumentError(f"{what} must be a list of str, got {type(tags).__name__}")
    out: list[str] = []
    for tag in tags:
        if not isinstance(tag, str) or not tag:
            raise InvalidArgumentError(f"each tag must be a non-empty str, got {tag!r}")
        if TAG_SEPARATOR in tag:
            raise InvalidArgumentError(f"a tag cannot contain the character \\x1f, got {tag!r}")
        if len(tag) > _MAX_TAG_LENGTH:
            raise InvalidArgumentError(f"a tag is at most {_MAX_TAG_LENGTH} characters, got {len(tag)}")
        if tag not in out:
            out.append(tag)
    return tuple(out)


@dataclass(frozen=True, kw_only=True, slots=True)
class CacheOptions:
    """Options of a cache call. Frozen: derive variants with :meth:`with_`.

    ``expiration``
        How long a value is fresh (logical expiration). Required, > 0.
    ``jitter_percent``
        Up to this percentage is added at random to each entry's expiration, so
        entries written together do not expire together (``10`` = up to 10 %).
    ``fail_safe``
        Keep expired values for up to ``fail_safe_max_staleness`` and serve them,
        flagged stale, when the factory fails or times out or Redis is
        unavailable. Off by default.
    ``fail_safe_max_staleness``
        How long after its expiration a value may still be served stale. The
        entry lives in Redis for ``expiration + fail_safe_max_staleness``
        (FusionCache's ``FailSafeMaxDuration`` counts from the write instead).
    ``fail_safe_throttle``
        After a stale value was served because the factory failed, it is served
        for this long without calling the factory again (never past its
        staleness limit). ``0`` retries the factory on every call.
    ``factory_soft_timeout``
        With fail-safe on and a stale value at hand: stop waiting for the factory
        after this long and return the stale value; the factory goes on in the
        background and stores its result.
    ``factory_hard_timeout``
        Stop waiting for the factory after this long in any case: the stale value
        if there is one, else :class:`~neuroglia.data.redis.FactoryTimeoutError`.
    ``allow_background_completion``
        Whether a factory whose callers stopped waiting (a timeout) may finish in
        the background and store its result. ``False`` cancels it at the hard
        timeout.
    ``eager_refresh_threshold``
        A fraction of ``expiration`` (``0.8``): a read after it starts a
        background refresh while the current value is still served.
    ``xfetch_beta``
        Probabilistic early recomputation (XFetch, Vattani et al.): a read
        refreshes early with a probability that grows as expiry nears, scaled
        by the factory's last duration. ``1.0`` is the paper's default.
    ``lease``
        Distributed stampede protection: one process computes a missing value
        while the others wait for it, for at most this long (then another
        process takes over). ``None`` computes in every process.
    ``allow_stale_on_read``
        Whether :meth:`~neuroglia.data.redis.RedisCache.get_async` returns a
        value kept by fail-safe past its expiration (flagged in
        :meth:`~neuroglia.data.redis.RedisCache.get_entry_async`).
    ``tags``
        Tags stored with the entries written (see ``remove_by_tag_async``).
    """

    expiration: Duration = timedelta(minutes=5)
    jitter_percent: float = 0.0
    fail_safe: bool = False
    fail_safe_max_staleness: Duration | None = timedelta(hours=1)
    fail_safe_throttle: Duration | None = timedelta(seconds=30)
    factory_soft_timeout: Duration | None = None
    factory_hard_timeout: Duration | None = None
    allow_background_completion: bool = True
    eager_refresh_threshold: float | None = None
    xfetch_beta: float = 0.0
    lease: Duration | None = timedelta(seconds=10)
    allow_stale_on_read: bool = False
    tags: Sequence[str] = ()

    # Normalized copies (seconds, or None when off), computed once per object.
    expiration_s: float = field(init=False, repr=False, compare=False)
    max_staleness_s: float | None = field(init=False, repr=False, compare=False)
    throttle_s: float | None = field(init=False, repr=False, compare=False)
    soft_timeout_s: float | None = field(init=False, repr=False, compare=False)
    hard_timeout_s: float | None = field(init=False, repr=False, compare=False)
    lease_s: float | None = field(init=False, repr=False, compare=False)
    jitter: float = field(init=False, repr=False, compare=False)
    eager: float | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "expiration_s", seconds_of(self.expiration, "expiration", optional=False))
        put(self, "max_staleness_s", seconds_of(self.fail_safe_max_staleness, "fail_safe_max_staleness", optional=True))
        put(self, "throttle_s", seconds_of(self.fail_safe_throttle, "fail_safe_throttle", optional=True))
        put(self, "soft_timeout_s", seconds_of(self.factory_soft_timeout, "factory_soft_timeout", optional=True))
        put(self, "hard_timeout_s", seconds_of(self.factory_hard_timeout, "factory_hard_timeout", optional=True))
        put(self, "lease_s", seconds_of(self.lease, "lease", optional=True))
        put(self, "jitter", _fraction(self.jitter_percent, "jitter_percent", 0, 100, inclusive_high=True) / 100)
        eager = self.eager_refresh_threshold
        if eager is not None and eager != 0:
            eager = _fraction(eager, "eager_refresh_threshold", 0, 1, inclusive_high=False)
        put(self, "eager", eager or None)
        _fraction(self.xfetch_beta, "xfetch_beta", 0, 100, inclusive_high=True)
        for name in ("fail_safe", "allow_background_completion", "allow_stale_on_read"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidArgumentError(f"{name} must be True or False, got {getattr(self, name)!r}")
        put(self, "tags", check_tags(self.tags))
        if (
            self.soft_timeout_s is not None
            and self.hard_timeout_s is not None
            and (self.soft_timeout_s > self.hard_timeout_s)
        ):
            raise InvalidArgumentError(
                f"factory_soft_timeout ({self.soft_timeout_s:g}s) is longer than factory_hard_timeout "
                f"({self.hard_timeout_s:g}s)"
            )

    @property
    def keeps_stale(self) -> bool:
        """Whether entries written with these options are kept past their expiration."""
        return self.fail_safe and self.max_staleness_s is not None

    def with_(self, **overrides: Any) -> CacheOptions:
        """A copy with some fields replaced: ``options.with_(fail_safe=True)``."""
        if not overrides:
            return self
        unknown = sorted(set(overrides) - _FIELDS)
        if unknown:
            raise InvalidArgumentError(f"unknown cache options {unknown}; allowed: {sorted(_FIELDS)}")
        return dataclasses.replace(self, **overrides)


_FIELDS = frozenset(f.name for f in dataclasses.fields(CacheOptions) if f.init)


class CallOverrides(TypedDict, total=False):
    """The keyword overrides of a call that also takes ``expiration`` and ``tags`` as parameters."""

    jitter_percent: float
    fail_safe: bool
    fail_safe_max_staleness: Duration | None
    fail_safe_throttle: Duration | None
    factory_soft_timeout: Duration | None
    factory_hard_timeout: Duration | None
    allow_background_completion: bool
    eager_refresh_threshold: float | None
    xfetch_beta: float
    lease: Duration | None
    allow_stale_on_read: bool


class CacheOptionsOverrides(CallOverrides, total=False):
    """The keyword overrides every cache call accepts (the fields of :class:`CacheOptions`)."""

    expiration: Duration
    tags: Iterable[str]
