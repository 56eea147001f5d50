"""The errors raised by neuroglia-redis.

Every error the library raises derives from :class:`CacheException`, so a
caller can protect a cache call with one ``except CacheException``. A cache
*miss* is never an error (reads return ``None``), and an *outage* is never a
miss: it always raises.

::

    CacheException
    ├── CacheUnavailableError        Redis cannot be reached or cannot serve now
    │   ├── CacheTimeoutError        connect/read timeout or operation deadline
    │   ├── CacheTLSError            TLS handshake refused: certificate not verified,
    │   │                            host name mismatch, client certificate refused
    │   └── CircuitOpenError         the breaker is open; no socket was touched
    ├── CacheCommandError            the server refused the command (WRONGTYPE, ...)
    │   ├── CachePermissionError     an ACL denied the command or key (NOPERM)
    │   └── InvalidArgumentError     refused before sending: bad key, TTL, size
    ├── CacheAuthenticationError     wrong username or password
    ├── SerializationError           a value could not be encoded or decoded
    ├── ConfigurationError           invalid or contradictory settings
    └── LockError                    a distributed lock could not do its job
        ├── LockTimeoutError         not acquired within the wait timeout
        ├── LockNotOwnedError        release/extend of a lock this holder lost
        └── LockLostError            the lease was lost while the lock was held

The Redis client library's own exceptions never escape: they are mapped at the
repository's single execute path and chained (``raise ... from exc``).
"""

from __future__ import annotations

__all__ = [
    "CacheAuthenticationError",
    "CacheCommandError",
    "CacheException",
    "CachePermissionError",
    "CacheTLSError",
    "CacheTimeoutError",
    "CacheUnavailableError",
    "CircuitOpenError",
    "ConfigurationError",
    "InvalidArgumentError",
    "LockError",
    "LockLostError",
    "LockNotOwnedError",
    "LockTimeoutError",
    "SerializationError",
]


class CacheException(Exception):
    """Root of every error raised by neuroglia-redis."""


class CacheUnavailableError(CacheException):
    """Redis could not be reached or could not serve the command right now.

    Raised for refused or reset connections, socket errors, timeouts and the
    server states ``LOADING``, ``READONLY`` and ``MASTERDOWN``. These are the
    failures a circuit breaker counts.
    """


class CacheTimeoutError(CacheUnavailableError):
    """A connect or read timeout, or the operation's deadline, expired."""


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
