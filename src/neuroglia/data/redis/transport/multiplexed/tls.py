"""The TLS context of ``rediss://`` connections: verified unless loudly told otherwise.

The server's certificate is checked against ``ssl_ca_certs`` (or the system
store) and its host name against the host connected to; TLS 1.2 is the
oldest version offered; a client certificate (``ssl_certfile`` +
``ssl_keyfile``) is presented when configured (mutual TLS). Only
``ssl_insecure_skip_verify=True`` turns verification off, and then a warning
is logged once per transport. See ``docs/security.md``.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass

from neuroglia.data.redis.exceptions import ConfigurationError

__all__ = ["TlsSettings", "client_context"]

_log = logging.getLogger("neuroglia.data.redis")
_VERIFY_MODES = {"required": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL, "none": ssl.CERT_NONE}


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """What the configuration says about TLS (validated by the configuration)."""

    ca_certs: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    cert_reqs: str | None = None
    check_hostname: bool = True
    insecure_skip_verify: bool = False


def client_context(settings: TlsSettings, target: str) -> ssl.SSLContext:
    """An :class:`ssl.SSLContext` for connecting to ``target`` (named in the warning).

    Files that cannot be read or a key that does not match its certificate
    raise :class:`~neuroglia.data.redis.ConfigurationError` naming the field.
    """
    verify = not settings.insecure_skip_verify
    # None (the framework page's value) means the default, "required".
    cert_reqs = settings.cert_reqs or ("required" if verify else "none")
    check_hostname = verify and settings.check_hostname
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # check_hostname must be off before verify_mode may drop below CERT_REQUIRED.
    context.check_hostname = False
    context.verify_mode = _VERIFY_MODES[cert_reqs]
    context.check_hostname = check_hostname and context.verify_mode != ssl.CERT_NONE
    if settings.ca_certs:
        try:
            context.load_verify_locations(cafile=settings.ca_certs)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(f"ssl_ca_certs: cannot load {settings.ca_certs!r}: {exc}") from exc
    if settings.certfile:
        try:
            context.load_cert_chain(settings.certfile, settings.keyfile)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"ssl_certfile: cannot load the client certificate {settings.certfile!r} with its key: {exc}"
            ) from exc
    if not verify:
        unchecked = "the host name is" if cert_reqs != "none" else "the certificate and host name are"
        _log.warning(
            "TLS verification is OFF for %s (ssl_insecure_skip_verify=True): %s not verified, so anyone on "
            "the network path can impersonate the server and read the traffic, credentials included",
            target,
            unchecked,
        )
    return context
