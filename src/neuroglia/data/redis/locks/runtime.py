"""The locks' runtime of one repository: scripts, keys, per-key groups, tokens, watchdogs, background work.

Everything the locks of one repository share lives in one
:class:`LockRuntime`, attached to the repository (it lives and dies with
it), never in module-level registries.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from typing import Any, Final, TypeVar

from ..core.scripts import Script, lua_source
from ..exceptions import CacheUnavailableError
from ..repository import RedisRepository
from .keyspace import LockKeys, guard_keys, hash_slot
from .lease import Acquisition, Key
from .queue import Group
from .watchdog import Watchdog

__all__ = ["LockRuntime", "LockScripts", "lock_runtime"]

T = TypeVar("T")

# An undo that Redis did not answer is sent again after these pauses (seconds,
# doubling up to the last), for as long as the caller allows.
_UNDO_FIRST_PAUSE: Final = 0.05
_UNDO_MAX_PAUSE: Final = 1.0

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
    """The locks' shared state for one repository; see the module docstring.

    ``slot_counters`` chooses where fencing tokens come from: ``False`` (a
    standalone server or a Sentinel group), one counter for every lock under
    the key prefix; ``True`` (Redis Cluster, where a script may only touch
    keys of one hash slot), one counter per hash slot. See
    :mod:`.keyspace`.
    """

    slot_counters = False

    def __init__(self, repository: RedisRepository) -> None:
        self.repository = repository
        # A script may only touch keys of one slot on a cluster: one counter
        # per slot there; one per prefix elsewhere (unchanged tokens).
        self.slot_counters = getattr(repository.config, "topology", "standalone") == "cluster"
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

    def keys(self, key: Key) -> LockKeys:
        """The lock key ``key`` and its companions, with the repository's key prefix."""
        return LockKeys(self.repository._arg.prefix, key, self.prefixed(key), slot_counters=self.slot_counters)

    def guard(self, key: Key) -> tuple[Key, bytes, Key | None]:
        """A key protected by fenced writes, its guard, and where earlier versions kept the guard.

        On a cluster the earlier guard is named only when it shares the key's
        hash slot (a script may not touch another slot; earlier versions could
        only have written it there).
        """
        full = self.prefixed(key)
        guard, legacy = guard_keys(self.repository._arg.prefix, key, full)
        if self.slot_counters and hash_slot(legacy) != hash_slot(full):
            return full, guard, None
        return full, guard, legacy

    def spawn(self, work: Coroutine[Any, Any, Any] | asyncio.Future[Any]) -> asyncio.Future[Any]:
        """Run ``work`` in the background, referenced until it finishes."""
        future = asyncio.ensure_future(work)
        self._background.add(future)
        future.add_done_callback(self._background.discard)
        return future

    async def until_answered(
        self, attempt: Callable[[], Awaitable[T]], horizon: float, repository: RedisRepository | None = None
    ) -> T | None:
        """Run ``attempt`` until Redis answers it, for at most ``horizon`` seconds.

        For undoing an acquisition whose own answer was lost or late: the
        acquisition may still be unread on the server (a server paused with it
        in a socket buffer runs it when it resumes), so an undo that was not
        answered is sent again, with growing pauses, until one is answered (it
        then runs after the acquisition, or the acquisition finds its token
        undone and refuses). Outages only are retried; the last one is raised
        when the horizon has passed. It stops (``None``) once ``repository``
        (this runtime's by default) is disconnected: a repository closed by its
        owner is not reopened for it.
        """
        target = self.repository if repository is None else repository
        loop = asyncio.get_running_loop()
        give_up = loop.time() + horizon
        pause = _UNDO_FIRST_PAUSE
        while True:
            try:
                return await attempt()
            except CacheUnavailableError:
                if loop.time() + pause > give_up:
                    raise
            await asyncio.sleep(pause)
            if not target.is_connected:
                return None
            pause = min(pause * 2, _UNDO_MAX_PAUSE)

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
