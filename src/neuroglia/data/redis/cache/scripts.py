"""The cache's Lua scripts (``lua/*.lua``), registered once per repository.

Each script is a named file with its ``KEYS``/``ARGV`` described at the top.
``cache_wake.lua`` is a helper prepended to the scripts that wake waiters.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._library import RedisRepository, Script

__all__ = ["CacheScripts", "lua_source"]


@functools.cache
def lua_source(name: str) -> str:
    """The source of ``lua/<name>.lua``, read once from the installed package."""
    return resources.files(__package__).joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")


class CacheScripts:
    """The scripts of one repository (``register_script`` caches them by source, so sharing is free)."""

    __slots__ = ("expire", "lease", "release", "remove", "set", "tag_remove")

    def __init__(self, repository: RedisRepository) -> None:
        wake = lua_source("cache_wake")
        register = repository.register_script
        self.set: Script = register(wake + lua_source("cache_set"))
        self.release: Script = register(wake + lua_source("cache_release"))
        self.lease: Script = register(lua_source("cache_lease"))
        self.remove: Script = register(lua_source("cache_remove"))
        self.expire: Script = register(lua_source("cache_expire"))
        self.tag_remove: Script = register(lua_source("cache_tag_remove"))
