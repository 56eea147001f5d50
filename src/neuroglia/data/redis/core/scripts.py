"""Lua scripts: :class:`Script` (load once, then run by digest) and the named ``.lua`` files.

The library's own scripts live as named files next to the code that uses
them (``locks/lua/``, ``entities/lua/``...), each with ``KEYS``/``ARGV``
comments; :func:`lua_source` reads one once from the installed package.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from importlib import resources
from typing import Any

from ..exceptions import CacheCommandError, InvalidArgumentError
from .arguments import Key, ScalarValue
from .command import Command
from .family import Family

__all__ = ["Script", "lua_source"]


@functools.cache
def lua_source(module: str, name: str) -> str:
    """The source of ``lua/<name>.lua`` beside ``module`` (pass ``__name__``), read once."""
    package = module.rpartition(".")[0]
    return resources.files(package).joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")


class Script:
    """A Lua script bound to a repository (see ``RedisRepository.register_script``).

    The first call sends the source with ``EVAL`` (which also caches it on
    the server); later calls send only its digest with ``EVALSHA``, and fall
    back to ``EVAL`` once if the server forgot it (a restart).
    """

    __slots__ = ("_arguments", "_executor", "_loaded", "_replies", "sha", "source")

    def __init__(self, repository: Family, source: str) -> None:
        if not isinstance(source, str) or not source.strip():
            raise InvalidArgumentError("a script must be a non-empty str")
        self._executor = repository._executor
        self._arguments = repository._arg
        self._replies = repository._reply
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
        self._loaded = False

    async def __call__(self, keys: Iterable[Key] = (), args: Iterable[ScalarValue] = ()) -> Any:
        """Run the script; returns its reply with text decoded like other reads."""
        arguments = self._arguments
        full = arguments.keys(list(keys))
        return await self.run((len(full), *full, *(arguments.value(a, "argument") for a in args)))

    async def run(self, prepared: tuple[Any, ...]) -> Any:
        """Run the script with ``prepared`` = (number of keys, *keys, *args), checked and prefixed.

        :meth:`__call__` checks a caller's keys and arguments first; the
        library's own hot paths (locks) prepare theirs once and call this.
        """
        run = self._executor.run
        parse = self._replies.deep
        if self._loaded:
            try:
                return await run(Command(("EVALSHA", self.sha, *prepared), parse, idempotent=False))
            except CacheCommandError as exc:
                if "NOSCRIPT" not in str(exc):
                    raise
        result = await run(Command(("EVAL", self.source, *prepared), parse, idempotent=False))
        self._loaded = True
        return result

    def __repr__(self) -> str:
        return f"Script(sha={self.sha[:12]})"
