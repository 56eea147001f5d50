"""Failures into the library's error tree, each with how far its command got.

Two sources: the server's error replies (``-WRONGTYPE ...``, ``-LOADING ...``,
``-NOPERM ...``), which always mean the command did not run
(:attr:`~neuroglia.data.redis.Delivery.NOT_APPLIED`), and failures of the
socket (refused, reset, TLS refused, silent past a bound), whose delivery
depends on whether the command had been written when it happened.

Messages start with the command's name (``"GET: ..."``) and keep the
server's error code (``READONLY``, ``NOSCRIPT``...), which operators grep for
and :class:`~neuroglia.data.redis.Script` looks for. Nothing here ever
includes an argument of a command: values and passwords stay out of errors.
"""

from __future__ import annotations

import os
import socket

from neuroglia.data.redis.exceptions import (
    CacheAuthenticationError,
    CacheCommandError,
    CacheException,
    CachePermissionError,
    CacheTimeoutError,
    CacheTLSError,
    CacheUnavailableError,
    Delivery,
)

from ..diagnosis import AUTH_PREFIXES, UNAVAILABLE_PREFIXES, describe_tls, missing_permission, tls_failure

__all__ = [
    "connection_error",
    "server_error",
]

_SCRIPT_DENIED = "The user executing the script can't"


def server_error(message: str, command: str) -> CacheException:
    """The error for an error reply ``message`` (without its ``-``) to ``command``.

    The server refused the command without running it, so every result
    carries :attr:`~neuroglia.data.redis.Delivery.NOT_APPLIED`.
    """
    where = f"{command}: " if command else ""
    # The generic code says nothing ("ERR value is not an integer..."): drop it,
    # keep the specific ones (WRONGTYPE, NOSCRIPT, READONLY...).
    text = message[4:] if message.startswith("ERR ") else message
    error: CacheException
    if text.startswith(AUTH_PREFIXES):
        error = CacheAuthenticationError(f"{where}authentication failed: {text}")
    elif text.startswith("NOPERM") or _SCRIPT_DENIED in text:
        permission = missing_permission(text)
        missing = f" (missing permission: {permission})" if permission else ""
        error = CachePermissionError(f"{where}permission denied by an ACL rule{missing}: {text}", permission=permission)
    elif text.startswith(UNAVAILABLE_PREFIXES):
        error = CacheUnavailableError(f"{where}Redis cannot serve now: {text}")
    else:
        error = CacheCommandError(f"{where}{text}")
    return error.with_delivery(Delivery.NOT_APPLIED)


def connection_error(exc: BaseException | None, command: str, delivery: Delivery, *, where: str = "") -> CacheException:
    """The error for a socket failure (``exc``; ``None`` for a clean close by the server).

    ``where`` names the connection's address for messages about connecting.
    """
    prefix = f"{command}: " if command else ""
    at = f" ({where})" if where else ""
    tls = tls_failure(exc)
    error: CacheException
    if tls is not None:
        error = CacheTLSError(f"{prefix}{describe_tls(tls)}{at}")
    elif isinstance(exc, TimeoutError):
        error = CacheTimeoutError(f"{prefix}timed out{': ' + str(exc) if str(exc) else ''}{at}")
    elif isinstance(exc, socket.gaierror):
        error = CacheUnavailableError(f"{prefix}Redis unavailable: cannot resolve the host name ({exc.strerror}){at}")
    elif isinstance(exc, OSError):
        # asyncio's strerror for a refused connect is "Connect call failed
        # (address)": the errno's own text is what operators search for.
        reason = os.strerror(exc.errno) if exc.errno else (exc.strerror or str(exc) or type(exc).__name__)
        code = f"Error {exc.errno}: " if exc.errno else ""
        error = CacheUnavailableError(f"{prefix}Redis unavailable: {code}{reason}{at}")
    elif exc is None:
        error = CacheUnavailableError(f"{prefix}Redis unavailable: the server closed the connection{at}")
    else:
        error = CacheUnavailableError(f"{prefix}Redis unavailable: {type(exc).__name__}: {exc}{at}")
    error.__cause__ = exc
    return error.with_delivery(delivery)
