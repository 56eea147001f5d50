"""Helpers shared by the transport tests."""

from __future__ import annotations

from collections.abc import Callable

from neuroglia.data.redis.transport.multiplexed import MultiplexedTransport

__all__ = ["MakeTransport", "value_of"]

MakeTransport = Callable[..., MultiplexedTransport]


def value_of(key: str) -> bytes:
    """Every value names its key, so a reply delivered to the wrong caller is caught."""
    return f"value-of:{key}".encode()
