"""Distributed locks: leases in Redis with fencing tokens, renewal, fair hand-off, and Redlock.

:mod:`.lease` is what every lock shares (ownership per task, re-entry, the
``async with`` protocol, renewal and loss detection); :mod:`.watchdog`
renews the held leases; :mod:`.queue` is one process' queue of waiting
tasks per key and the hand-off between them; :mod:`.runtime` holds one
repository's lock state; :mod:`.distributed` and :mod:`.redlock` are the
two locks. Their Lua scripts are the files under ``lua/``.
"""

from .distributed import DistributedLock, fenced_set_async, fenced_token_async
from .lease import LeaseLock, OnLost
from .redlock import Redlock

__all__ = ["DistributedLock", "LeaseLock", "OnLost", "Redlock", "fenced_set_async", "fenced_token_async"]
