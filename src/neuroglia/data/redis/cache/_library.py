"""The names the cache layer takes from the rest of the library, imported in this one place.

At run time the public modules ``exceptions``, ``metrics`` and
``serialization`` are used, the near cache (:mod:`~neuroglia.data.redis.nearcache`, for the
coherent first level), and two internals of the repository, for the hit
path only: :class:`Command` and ``RedisRepository._run`` (the executor) (see
:func:`read_entry`). The repository, its scripts and the envelope serializer
are otherwise imported for type annotations only. Keeping every import from
outside the subpackage here means a move of those modules changes one file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.command import Command
from ..core.keys import one_slot_prefix
from ..exceptions import (
    CacheException,
    CacheUnavailableError,
    InvalidArgumentError,
    SerializationError,
)
from ..nearcache import MISS, Entry, NearCache
from ..observability.metrics import CacheMetrics, Histogram
from ..serialization import from_plain

if TYPE_CHECKING:
    from ..core.scripts import Script as Script
    from ..repository import RedisRepository as RedisRepository
    from ..serialization.envelope import EnvelopeSerializer as EnvelopeSerializer

__all__ = [
    "MISS",
    "CacheException",
    "CacheMetrics",
    "CacheUnavailableError",
    "Entry",
    "Histogram",
    "InvalidArgumentError",
    "NearCache",
    "SerializationError",
    "from_plain",
    "one_slot_prefix",
]


def _raw(reply: Any) -> Any:
    return reply


async def read_entry(repository: RedisRepository, full_key: str) -> Any:
    """``HMGET full_key v m t`` through the repository's one execute path, replies left raw.

    The cache's hit path. It builds the command itself rather than calling
    ``hmget_async``, whose argument checks and text decoding (a failed UTF-8
    decode of the binary value on every hit) cost more than the rest of a
    hit's work; ``full_key`` already carries the repository's key prefix.
    Breaker, deadline, retries, metrics and error mapping are the
    repository's, as for every command.
    """
    return await repository._run(Command(("HMGET", full_key, "v", "m", "t"), _raw, read=True))
