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
import re
import socket
import ssl

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

__all__ = [
    "connection_error",
    "describe_tls",
    "server_error",
    "tls_failure",
]

# Error codes that mean "cannot serve now" rather than "bad command": the
# command did not run and another try (later, or elsewhere) may succeed.
_UNAVAILABLE_PREFIXES = ("LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "BUSY ")
_AUTH_PREFIXES = ("WRONGPASS", "NOAUTH", "invalid username-password", "invalid password")
_NOPERM_COMMAND = re.compile(r"permissions to run the '([^']+)' command")
_SCRIPT_DENIED = "The user executing the script can't"


def _missing_permission(message: str) -> str | None:
    """What an ACL denial says the user lacks, in ACL syntax where possible."""
    found = _NOPERM_COMMAND.search(message)
    if found:
        return "+" + found.group(1)
    if "one of the keys" in message:
        return "~<key pattern>"
    if "one of the channels" in message:
        return "&<channel>"
    return None


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
    if text.startswith(_AUTH_PREFIXES):
        error = CacheAuthenticationError(f"{where}authentication failed: {text}")
    elif text.startswith("NOPERM") or _SCRIPT_DENIED in text:
        permission = _missing_permission(text)
        missing = f" (missing permission: {permission})" if permission else ""
        error = CachePermissionError(f"{where}permission denied by an ACL rule{missing}: {text}", permission=permission)
    elif text.startswith(_UNAVAILABLE_PREFIXES):
        error = CacheUnavailableError(f"{where}Redis cannot serve now: {text}")
    else:
        error = CacheCommandError(f"{where}{text}")
    return error.with_delivery(Delivery.NOT_APPLIED)


def tls_failure(exc: BaseException | None) -> ssl.SSLError | None:
    """The TLS refusal behind a connection failure, if that is what it was.

    A TLS stream cut short (EOF, zero return, a system call error) is the
    network's doing, not a refusal, and maps like any reset.
    """
    current = exc
    for _ in range(8):
        if current is None:
            return None
        if isinstance(current, ssl.SSLError):
            if isinstance(current, ssl.SSLEOFError | ssl.SSLZeroReturnError | ssl.SSLSyscallError):
                return None
            return current
        current = current.__cause__ or current.__context__
    return None


def describe_tls(error: ssl.SSLError) -> str:
    """A sentence an operator can act on for a refused TLS handshake."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return (
            f"TLS certificate verification failed: {error.verify_message or error.reason}. "
            "The server's certificate must be signed by a CA in ssl_ca_certs (or the system store) "
            "and name the host connected to"
        )
    reason = str(error.reason or error)
    if "CERTIFICATE_REQUIRED" in reason:
        return f"TLS handshake failed: the server requires a client certificate (ssl_certfile/ssl_keyfile) ({reason})"
    if any(code in reason for code in ("BAD_CERTIFICATE", "UNKNOWN_CA", "CERTIFICATE_UNKNOWN", "DECRYPT_ERROR")):
        return f"TLS handshake failed: the server refused the client certificate ({reason})"
    return f"TLS handshake failed: {reason}"


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
