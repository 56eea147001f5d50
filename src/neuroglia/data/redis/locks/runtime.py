"""The locks' runtime of one repository: scripts, per-key groups, tokens, watchdogs, background work.

Everything the locks of one repository share lives in one
:class:`LockRuntime`, attached to the repository (it lives and dies with
it), never in module-level registries.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import weakref
from collections.abc import Coroutine, Hashable
from typing import Any, Final

from ..core.scripts import Script, lua_source
from ..repository import RedisRepository
from .lease import Acquisition, Key
from .queue import Group
from .watchdog import Watchdog

__all__ = ["LockRuntime", "LockScripts", "lock_runtime"]

# Idle groups stay registered (the next lock on the key reuses them) until
# there are this many groups; then the idle ones are dropped.
_MAX_GROUPS: Final = 256


class LockScripts:
    """The lock scripts, registered once per repository."""

    __slots__ = ("acquire", "extend", "fenced_set", "owned", "release", "withdraw")

    def __init__(self, repository: RedisRepository) -> None:
        queue = lua_source(__name__, "lock_queue")
        self.acquire: Script = repository.register_script(queue + lua_source(__name__, "lock_acquire"))
        self.release: Script = repository.register_script(queue + lua_source(__name__, "lock_release"))
        self.withdraw: Script = repository.register_script(queue + lua_source(__name__, "lock_withdraw"))
        self.extend: Script = repository.register_script(lua_source(__name__, "lock_extend"))
        self.owned: Script = repository.register_script(lua_source(__name__, "lock_owned"))
        self.fenced_set: Script = repository.register_script(lua_source(__name__, "fenced_set"))


class _Tokens:
    """Acquisition tokens and queue ids: unique, not secret (whoever can read the key sees them).

    A random prefix drawn per process (again in a forked child, which would
    otherwise repeat its parent's tokens), then a counter.
    """

    __slots__ = ("_counter", "_pid", "_prefix")

    def __init__(self) -> None:
        self._reseed()

    def _reseed(self) -> None:
        self._pid = os.getpid()
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        if os.getpid() != self._pid:
            self._reseed()
        return f"{self._prefix}{next(self._counter):x}"


class LockRuntime:
    """The locks' shared state for one repository; see the module docstring."""

    def __init__(self, repository: RedisRepository) -> None:
        self.repository = repository
        self.scripts = LockScripts(repository)
        self.groups: dict[Key, Group] = {}
        # What each task holds, by resource, so that a second request for a
        # lock the task already holds is caught even through another lock object.
        self.held_by_task: weakref.WeakKeyDictionary[asyncio.Task[Any], dict[Hashable, Acquisition]] = (
            weakref.WeakKeyDictionary()
        )
        self.new_token = _Tokens()
        self._watchdogs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Watchdog] = weakref.WeakKeyDictionary()
        # Fire-and-forget work (clean-ups after a cancellation, async on_lost
        # callbacks) is referenced here until it finishes: the event loop
        # itself only keeps weak references to tasks.
        self._background: set[asyncio.Future[Any]] = set()

    def prefixed(self, key: Key) -> Key:
        """``key`` with the repository's key prefix, as scripts receive it."""
        return self.repository._arg.key(key)

    def spawn(self, work: Coroutine[Any, Any, Any] | asyncio.Future[Any]) -> asyncio.Future[Any]:
        """Run ``work`` in the background, referenced until it finishes."""
        future = asyncio.ensure_future(work)
        self._background.add(future)
        future.add_done_callback(self._background.discard)
        return future

    def watchdog(self) -> Watchdog:
        """The running event loop's watchdog."""
        loop = asyncio.get_running_loop()
        watchdog = self._watchdogs.get(loop)
        if watchdog is None:
            watchdog = self._watchdogs[loop] = Watchdog()
        return watchdog

    def group(self, key: Key) -> Group:
        """This process' group for ``key`` (one per key and event loop)."""
        loop = asyncio.get_running_loop()
        groups = self.groups
        group = groups.get(key)
        if group is None or group.loop is not loop:
            if len(groups) >= _MAX_GROUPS:
                for stale in [k for k, g in groups.items() if g.loop.is_closed() or g.idle()]:
                    del groups[stale]
            group = groups[key] = Group(self, key)
        return group


def lock_runtime(repository: RedisRepository) -> LockRuntime:
    """The locks' runtime of ``repository``, made on first use."""
    return repository.attachment(LockRuntime, LockRuntime)
