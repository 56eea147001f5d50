"""Push handlers and session hooks that outlive the primary's transport.

A feature that registers a push handler or a session hook (the near cache's
``CLIENT TRACKING``) registers it once, on the sentinel transport; this
module keeps the registrations and puts them on each primary transport in
turn, so after a failover the new primary's connections run the hook's
commands before serving anything, and the old ones report ``on_lost``
(whatever invalidations they would have carried are gone: the near cache
flushes).

Connection numbers restart at 1 in each inner transport, so the callbacks
get numbers of this module's own: a connection of the old primary and one
of the new never share a number.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence

from ..contract import Args
from ..multiplexed import MultiplexedTransport, PushHandler, SessionHook

__all__ = ["Registrations"]

_log = logging.getLogger("neuroglia.data.redis")


class Registrations:
    """The push handlers and session hooks to install on every primary transport."""

    def __init__(self) -> None:
        self.handlers: list[PushHandler] = []
        self.hooks: list[SessionHook] = []
        self._installed: dict[int, list[tuple[SessionHook, SessionHook]]] = {}
        # (hook, inner transport, its connection serial) -> the number the hook's callbacks see
        self._numbers: dict[tuple[int, int, int], int] = {}
        self._counter = itertools.count(1)

    @property
    def active(self) -> bool:
        """Some feature depends on the primary's connections (its reads must go there)."""
        return bool(self.hooks)

    # -- registering -------------------------------------------------------------------

    def add_handler(self, handler: PushHandler, inner: MultiplexedTransport | None) -> None:
        """Keep ``handler`` and install it on ``inner`` (the current primary transport, if any)."""
        self.handlers.append(handler)
        if inner is not None:
            inner.add_push_handler(handler)

    def remove_handler(self, handler: PushHandler, inner: MultiplexedTransport | None) -> None:
        """Forget ``handler``."""
        if handler in self.handlers:
            self.handlers.remove(handler)
        if inner is not None:
            inner.remove_push_handler(handler)

    def add_hook(
        self,
        commands: Sequence[Args],
        on_ready: Callable[[int], None] | None,
        on_lost: Callable[[int], None] | None,
        inner: MultiplexedTransport | None,
    ) -> SessionHook:
        """Keep a hook (returned, for :meth:`remove_hook`) and install it on ``inner``."""
        hook = SessionHook(tuple(tuple(args) for args in commands), on_ready, on_lost)
        self.hooks.append(hook)
        if inner is not None:
            self._install_hook(hook, inner)
        return hook

    def remove_hook(self, hook: SessionHook) -> None:
        """Stop running ``hook`` on new connections (of this primary and the next ones)."""
        if hook in self.hooks:
            self.hooks.remove(hook)
        for installed in self._installed.values():
            for outer, inner_hook in list(installed):
                if outer is hook:
                    installed.remove((outer, inner_hook))
        # The inner transports keep nothing that calls back into a removed hook:
        # its wrappers check membership first.

    # -- moving to a new primary ---------------------------------------------------------

    def install(self, inner: MultiplexedTransport) -> None:
        """Put every handler and hook on ``inner`` (a new primary's transport, before it serves).

        Idempotent: what is already on ``inner`` is not added twice, so a
        registration made while ``inner`` was being confirmed is caught up
        by calling it again.
        """
        for handler in self.handlers:
            inner.remove_push_handler(handler)  # no error when absent: at most one copy
            inner.add_push_handler(handler)
        installed = {id(hook) for hook, _ in self._installed.get(id(inner), [])}
        for hook in self.hooks:
            if id(hook) not in installed:
                self._install_hook(hook, inner)

    def uninstall(self, inner: MultiplexedTransport) -> None:
        """Take the handlers off ``inner`` (hooks stay, so closing it reports ``on_lost``)."""
        for handler in self.handlers:
            inner.remove_push_handler(handler)

    def forget(self, inner: MultiplexedTransport) -> None:
        """``inner`` is given up: every connection of it a hook was told about is reported lost, once."""
        for _, inner_hook in self._installed.pop(id(inner), []):
            inner.remove_session_hook(inner_hook)
        gone = [key for key in self._numbers if key[1] == id(inner)]
        for key in gone:
            number = self._numbers.pop(key)
            hook = next((h for h in self.hooks if id(h) == key[0]), None)
            if hook is not None and hook.on_lost is not None:
                _call(hook.on_lost, number)

    def _install_hook(self, hook: SessionHook, inner: MultiplexedTransport) -> None:
        key = (id(hook), id(inner))

        def ready(serial: int) -> None:
            if hook in self.hooks and hook.on_ready is not None:
                number = self._numbers.get((*key, serial))
                if number is None:
                    number = self._numbers[(*key, serial)] = next(self._counter)
                hook.on_ready(number)

        def lost(serial: int) -> None:
            number = self._numbers.pop((*key, serial), None)
            if number is not None and hook in self.hooks and hook.on_lost is not None:
                hook.on_lost(number)

        inner_hook = inner.add_session_hook(hook.commands, on_ready=ready, on_lost=lost)
        self._installed.setdefault(id(inner), []).append((hook, inner_hook))


def _call(callback: Callable[[int], None], number: int) -> None:
    try:
        callback(number)
    except Exception:
        _log.exception("neuroglia-redis: a session hook's on_lost failed")
