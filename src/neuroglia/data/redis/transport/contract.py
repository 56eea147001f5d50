"""The transport contract: what the executor needs from a connection to Redis.

A transport sends commands and returns their *raw* replies in RESP2 shapes:
``bytes`` for strings, ``int`` for integers, ``list`` for arrays, ``None`` for
nil (a RESP3 transport converts maps to flat lists, doubles and big numbers
to their ``bytes``, booleans to ``1``/``0``). The repository parses every
reply itself, so transports are interchangeable: redis-py's pool, the
embedded ``memory://`` backend, the library's own multiplexed connections,
or a test double from :mod:`neuroglia.data.redis.testing`.

The contract is closed over errors. A transport raises only
:class:`~neuroglia.data.redis.CacheException` subclasses for failures of a
command (never its client library's exceptions), each with
:attr:`~neuroglia.data.redis.CacheException.delivery` set:

* :attr:`~neuroglia.data.redis.Delivery.NOT_SENT`: nothing was written
  (no connection, connect refused, the deadline passed before sending,
  :class:`~neuroglia.data.redis.PoolExhaustedError`);
* :attr:`~neuroglia.data.redis.Delivery.NOT_APPLIED`: the server answered
  without running it (``LOADING``, ``READONLY``, an error reply);
* :attr:`~neuroglia.data.redis.Delivery.MAYBE_APPLIED`: sent without a
  complete answer (reset, timeout): it may have run.

Cancellation (``asyncio.CancelledError``) propagates unchanged, and the
transport keeps its connections consistent through it: a cancelled
command's reply is never given to another caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["Args", "PoolStats", "Transport"]

Args = tuple[Any, ...]
"""One command as sent: its name, then its arguments (``str``, ``bytes``, ``int`` or ``float``)."""


@dataclass(frozen=True, slots=True)
class PoolStats:
    """A snapshot of a transport's connections."""

    created_connections: int
    in_use_connections: int
    available_connections: int
    max_connections: int


@runtime_checkable
class Transport(Protocol):
    """Sends commands to Redis; see the module docstring for replies and errors."""

    async def execute(self, args: Args, deadline: float | None = None) -> Any:
        """Send one command and return its raw reply.

        ``deadline`` (event-loop time, ``loop.time()``) bounds the whole call:
        waiting for a connection, connecting, writing and reading. When it
        passes the call raises :class:`~neuroglia.data.redis.CacheTimeoutError`.
        """
        ...

    async def execute_blocking(self, args: Args, timeout: float) -> Any:
        """Send a blocking command (``BLPOP``...) whose reply may take ``timeout`` seconds (0: forever).

        It must not occupy a connection other callers are waiting on.
        """
        ...

    async def execute_many(self, commands: Sequence[Args], *, transaction: bool) -> list[Any]:
        """Send a batch in one round trip; ``transaction`` wraps it in ``MULTI``/``EXEC``.

        Returns one entry per command: its raw reply, or the
        :class:`~neuroglia.data.redis.CacheException` the server answered for
        that command alone (with ``Delivery.NOT_APPLIED``: refused, it did not
        run). A failure of the whole batch (connection lost, ``EXECABORT``)
        is raised instead.
        """
        ...

    async def close(self) -> None:
        """Close every connection; commands in flight fail. A later command may reopen."""
        ...

    def pool_stats(self) -> PoolStats:
        """Figures of the transport's connections."""
        ...
