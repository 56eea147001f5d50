"""Run a script in a fresh interpreter where the Neuroglia framework (and other extras) are not installed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path

import neuroglia.data.redis as package

__all__ = ["run_without_framework"]

_PREAMBLE = """
import importlib.abc, sys, types

class _NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        framework = name.split(".")[0] == "neuroglia" and not name.startswith("neuroglia.data.redis")
        if framework and name not in ("neuroglia", "neuroglia.data"):
            raise ImportError(f"No module named {{name!r}} ({{name}} is not installed)")
        return None

sys.meta_path.insert(0, _NotInstalled())
for _hidden in {hidden!r}:
    sys.modules[_hidden] = None  # what an absent module looks like to import and find_spec
# What an install without the framework looks like: neuroglia and neuroglia.data
# are namespace packages holding only this library.
for _name, _path in (("neuroglia", {root!r}), ("neuroglia.data", {data!r})):
    _module = types.ModuleType(_name)
    _module.__path__ = [_path]
    sys.modules[_name] = _module
"""


def run_without_framework(
    script: str, *, hide: Iterable[str] = (), timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (dedented) in a new interpreter without ``neuroglia-python`` nor the ``hide`` modules."""
    package_dir = Path(package.__file__).parent
    preamble = _PREAMBLE.format(
        hidden=tuple(hide), root=str(package_dir.parent.parent), data=str(package_dir.parent)
    )
    source = preamble + textwrap.dedent(script)
    return subprocess.run(
        [sys.executable, "-c", source], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
