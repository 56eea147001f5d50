"""Every file of the package that is not Python ships in the wheel: pyproject's package-data names it."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"


def test_every_data_file_is_declared_as_package_data() -> None:
    declared: dict[str, list[str]] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]
    undeclared = []
    for path in sorted((SRC / "neuroglia" / "data" / "redis").rglob("*")):
        if path.is_dir() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
            continue
        relative = path.relative_to(SRC)
        shipped = False
        for package, patterns in declared.items():
            folder = Path(*package.split("."))
            if folder in relative.parents:
                inside = relative.relative_to(folder).as_posix()
                shipped = shipped or any(fnmatch.fnmatch(inside, pattern) for pattern in patterns)
        if not shipped:
            undeclared.append(relative.as_posix())
    assert undeclared == []
