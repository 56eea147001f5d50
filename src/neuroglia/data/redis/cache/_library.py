"""The names the cache layer takes from the rest of the library, imported in this one place.

At run time only public modules of ``neuroglia.data.redis`` are used
(``exceptions``, ``metrics``, ``serialization``); the repository, its scripts
and the envelope serializer are imported for type annotations only. Keeping
every import from outside the subpackage here means a move of those modules
changes one file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..exceptions import (
    CacheException,
    CacheUnavailableError,
    InvalidArgumentError,
    SerializationError,
)
from ..metrics import CacheMetrics, Histogram
from ..serialization import from_plain

if TYPE_CHECKING:
    from .._envelope import EnvelopeSerializer as EnvelopeSerializer
    from .._repository import RedisRepository as RedisRepository
    from .._repository import Script as Script

__all__ = [
    "CacheException",
    "CacheMetrics",
    "CacheUnavailableError",
    "Histogram",
    "InvalidArgumentError",
    "SerializationError",
    "from_plain",
]
