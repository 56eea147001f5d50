"""Listening to the sentinels for ``+switch-master``: a failover is known as soon as it is decided.

One background task keeps one subscription to the ``+switch-master``
channel on one sentinel (the resolver's current first), and calls
``on_switch`` when a message names the service. The subscription is a plain
connection of its own (a subscribed connection cannot serve commands, so it
is not one of the resolver's), parsed by hiredis. When it is lost, the next
sentinel is tried after a short backoff; a subscription (re)established
also calls ``on_subscribed``, since a switch may have happened while nobody
was listening.

The watcher is an accelerator, not the only signal: a ``READONLY`` reply or
a connection error from the primary also makes the transport re-resolve.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import hiredis

from ..multiplexed.encoding import pack_many
from .resolver import Address, SentinelResolver, format_address

__all__ = ["SwitchWatcher"]

_log = logging.getLogger("neuroglia.data.redis")
CHANNEL = "+switch-master"
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 2.0


class SwitchWatcher:
    """Subscribes to ``+switch-master`` on one sentinel at a time; see the module docstring."""

    def __init__(
        self,
        resolver: SentinelResolver,
        on_switch: Callable[[Address], None],
        on_subscribed: Callable[[], None],
    ) -> None:
        self._resolver = resolver
        self._on_switch = on_switch
        self._on_subscribed = on_subscribed
        self._task: asyncio.Task[None] | None = None
        self.subscribed_to: Address | None = None

    def start(self) -> None:
        """Start listening (once; needs a running event loop)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="neuroglia-redis-sentinel-watch")

    async def stop(self) -> None:
        """Stop listening and close the subscription."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.subscribed_to = None

    async def _run(self) -> None:
        failures = 0
        while True:
            for address in self._resolver.sentinels:
                try:
                    await self._listen(address)
                    failures = 0  # it was subscribed, then lost: start the next one at once
                except (OSError, EOFError, TimeoutError, _Refused) as exc:
                    _log.debug("neuroglia-redis: sentinel %s: subscription failed: %s", format_address(address), exc)
                finally:
                    self.subscribed_to = None
            failures += 1
            await asyncio.sleep(min(BACKOFF_MAX, BACKOFF_FIRST * 2.0 ** (failures - 1)))

    async def _listen(self, address: Address) -> None:
        """Subscribe on ``address`` and handle its messages until the connection ends."""
        settings = self._resolver.settings(address)
        host, port = address
        async with asyncio.timeout(self._resolver.timeout):
            reader, writer = await asyncio.open_connection(
                host, port, ssl=settings.tls, server_hostname=settings.server_hostname if settings.tls else None
            )
        try:
            commands: list[tuple[Any, ...]] = []
            credentials = settings.credentials
            if credentials.password is not None or credentials.username is not None:
                password = credentials.password or ""
                commands.append(
                    ("AUTH", credentials.username, password) if credentials.username else ("AUTH", password)
                )
            commands.append(("SUBSCRIBE", CHANNEL))
            writer.write(pack_many(commands))
            parser = hiredis.Reader()
            pending_setup = len(commands)
            while True:
                data = await reader.read(65536)
                if not data:
                    raise EOFError("the sentinel closed the subscription")
                parser.feed(data)
                while (message := parser.gets()) is not False:
                    if isinstance(message, hiredis.ReplyError):
                        raise _Refused(str(message))
                    if pending_setup:
                        pending_setup -= 1
                        if not pending_setup:
                            self.subscribed_to = address
                            self._on_subscribed()
                        continue
                    self._message(message)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _message(self, message: Any) -> None:
        # [b"message", b"+switch-master", b"<name> <old ip> <old port> <new ip> <new port>"]
        if not (isinstance(message, list) and len(message) == 3 and message[0] == b"message"):
            return
        parts = message[2].decode("utf-8", "replace").split()
        if len(parts) != 5 or parts[0] != self._resolver.service_name:
            return
        try:
            new = (parts[3], int(parts[4]))
        except ValueError:
            return
        _log.info(
            "neuroglia-redis: sentinel reports a failover of %r: %s:%s -> %s",
            parts[0],
            parts[1],
            parts[2],
            format_address(new),
        )
        self._on_switch(new)


class _Refused(Exception):
    """The sentinel refused the subscription (authentication, ACL)."""
