"""Small validation helpers shared by the settings classes."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, Final

from ..exceptions import ConfigurationError

__all__ = ["REDACTED", "fail", "field_default", "known_fields", "parse_bool", "positive"]

REDACTED: Final = "***"


def fail(field_name: str, problem: str) -> ConfigurationError:
    """A :class:`ConfigurationError` that names the field."""
    return ConfigurationError(f"{field_name}: {problem}")


def positive(name: str, value: float | None, *, allow_zero: bool = False) -> None:
    """Refuse a non-number, a negative number and (unless allowed) zero; ``None`` passes."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise fail(name, f"expected a number, got {type(value).__name__}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise fail(name, f"must be {bound}, got {value!r}")


def parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def field_default(cls: type[Any], name: str) -> Any:
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            return f.default
    raise KeyError(name)


def known_fields(cls: type[Any], values: Mapping[str, Any], where: str) -> dict[str, Any]:
    allowed = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise fail(where, f"unknown keys {unknown}; allowed: {allowed}")
    return dict(values)
