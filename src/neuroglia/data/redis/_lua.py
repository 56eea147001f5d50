"""The library's Lua scripts, one named file each under ``lua/``."""

from __future__ import annotations

import functools
from importlib import resources

__all__ = ["lua_source"]


@functools.cache
def lua_source(name: str) -> str:
    """The source of ``lua/<name>.lua``, read once from the installed package."""
    return resources.files(__package__).joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")
