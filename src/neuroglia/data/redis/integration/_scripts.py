"""The adapters' Lua scripts: named files under ``lua/`` with their KEYS and ARGV documented."""

from __future__ import annotations

import functools
from importlib import resources

__all__ = ["entity_script", "lua_source"]


@functools.cache
def lua_source(name: str) -> str:
    """The source of ``lua/<name>.lua`` of this package, read once."""
    return resources.files(__package__).joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")


@functools.cache
def entity_script(name: str) -> str:
    """An entity script with the shared index functions (``entity_index.lua``) in front."""
    return lua_source("entity_index") + "\n" + lua_source(name)
