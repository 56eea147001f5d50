"""The public API keeps every name and every call shape of release 0.1.

``public_api_0.1.json`` was taken from the package before its layout by
concern: each public name of ``neuroglia.data.redis``, how it is called
(parameter names, kinds and defaults) and, for classes, the same for every
public method and property. The package may grow; nothing recorded there may
disappear or be called differently.
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import Any

import neuroglia.data.redis as package

SNAPSHOT = Path(__file__).with_name("public_api_0.1.json")


def call_shape(obj: Any) -> list[list[Any]] | None:
    """Parameter names, kinds and defaults (addresses and module paths of defaults left out)."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    shape = []
    for parameter in signature.parameters.values():
        default = None
        if parameter.default is not inspect.Parameter.empty:
            default = re.sub(r" at 0x[0-9a-f]+", "", repr(parameter.default))
            default = re.sub(r"<neuroglia\.data\.redis\.[\w.]*\.(\w+) object>", r"<\1 object>", default)
        shape.append([parameter.name, parameter.kind.name, default])
    return shape


def describe(obj: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if inspect.isclass(obj):
        entry["call"] = call_shape(obj)
        members: dict[str, Any] = {}
        for attr in sorted(dir(obj)):
            if attr.startswith("_"):
                continue
            value = inspect.getattr_static(obj, attr)
            if isinstance(value, property):
                members[attr] = "property"
            elif isinstance(value, staticmethod | classmethod) or callable(value):
                members[attr] = call_shape(getattr(obj, attr))
        entry["members"] = members
    elif callable(obj):
        entry["call"] = call_shape(obj)
    return entry


def test_every_public_name_of_0_1_is_still_exported() -> None:
    before = json.loads(SNAPSHOT.read_text())
    assert sorted(set(before) - set(package.__all__)) == []


def still_accepts(recorded: Any, current: Any) -> bool:
    """Whether every call written for ``recorded`` still works: the same parameters, then only optional keywords.

    A parameter added at the end as keyword-only with a default (a new
    setting) breaks no caller; anything else (a rename, a removal, a new
    required or positional parameter, another default) does.
    """
    if recorded == current or not isinstance(recorded, list) or not isinstance(current, list):
        return bool(recorded == current)
    if current[: len(recorded)] != recorded:
        return False
    return all(kind == "KEYWORD_ONLY" and default is not None for _, kind, default in current[len(recorded) :])


def test_every_public_name_is_called_as_in_0_1() -> None:
    before = json.loads(SNAPSHOT.read_text())
    changed = []
    for name, recorded in before.items():
        now = describe(getattr(package, name))
        if not still_accepts(recorded.get("call"), now.get("call")):
            changed.append(f"{name}{recorded.get('call')} is now {name}{now.get('call')}")
        for member, shape in recorded.get("members", {}).items():
            current = now.get("members", {}).get(member, "missing")
            if not still_accepts(shape, current):
                changed.append(f"{name}.{member}: {shape} is now {current}")
    assert changed == []


def test_growth_is_only_optional_keywords() -> None:
    shape = [["a", "POSITIONAL_OR_KEYWORD", None], ["b", "KEYWORD_ONLY", "1"]]
    assert still_accepts(shape, shape)
    assert still_accepts(shape, [*shape, ["c", "KEYWORD_ONLY", "None"]])
    assert not still_accepts(shape, [*shape, ["c", "KEYWORD_ONLY", None]])  # required
    assert not still_accepts(shape, [*shape, ["c", "POSITIONAL_OR_KEYWORD", "2"]])
    assert not still_accepts(shape, [shape[0], ["b", "KEYWORD_ONLY", "2"]])  # another default
    assert not still_accepts(shape, shape[:1])
    assert not still_accepts(shape, "missing")


def test_the_snapshot_is_not_empty() -> None:
    before = json.loads(SNAPSHOT.read_text())
    assert len(before) >= 50
    assert len(before["RedisRepository"]["members"]) >= 90
