"""Topologies: one server, a Redis Cluster, or a primary found through Sentinel.

A cluster is named by seed nodes (any reachable node reveals the rest); a
Sentinel deployment by its sentinels and the service name they monitor.
Both come as URLs (``redis+cluster://h1:7000,h2:7001``,
``redis+sentinel://h1:26379,h2:26379/mymaster/0``; ``rediss+...`` for TLS)
or as :class:`~neuroglia.data.redis.RedisConfig` fields; this module turns
either spelling into one normalised tuple of ``(host, port)`` pairs, and
says which of a cluster's hash slots a key lives in (:func:`hash_slot`),
for the cluster transport, the locks and the testing kit alike.
"""

from __future__ import annotations

import binascii
from collections.abc import Sequence
from typing import Final, Literal

from ..exceptions import ConfigurationError
from .checks import fail

__all__ = [
    "DEFAULT_PORTS",
    "READ_FROM",
    "Node",
    "ReadFrom",
    "Topology",
    "check_read_from",
    "format_nodes",
    "has_hash_tag",
    "hash_slot",
    "parse_nodes",
]

Topology = Literal["standalone", "cluster", "sentinel"]
ReadFrom = Literal["primary", "replica", "nearest"]
READ_FROM: Final[tuple[str, ...]] = ("primary", "replica", "nearest")
Node = tuple[str, int]
SLOTS: Final = 16384
# The port a node listed without one gets: Redis's own, or Sentinel's.
DEFAULT_PORTS: Final[dict[str, int]] = {"cluster": 6379, "sentinel": 26379}


def parse_nodes(field: str, value: object, default_port: int) -> tuple[Node, ...]:
    """``"h1:7000,h2"``, ``["h1:7000", ("h2", 7001)]`` -> ``(("h1", 7000), ("h2", default_port))``.

    Raises :class:`ConfigurationError` naming ``field`` for an empty list, a
    malformed entry or a port outside 1..65535. Duplicates are dropped,
    order is kept (the first node is asked first).
    """
    entries: Sequence[object]
    if isinstance(value, str):
        entries = [part.strip() for part in value.split(",")]
    elif isinstance(value, Sequence):
        entries = value
    else:
        raise fail(field, f"expected 'host:port,...' or a list of 'host:port' / (host, port), got {value!r}")
    nodes: list[Node] = []
    for entry in entries:
        node = _parse_node(field, entry, default_port)
        if node not in nodes:
            nodes.append(node)
    if not nodes:
        raise fail(field, "names no node; expected at least one 'host:port'")
    return tuple(nodes)


def _parse_node(field: str, entry: object, default_port: int) -> Node:
    if isinstance(entry, tuple | list) and len(entry) == 2:
        host, port = entry
    elif isinstance(entry, str) and entry:
        host, port = _split_host_port(field, entry, default_port)
    else:
        raise fail(field, f"expected 'host:port' or (host, port), got {entry!r}")
    if not isinstance(host, str) or not host:
        raise fail(field, f"a node's host must be a non-empty string, got {host!r}")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise fail(field, f"a node's port must be an integer in 1..65535, got {port!r}")
    return host, port


def _split_host_port(field: str, entry: str, default_port: int) -> tuple[str, int]:
    if entry.startswith("["):  # [::1]:7000
        host, _, rest = entry[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else rest
    elif entry.count(":") == 1:
        host, _, port_text = entry.partition(":")
    else:
        host, port_text = entry, ""
    if not port_text:
        return host, default_port
    if not port_text.isdigit():
        raise fail(field, f"node {entry!r}: the port must be a number")
    return host, int(port_text)


def format_nodes(nodes: Sequence[Node]) -> str:
    """``"h1:7000,[::1]:7001"``: the nodes as a URL's host list."""
    return ",".join(f"[{host}]:{port}" if ":" in host else f"{host}:{port}" for host, port in nodes)


def check_read_from(value: object, topology: Topology) -> ReadFrom:
    """Validate ``read_from``: replicas are found through a cluster's slot map or the sentinels."""
    if value not in READ_FROM:
        raise fail("read_from", f"allowed values: {list(READ_FROM)}, got {value!r}")
    if value != "primary" and topology == "standalone":
        raise ConfigurationError(
            f"read_from: {value!r} needs a cluster or sentinel topology (its replicas are found through them); "
            "a single-server URL has only the primary"
        )
    return value  # type: ignore[return-value]


def has_hash_tag(name: str | bytes) -> bool:
    """Whether Redis Cluster hashes a key starting with ``name`` by a tag in it.

    The tag is what lies between the first ``{`` and the next ``}``, when
    that is not empty (the cluster specification's rule).
    """
    raw = name.encode() if isinstance(name, str) else name
    start = raw.find(b"{")
    return start >= 0 and raw.find(b"}", start + 1) > start + 1


def hash_slot(key: str | bytes) -> int:
    """The Redis Cluster hash slot of ``key``: CRC16/XMODEM of its hash tag, or of the whole key, mod 16384.

    A ``str`` key is hashed as the UTF-8 bytes it is sent as.
    """
    raw = key.encode() if isinstance(key, str) else key
    start = raw.find(b"{")
    if start != -1:
        end = raw.find(b"}", start + 1)
        if end > start + 1:  # an empty "{}" is no tag: the whole key is hashed
            raw = raw[start + 1 : end]
    return binascii.crc_hqx(raw, 0) % SLOTS
