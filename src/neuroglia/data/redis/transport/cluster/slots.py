"""Hash slots: which of the cluster's 16,384 slots a key lives in, and the error for keys that do not share one.

A key's slot is the CRC16 of the key, or of its *hash tag* when it has one:
the text between the first ``{`` and the next ``}``, if not empty. Keys
that must be used together (a multi-key command, a transaction, a script)
share a slot only when they share a tag: ``{order:42}:items`` and
``{order:42}:total`` both hash ``order:42``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from neuroglia.data.redis.config.topology import SLOTS, hash_slot
from neuroglia.data.redis.exceptions import CacheCommandError, Delivery

__all__ = ["SLOTS", "cross_slot_error", "key_slot", "single_slot"]


def _as_bytes(key: Any) -> bytes:
    if isinstance(key, bytes):
        return key
    if isinstance(key, str):
        return key.encode()
    if isinstance(key, memoryview | bytearray):
        return bytes(key)
    return str(key).encode()


def key_slot(key: Any) -> int:
    """The slot of ``key`` (``str`` keys are UTF-8 encoded, as they are sent)."""
    return hash_slot(_as_bytes(key))


def _shown(key: Any) -> str:
    text = _as_bytes(key).decode("utf-8", errors="replace")
    return repr(text if len(text) <= 60 else text[:57] + "...")


def cross_slot_error(name: str, keys: Iterable[Any], what: str = "a command") -> CacheCommandError:
    """The error for ``name`` given keys of different slots (nothing was sent)."""
    listed = list(keys)
    seen: dict[int, list[Any]] = {}
    for key in listed:
        seen.setdefault(key_slot(key), []).append(key)
    parts = [f"{', '.join(_shown(k) for k in group[:3])}{' ...' if len(group) > 3 else ''} in slot {slot}"
             for slot, group in list(seen.items())[:6]]  # fmt: skip
    more = f" and {len(seen) - 6} more slots" if len(seen) > 6 else ""
    return CacheCommandError(
        f"{name}: the keys are in different hash slots of the cluster ({'; '.join(parts)}{more}). On Redis Cluster "
        f"{what} must keep all its keys in one slot: give them a common hash tag, the part of the key in braces "
        "that alone is hashed, e.g. '{order:42}:items' and '{order:42}:total'"
    ).with_delivery(Delivery.NOT_SENT)


def single_slot(name: str, keys: Iterable[Any], what: str = "a command") -> int | None:
    """The one slot all ``keys`` share (``None`` without keys); raises :func:`cross_slot_error` otherwise."""
    slot: int | None = None
    listed = list(keys)
    for key in listed:
        current = key_slot(key)
        if slot is None:
            slot = current
        elif current != slot:
            raise cross_slot_error(name, listed, what)
    return slot
