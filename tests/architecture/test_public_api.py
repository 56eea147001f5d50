"""The public API keeps every name and every call shape of release 0.1.

``public_api_0.1.json`` was taken from the package before its layout by
concern: each public name of ``neuroglia.data.redis``, how it is called
(parameter names, kinds and defaults) and, for classes, the same for every
public method and property. The package may grow; nothing recorded there may
disappear or be called differently: every parameter recorded keeps its
name, kind and position; a new parameter is allowed when it has a default
and comes after them (a call written for 0.1 still means the same); a
default changes only where :data:`CHANGED_DEFAULTS` says so and why.
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import Any

import neuroglia.data.redis as package

SNAPSHOT = Path(__file__).with_name("public_api_0.1.json")

# (name, parameter) -> (the new default, why it changed)
CHANGED_DEFAULTS: dict[tuple[str, str], tuple[str, str]] = {
    ("RedisConfig", "operation_timeout"): ("2.0", "a bounded deadline suited to a service answering web requests"),
    ("ConnectionPoolConfig", "socket_connect_timeout"): ("2.0", "within the operation deadline"),
    ("ConnectionPoolConfig", "pool_timeout"): ("2.0", "within the operation deadline"),
}


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


def incompatible(owner: str, before: Any, now: Any) -> list[str]:
    """How a call written for ``before``'s shape would break, or mean something else, with ``now``'s."""
    if before == "property" or before is None or now in ("property", None, "missing"):
        return [] if before == now else [f"{before} is now {now}"]
    problems = []
    for index, (name, kind, default) in enumerate(before):
        if index >= len(now) or now[index][:2] != [name, kind]:
            problems.append(f"parameter {name} ({kind}) is no longer parameter {index}")
            continue
        new_default = now[index][2]
        if new_default != default and CHANGED_DEFAULTS.get((owner, name), (None,))[0] != new_default:
            problems.append(f"the default of {name} changed from {default} to {new_default}")
    for name, kind, default in now[len(before) :]:
        if default is None and kind not in ("VAR_POSITIONAL", "VAR_KEYWORD"):
            problems.append(f"new parameter {name} has no default")
    return problems


def test_every_public_name_is_called_as_in_0_1() -> None:
    before = json.loads(SNAPSHOT.read_text())
    changed = []
    for name, recorded in before.items():
        now = describe(getattr(package, name))
        changed += [f"{name}: {p}" for p in incompatible(name, recorded.get("call"), now.get("call"))]
        for member, shape in recorded.get("members", {}).items():
            current = now.get("members", {}).get(member, "missing")
            changed += [f"{name}.{member}: {p}" for p in incompatible(name, shape, current)]
    assert changed == []


def test_a_changed_or_missing_parameter_is_caught() -> None:
    before = [["key", "POSITIONAL_OR_KEYWORD", None], ["ttl", "KEYWORD_ONLY", "30"]]
    assert incompatible("X", before, [*before, ["new", "KEYWORD_ONLY", "1"]]) == []
    assert incompatible("X", before, [["name", "POSITIONAL_OR_KEYWORD", None], before[1]]) != []
    assert incompatible("X", before, [before[0], ["ttl", "KEYWORD_ONLY", "60"]]) != []
    assert incompatible("X", before, [*before, ["new", "POSITIONAL_OR_KEYWORD", None]]) != []


def test_the_snapshot_is_not_empty() -> None:
    before = json.loads(SNAPSHOT.read_text())
    assert len(before) >= 50
    assert len(before["RedisRepository"]["members"]) >= 90
