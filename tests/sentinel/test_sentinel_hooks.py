"""Session hooks carried from one primary's transport to the next (no server needed).

Connection numbers restart at 1 in each inner transport; the numbers a
hook's callbacks see must not collide, or the near cache would forget a
live connection when an old one is reported lost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from neuroglia.data.redis.transport.multiplexed import MultiplexedTransport, SessionHook
from neuroglia.data.redis.transport.sentinel.hooks import Registrations


class InnerDouble:
    """Records what is installed on it; ``ready``/``lost`` play its connections' news."""

    def __init__(self) -> None:
        self.hooks: list[SessionHook] = []
        self.handlers: list[Callable[[list[Any]], None]] = []

    def add_session_hook(self, commands: Any, *, on_ready: Any = None, on_lost: Any = None) -> SessionHook:
        hook = SessionHook(tuple(commands), on_ready, on_lost)
        self.hooks.append(hook)
        return hook

    def remove_session_hook(self, hook: SessionHook) -> None:
        self.hooks.remove(hook)

    def add_push_handler(self, handler: Callable[[list[Any]], None]) -> None:
        self.handlers.append(handler)

    def remove_push_handler(self, handler: Callable[[list[Any]], None]) -> None:
        if handler in self.handlers:  # as the real one: no error when absent
            self.handlers.remove(handler)

    def ready(self, serial: int) -> None:
        for hook in list(self.hooks):
            assert hook.on_ready is not None
            hook.on_ready(serial)

    def lost(self, serial: int) -> None:
        for hook in list(self.hooks):
            assert hook.on_lost is not None
            hook.on_lost(serial)


def as_inner(double: InnerDouble) -> MultiplexedTransport:
    return cast(MultiplexedTransport, double)


def test_connection_numbers_of_two_primaries_never_collide() -> None:
    registrations = Registrations()
    live: set[int] = set()
    registrations.add_hook([("CLIENT", "TRACKING", "ON")], live.add, live.discard, None)
    old, new = InnerDouble(), InnerDouble()
    registrations.install(as_inner(old))
    old.ready(1)
    registrations.install(as_inner(new))
    new.ready(1)  # the same serial in the new transport
    assert len(live) == 2
    registrations.uninstall(as_inner(old))
    registrations.forget(as_inner(old))  # the old primary's connection is reported lost, once
    assert len(live) == 1
    old.lost(1)  # a late report from the old transport changes nothing
    assert len(live) == 1
    new.lost(1)
    assert live == set()


def test_handlers_follow_the_primary_and_a_removed_hook_stays_quiet() -> None:
    registrations = Registrations()
    messages: list[Any] = []
    ready: list[int] = []
    registrations.add_handler(messages.append, None)
    hook = registrations.add_hook([("CLIENT", "TRACKING", "ON")], ready.append, None, None)
    inner = InnerDouble()
    registrations.install(as_inner(inner))
    assert inner.handlers == [messages.append]
    assert registrations.active
    registrations.remove_hook(hook)
    inner.ready(1)
    assert ready == []
    assert not registrations.active
    registrations.uninstall(as_inner(inner))
    assert inner.handlers == []


def test_installing_again_catches_up_without_doubling() -> None:
    registrations = Registrations()
    inner = InnerDouble()
    registrations.add_handler(print, None)
    registrations.add_hook([("CLIENT", "TRACKING", "ON")], None, None, None)
    registrations.install(as_inner(inner))
    # Registered while the new primary was being confirmed (on the old one, or none):
    registrations.add_hook([("CLIENT", "TRACKING", "ON", "BCAST")], None, None, None)
    registrations.install(as_inner(inner))
    assert len(inner.handlers) == 1
    assert [hook.commands[0][-1] for hook in inner.hooks] == ["ON", "BCAST"]
