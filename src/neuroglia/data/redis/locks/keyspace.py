"""Where a lock keeps its state: the lock key itself, and companion keys nobody else can name.

The lock is the key ``prefix + key`` (the page's contract: ``exists_async(key)``
sees it). Everything else a lock needs lives in a *reserved namespace* under
the repository's key prefix::

    <prefix> \\xff lock :fencing                          the fencing counter of every lock under <prefix>
    <prefix> \\xff lock {TTTT} waiters: <len>:<key>       the queue of waiting processes
    <prefix> \\xff lock {TTTT} alive:   <len>:<key>       their heartbeats
    <prefix> \\xff lock {TTTT} wake:    <len>:<key>:<id>  the list one waiting process blocks on
    <prefix> \\xff lock {TTTT} undone:  <len>:<key>       tokens of acquisitions undone before they arrived
    <prefix> \\xff lock {TTTT} guard:   <len>:<key>       the highest token written to ``key`` (fenced writes)

Why nothing else can reach them:

* the byte ``0xFF`` never occurs in UTF-8, so no text key (and no key prefix,
  which is text) contains it: an application's key, or another lock's, can
  name a companion only by passing raw ``bytes`` that start with it, which
  the locks refuse for lock names and the documentation reserves;
* the lock name is length-prefixed, so ``job`` and ``job:fencing`` (or any
  two names) never share a companion, whatever characters they hold;
* the prefix comes first, so repositories with different prefixes never
  share lock state.

``{TTTT}`` is a Redis Cluster hash tag of four characters chosen so that the
companions hash to the same slot as the lock key (:func:`slot_tag`): a lock's
script only touches keys of one slot. The fencing counter is the exception:
one counter for all the locks under a prefix is a single key, which fits a
standalone server or a Sentinel group (tokens increase per lock name because
they increase globally). On a cluster, ``slot_counters=True`` keeps one
counter per hash slot instead (``\\xfflock{TTTT}fencing``): a lock name always
maps to the same slot, so its tokens still only increase, and at most 16,384
counters exist per prefix.

Earlier versions kept a counter at ``key + ":fencing"`` for every lock (and a
guard at ``key + ":fencing"`` beside every fenced key). Those are read, never
written: a token handed out now is above any they hold (see ``lua/``).
"""

from __future__ import annotations

import binascii
from typing import Final

from ..config.topology import SLOTS, hash_slot
from ..exceptions import InvalidArgumentError

__all__ = ["RESERVED", "LockKeys", "guard_keys", "hash_slot", "lock_keys", "slot_tag"]

Key = str | bytes

RESERVED: Final = b"\xfflock"
"""The first bytes of every companion key (after the key prefix); no text key contains ``0xFF``."""

_SLOT_MASK: Final = SLOTS - 1
# Tags are four characters from "0123456789:;<=>?" (0x30 | a nibble): each
# character carries four free bits, so the sixteen bits of a tag can be solved
# for any slot (below), and no tag holds a brace.
_TAG_BASE: Final = b"0000"


def _as_bytes(key: Key) -> bytes:
    return key.encode() if isinstance(key, str) else key


def _solve_basis() -> tuple[int, list[int]]:
    """How to build a tag for any slot: CRC16 is linear over GF(2) for messages of one length.

    Returns the slot bits of the base tag's CRC and, for each of the 14 slot
    bits, the tag bits (an XOR of nibbles) that flip exactly that slot bit.
    """
    base = binascii.crc_hqx(_TAG_BASE, 0) & _SLOT_MASK
    pivots: dict[int, tuple[int, int]] = {}  # slot bit -> (slot bits it flips, tag bits that flip them)
    for bit in range(16):
        delta = bytearray(4)
        delta[bit // 4] = 1 << (bit % 4)
        value, combo = binascii.crc_hqx(bytes(delta), 0) & _SLOT_MASK, 1 << bit
        for pivot, (pvalue, pcombo) in pivots.items():
            if value >> pivot & 1:
                value, combo = value ^ pvalue, combo ^ pcombo
        if not value:
            continue
        lead = value.bit_length() - 1
        for pivot, (pvalue, pcombo) in list(pivots.items()):
            if pvalue >> lead & 1:
                pivots[pivot] = (pvalue ^ value, pcombo ^ combo)
        pivots[lead] = (value, combo)
    if len(pivots) != 14:  # pragma: no cover - a property of CRC16/XMODEM, checked by the tests
        raise AssertionError("tags of four nibbles cannot reach every hash slot")
    return base, [pivots[bit][1] for bit in range(14)]


_BASE_SLOT, _FLIPS = _solve_basis()


def slot_tag(slot: int) -> bytes:
    """Four characters whose CRC16 lands in ``slot``: ``{tag}`` in a key puts the key in that slot."""
    if not 0 <= slot < SLOTS:
        raise InvalidArgumentError(f"slot must be in [0, 16384), got {slot!r}")
    wanted = slot ^ _BASE_SLOT
    combo = 0
    for bit in range(14):
        if wanted >> bit & 1:
            combo ^= _FLIPS[bit]
    return bytes(0x30 | (combo >> (4 * i) & 0xF) for i in range(4))


def _named(role: bytes, tag: bytes, prefix: bytes, name: bytes) -> bytes:
    return b"%s%s{%s}%s:%d:%s" % (prefix, RESERVED, tag, role, len(name), name)


def check_lock_name(key: Key) -> None:
    """Refuse a lock name that would reach into the reserved namespace."""
    if isinstance(key, bytes) and key.startswith(b"\xff"):
        raise InvalidArgumentError(f"lock key {key!r} starts with the byte 0xFF, reserved for the locks' own keys")


class LockKeys:
    """The keys of one lock under one key prefix, ready for its scripts.

    ``script`` is ``(number of keys, *keys)`` as the queue-aware scripts take
    them (see ``lua/lock_queue.lua``); ``wake(id)`` is the wake-up list of
    one waiting process, relative to the key prefix (as ``blpop_async``
    takes keys).
    """

    __slots__ = ("_wake_relative", "alive", "counter", "lock", "script", "undone", "waiters")

    def __init__(self, prefix: str, key: Key, full: Key, *, slot_counters: bool = False) -> None:
        check_lock_name(key)
        raw_prefix = prefix.encode()
        name = _as_bytes(key)
        tag = slot_tag(hash_slot(full))
        self.lock: Key = full
        self.counter = (
            b"%s%s{%s}fencing" % (raw_prefix, RESERVED, tag) if slot_counters else raw_prefix + RESERVED + b":fencing"
        )
        self.waiters = _named(b"waiters", tag, raw_prefix, name)
        self.alive = _named(b"alive", tag, raw_prefix, name)
        self.undone = _named(b"undone", tag, raw_prefix, name)
        wake_relative = _named(b"wake", tag, b"", name) + b":"
        self._wake_relative = wake_relative
        keys: tuple[Key, ...] = (full, self.counter, self.waiters, self.alive, raw_prefix + wake_relative, self.undone)
        legacy = _legacy(full)
        if not slot_counters or hash_slot(legacy) == hash_slot(full):
            # The per-lock counter of earlier versions, read to seed the tokens.
            # (On a cluster they could only exist in the lock key's slot: the
            # scripts of those versions touched it without declaring it.)
            keys += (legacy,)
        self.script: tuple[object, ...] = (len(keys), *keys)

    def wake(self, waiter: str) -> bytes:
        """The wake-up list of the waiting process ``waiter``, relative to the key prefix."""
        return self._wake_relative + waiter.encode()


def _legacy(full: Key) -> Key:
    return full + b":fencing" if isinstance(full, bytes) else full + ":fencing"


def lock_keys(prefix: str, key: Key, full: Key, *, slot_counters: bool = False) -> LockKeys:
    """The keys of lock ``key`` (``full`` is it with the prefix), see the module docstring."""
    return LockKeys(prefix, key, full, slot_counters=slot_counters)


def guard_keys(prefix: str, key: Key, full: Key) -> tuple[bytes, Key]:
    """The guard of fenced writes to ``key`` (in its hash slot) and where earlier versions kept it."""
    guard = _named(b"guard", slot_tag(hash_slot(full)), prefix.encode(), _as_bytes(key))
    return guard, _legacy(full)
