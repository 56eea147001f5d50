"""What a failure says, read the same way by every transport.

The server's error codes that mean "cannot serve now", the ACL permission an
error names, and the TLS refusal behind a failed connect: the pieces of error
classification that do not depend on how a transport talks to the server.
"""

from __future__ import annotations

import re
import ssl

__all__ = [
    "AUTH_PREFIXES",
    "UNAVAILABLE_PREFIXES",
    "describe_tls",
    "missing_permission",
    "tls_failure",
]

# Error codes that mean "cannot serve now" rather than "bad command": the
# command did not run and another try (later, or elsewhere) may succeed.
UNAVAILABLE_PREFIXES = ("LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "BUSY ")
AUTH_PREFIXES = ("WRONGPASS", "NOAUTH", "invalid username-password", "invalid password")
_NOPERM_COMMAND = re.compile(r"permissions to run the '([^']+)' command")


def missing_permission(message: str) -> str | None:
    """What an ACL denial says the user lacks, in ACL syntax where possible."""
    found = _NOPERM_COMMAND.search(message)
    if found:
        return "+" + found.group(1)
    if "one of the keys" in message:
        return "~<key pattern>"
    if "one of the channels" in message:
        return "&<channel>"
    return None


def tls_failure(exc: BaseException | None) -> ssl.SSLError | None:
    """The TLS refusal behind a connection failure, if that is what it was.

    Client libraries chain the TLS error implicitly, so the causes are walked.
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
