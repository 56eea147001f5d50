"""Connection URLs, split into fields.

``redis://``, ``rediss://``, ``unix://`` and ``memory://`` name one server;
``redis+cluster://`` and ``redis+sentinel://`` (``rediss+...`` with TLS) name
a topology by a list of nodes (:mod:`.topology`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final
from urllib.parse import parse_qsl, unquote, urlsplit

from ..exceptions import ConfigurationError
from .checks import fail
from .topology import DEFAULT_PORTS, parse_nodes

__all__ = ["SCHEMES", "parse_url"]

SCHEMES: Final[tuple[str, ...]] = (
    "redis",
    "rediss",
    "unix",
    "memory",
    "redis+cluster",
    "rediss+cluster",
    "redis+sentinel",
    "rediss+sentinel",
)


_URL_QUERY: Final[dict[str, Any]] = {
    "db": int,
    "ssl_cert_reqs": str,
    "ssl_ca_certs": str,
    "ssl_certfile": str,
    "ssl_keyfile": str,
    "client_name": str,
    "transport": str,
    "protocol": int,
    "read_from": str,
    "sentinel_username": str,
    "sentinel_password": str,
}


def parse_url(url: str) -> dict[str, Any]:
    """Split a connection URL into fields; the password is never echoed in errors, nor reachable from them.

    A :class:`ConfigurationError` for a malformed URL carries its message
    only: it is raised here, outside the parser, so it has no ``__context__``
    (the parser's own errors quote parts of the URL: a password holding an
    unencoded ``/`` or ``?`` becomes the "port" or the "query") and no frame
    of the parser in its traceback (whose locals hold the URL's parts), for
    an error tracker that records local variables to find.
    """
    try:
        return _split(url)
    except ConfigurationError as error:
        message = str(error)
    raise ConfigurationError(message)


def _split(url: str) -> dict[str, Any]:
    if not isinstance(url, str) or "://" not in url:
        raise fail("url", f"expected '<scheme>://...' with scheme one of {list(SCHEMES)}")
    # A password holding '/', '?' or '#' ends up in the path or the query when
    # it is not percent-encoded: with credentials around, never echo any part.
    has_credentials = "@" in url

    def shown(text: str) -> str:
        return "<hidden: the URL holds credentials>" if has_credentials else text

    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        # A topology URL lists several host:port pairs, which urlsplit's port cannot read.
        port = None if "+" in scheme else parts.port
    except ValueError as exc:
        raise fail("url", f"malformed URL ({shown(str(exc))}); expected e.g. redis://host:6379/0") from None
    if scheme not in SCHEMES:
        raise fail("url", f"unsupported scheme {scheme!r}; allowed: {list(SCHEMES)}")
    result: dict[str, Any] = {
        "scheme": scheme,
        "host": None if "+" in scheme else parts.hostname,
        "port": port,
        "db": None,
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
    }
    query: dict[str, Any] = {}
    for key, raw in parse_qsl(parts.query, keep_blank_values=True):
        if key not in _URL_QUERY:
            raise fail("url", f"unknown query parameter {shown(repr(key))}; allowed: {sorted(_URL_QUERY)}")
        try:
            value = _URL_QUERY[key](raw)
        except ValueError:
            raise fail("url", f"query parameter {key}={shown(repr(raw))} is not valid") from None
        if key == "db":
            result["db"] = value
        else:
            query[key] = value
    result["query"] = query
    if scheme == "memory":
        if has_credentials:
            # The embedded backend has no users; a name holding '@' would also carry them into the repr.
            raise fail("url", "memory:// takes no username or password (and a memory server name cannot hold '@')")
        # memory://[name][/db]: a trailing number selects the database, as in redis://.
        name, _, db_part = (parts.netloc + parts.path).strip("/").rpartition("/")
        if not name and not db_part.isdigit():
            name, db_part = db_part, ""
        if db_part and not db_part.isdigit():
            raise fail("db", f"the URL path must be a database number, got {db_part!r}")
        if db_part:
            if result["db"] is not None and result["db"] != int(db_part):
                raise fail("db", "the URL path and its ?db= parameter disagree")
            result["db"] = int(db_part)
        result["memory_name"] = name or None
        result["host"] = None
        return result
    if scheme == "unix":
        if not parts.path:
            raise fail("url", "unix:// needs a socket path, e.g. unix:///run/redis.sock?db=0")
        result["path"] = parts.path
        result["host"] = None
        return result
    if "+" in scheme:
        return _topology(result, parts.netloc.rpartition("@")[2], parts.path.strip("/"), shown)
    if not parts.hostname:
        raise fail("url", "missing host; expected e.g. redis://localhost:6379/0")
    path = parts.path.strip("/")
    if path:
        if not path.isdigit():
            raise fail("db", f"the URL path must be a database number, got {shown(repr(path))}")
        if result["db"] is not None and result["db"] != int(path):
            raise fail("db", "the URL path and its ?db= parameter disagree")
        result["db"] = int(path)
    return result


def _topology(result: dict[str, Any], hosts: str, path: str, shown: Callable[[str], str]) -> dict[str, Any]:
    """``redis+cluster://h1:p1,h2:p2[/0]`` and ``redis+sentinel://s1:p1,s2:p2/service[/db]``."""
    base, _, topology = result["scheme"].partition("+")
    result["scheme"] = base
    result["topology"] = topology
    example = (
        "redis+cluster://host1:7000,host2:7001"
        if topology == "cluster"
        else "redis+sentinel://host1:26379,host2:26379/mymaster/0"
    )
    if not hosts:
        raise fail("url", f"names no node; expected e.g. {example}")
    result["nodes"] = parse_nodes("url", hosts, DEFAULT_PORTS[topology])
    segments = [segment for segment in path.split("/") if segment] if path else []
    if topology == "sentinel":
        if not segments:
            raise fail("service_name", f"a sentinel URL names the monitored service in its path: {example}")
        result["service_name"] = segments.pop(0)
    if len(segments) > 1 or (segments and not segments[0].isdigit()):
        raise fail("db", f"the URL path after the nodes must be a database number, got {shown(repr(path))}")
    if segments:
        db = int(segments[0])
        if result["db"] is not None and result["db"] != db:
            raise fail("db", "the URL path and its ?db= parameter disagree")
        result["db"] = db
    return result
