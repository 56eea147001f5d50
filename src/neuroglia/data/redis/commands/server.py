"""The server (ping, info, size, memory, flush) and Lua scripts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..core.arguments import Key, ScalarValue
from ..core.command import Command, command
from ..core.family import Family
from ..core.replies import (
    ok,
    parse_info,
    to_int,
)
from ..core.scripts import Script

__all__ = ["ServerCommands", "ServerOperations"]


class ServerCommands(Family):
    """The server (ping, info, size, memory, flush) and Lua scripts."""

    @command
    def ping(self) -> Command[bool]:
        """Check the server answers."""
        return Command(("PING",), lambda r: r in (b"PONG", "PONG", True))

    @command
    def info(self, section: str | None = None) -> Command[dict[str, Any]]:
        """The server's ``INFO`` as a dict (numbers converted)."""
        return Command(("INFO", section) if section else ("INFO",), parse_info)

    @command
    def dbsize(self) -> Command[int]:
        """The number of keys in the database (all prefixes)."""
        return Command(("DBSIZE",), to_int)

    @command
    def flushdb(self, asynchronous: bool = False) -> Command[bool]:
        """Delete every key of the database, whatever its prefix. Meant for tests."""
        return Command(("FLUSHDB", "ASYNC") if asynchronous else ("FLUSHDB",), ok)

    @command
    def eval_async(self, source: str, keys: Iterable[Key] = (), args: Iterable[ScalarValue] = ()) -> Command[Any]:
        """Run a Lua script with ``EVAL`` (prefer :meth:`register_script`)."""
        text = self._arg.text(source, "source")
        full = self._arg.keys(self._arg.items(keys, (), "keys", "an iterable of keys"))
        values = [self._arg.value(a, "argument") for a in self._arg.items(args, (), "args", "an iterable of arguments")]
        return Command(("EVAL", text, len(full), *full, *values), self._reply.deep, idempotent=False)

    ping_async = ping
    info_async = info


class ServerOperations(ServerCommands):
    """The server operations that are not one command (not queueable in a pipeline)."""

    _scripts: dict[str, Script]

    async def memory_usage(self, key: Key | None = None) -> int:
        """Bytes used: by the server (no ``key``) or by one key (0 if it does not exist)."""
        if key is None:
            info = await self.info("memory")
            return int(info.get("used_memory", 0))
        return await self._executor.run(Command(("MEMORY", "USAGE", self._arg.key(key)), lambda r: int(r or 0)))

    def register_script(self, source: str) -> Script:
        """Prepare a Lua script; call the result with ``keys=`` and ``args=``.

        The first call sends the source with ``EVAL`` (which also caches it on
        the server); later calls send only its digest with ``EVALSHA``, and
        fall back to ``EVAL`` once if the server forgot it (a restart). The
        same source gives the same :class:`Script`. Keys get the repository's
        prefix.
        """
        source = self._arg.text(source, "source")
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = Script(self, source)
        return script
