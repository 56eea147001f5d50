"""The errors raised by neuroglia-redis.

Every error the library raises derives from :class:`CacheException`, so a
caller can protect a cache call with one ``except CacheException``. A cache
*miss* is never an error (reads return ``None``), and an *outage* is never a
miss: it always raises.

::

    CacheException
    ├── CacheUnavailableError        Redis cannot be reached or cannot serve now
    │   ├── CacheTimeoutError        connect/read timeout or operation deadline
    │   │   └── PoolExhaustedError   no pooled connection became free in time
    │   ├── CacheTLSError            TLS handshake refused: certificate not verified,
    │   │                            host name mismatch, client certificate refused
    │   ├── ClusterNodeUnavailableError  one node of a cluster is down, the others serve
    │   └── CircuitOpenError         the breaker is open; no socket was touched
    ├── CacheCommandError            the server refused the command (WRONGTYPE, ...)
    │   ├── CachePermissionError     an ACL denied the command or key (NOPERM)
    │   ├── TransactionAbortedError  a WATCH-ed key changed: nothing of the transaction ran
    │   └── InvalidArgumentError     refused before sending: bad key, TTL, size
    ├── CacheAuthenticationError     wrong username or password
    ├── SerializationError           a value could not be encoded or decoded
    ├── ConfigurationError           invalid or contradictory settings
    └── LockError                    a distributed lock could not do its job
        ├── LockTimeoutError         not acquired within the wait timeout
        ├── LockNotOwnedError        release/extend of a lock this holder lost
        └── LockLostError            the lease was lost while the lock was held
            └── LockOutageError      ... because Redis was unavailable (also a
                                     CacheUnavailableError)

The Redis client library's own exceptions never escape: the transport maps
them into this tree (chained, ``raise ... from exc``) and says with each
failure how far the command got (:class:`Delivery`), which is what decides
whether a write may be resent.
"""

from __future__ import annotations

import enum
from typing import Self

__all__ = [
    "CacheAuthenticationError",
    "CacheCommandError",
    "CacheException",
    "CachePermissionError",
    "CacheTLSError",
    "CacheTimeoutError",
    "CacheUnavailableError",
    "CircuitOpenError",
    "ClusterNodeUnavailableError",
    "ConfigurationError",
    "Delivery",
    "InvalidArgumentError",
    "LockError",
    "LockLostError",
    "LockNotOwnedError",
    "LockOutageError",
    "LockTimeoutError",
    "PoolExhaustedError",
    "SerializationError",
    "TransactionAbortedError",
]


class Delivery(enum.Enum):
    """How far a failed command got: what a resend could do.

    ``NOT_SENT``
        No byte of it reached a socket (no connection, connect refused, the
        deadline passed first). Resending cannot apply it twice.
    ``NOT_APPLIED``
        The server answered without running it (``LOADING``, ``READONLY``,
        ``MOVED``, a refused command). Resending cannot apply it twice.
    ``MAYBE_APPLIED``
        It was sent and no complete answer came back (a reset, a timeout, a
        cancellation): it may have run. Only an idempotent command may be
        resent.
    """

    NOT_SENT = "not_sent"
    NOT_APPLIED = "not_applied"
    MAYBE_APPLIED = "maybe_applied"


class CacheException(Exception):
    """Root of every error raised by neuroglia-redis.

    ``delivery`` tells, for a failure of a command, whether it may have run
    on the server (:class:`Delivery`); ``None`` when no command was involved
    (a bad setting, a lock that was not acquired) or when it is unknown.
    """

    delivery: Delivery | None = None

    def with_delivery(self, delivery: Delivery) -> Self:
        """Set :attr:`delivery` and return the error (for ``raise exc.with_delivery(...)``)."""
        self.delivery = delivery
        return self


class CacheUnavailableError(CacheException):
    """Redis could not be reached or could not serve the command right now.

    Raised for refused or reset connections, socket errors, timeouts and the
    server states ``LOADING``, ``READONLY`` and ``MASTERDOWN``. These are the
    failures a circuit breaker counts.
    """


class CacheTimeoutError(CacheUnavailableError):
    """A connect or read timeout, or the operation's deadline, expired."""


class PoolExhaustedError(CacheTimeoutError):
    """No pooled connection became free within the pool timeout.

    Local congestion (more concurrent work than the pool allows), not a sign
    that Redis is down: the circuit breaker does not count it. The command
    was never sent.
    """

    delivery = Delivery.NOT_SENT


class ClusterNodeUnavailableError(CacheUnavailableError):
    """One node of a Redis Cluster cannot be reached while the other primaries answer.

    The commands for that node's slots fail (until its replica is promoted,
    or it comes back); the other slots are served. The circuit breaker does
    not count it: a failover of one primary must not stop the whole cluster.
    When every primary fails, a plain :class:`CacheUnavailableError` is
    raised, and counted.
    """


class CacheTLSError(CacheUnavailableError):
    """The TLS handshake failed: the connection is refused, not merely unavailable.

    The server's certificate did not verify against the configured CA, its
    host name did not match, or the server refused the client certificate.
    Retrying cannot help and the circuit breaker does not count it, so the
    cause stays visible on every call instead of turning into
    :class:`CircuitOpenError`. See ``docs/security.md``.
    """


class CircuitOpenError(CacheUnavailableError):
    """The circuit breaker is open: the call failed fast without network I/O."""


class CacheCommandError(CacheException):
    """The server (or the library, before sending) refused a command.

    Examples: ``WRONGTYPE`` when a list command meets a hash, a syntax error,
    an unknown command. These say nothing about the server's health.
    """


class CachePermissionError(CacheCommandError):
    """An ACL rule denied the command or the key (``NOPERM``).

    ``permission`` names what the user lacks, in ACL syntax when Redis says
    it (``"+keys"``, ``"+config|get"``), else ``"~<key pattern>"`` for a key
    outside the user's patterns or ``"&<channel>"`` for a channel.
    """

    def __init__(self, message: str, *, permission: str | None = None) -> None:
        super().__init__(message)
        self.permission = permission


class TransactionAbortedError(CacheCommandError):
    """A key ``WATCH``-ed before the transaction changed before ``EXEC``: nothing of it ran.

    The optimistic transaction's way of saying "someone else got there
    first": read again and retry (``RedisRepository.optimistic_async`` does).
    """

    delivery = Delivery.NOT_APPLIED


class InvalidArgumentError(CacheCommandError, ValueError):
    """An argument was refused before anything was sent to Redis.

    Empty or non-string keys, zero or negative expirations, oversized values.
    Also a :class:`ValueError`, so code written against plain Python
    conventions still catches it.
    """


class CacheAuthenticationError(CacheException):
    """The server rejected the configured username or password."""


class SerializationError(CacheException):
    """A value could not be serialized or deserialized by the strategy in use."""


class ConfigurationError(CacheException, ValueError):
    """Settings are invalid or contradict each other; the message names the field."""


class LockError(CacheException):
    """A distributed lock could not do what was asked."""


class LockTimeoutError(LockError):
    """The lock was not acquired within its wait timeout."""


class LockNotOwnedError(LockError):
    """The lock is not (or no longer) held by this holder."""


class LockLostError(LockError):
    """The lock's lease was lost while the critical section ran."""


class LockOutageError(LockLostError, CacheUnavailableError):
    """The lock was lost while held, and an outage of Redis is why (or how the block ended).

    Both a :class:`LockLostError` and a :class:`CacheUnavailableError`, so a
    handler for either sees it: code that degrades or retries on outages
    (``except CacheUnavailableError``) is not bypassed because the outage also
    cost a lock. ``outage`` is the error of Redis behind it; the block's own
    exception, if it raised one, is ``__cause__``.
    """

    def __init__(self, message: str, *, outage: CacheUnavailableError | None = None) -> None:
        super().__init__(message)
        self.outage = outage
