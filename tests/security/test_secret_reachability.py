"""Nothing of a secret is reachable from the error a malformed URL raises.

Not in its message, and not anywhere an error tracker or a debugger could
find it: the chain of causes and contexts, their arguments, and the local
variables of every frame in their tracebacks (with the objects they hold,
a few levels deep). The one thing allowed is the very URL object the caller
passed in, which the caller holds anyway: any *other* string holding a part
of the password (a slice, an unquoted copy, a parser's error message) is a
leak.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Iterator
from typing import Any

import pytest

from neuroglia.data.redis import ConfigurationError, RedisConfig

# Each password is made of pieces found nowhere else (scheme, host, messages).
PASSWORD = "Zq9Xv7Kw3Jm"


def fragments(secret: str, size: int = 4) -> set[str]:
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


MALFORMED = [
    # An unencoded '/' ends the netloc: the password's tail becomes the "port".
    f"redis://app:{PASSWORD[:5]}/{PASSWORD[5:]}@cache.internal:6379/0",
    f"redis://app:{PASSWORD}@cache.internal:port/0",
    f"redis://app:{PASSWORD}@cache.internal:99999/0",
    # An unencoded '?' makes the tail a query: an unknown parameter, or a bad db.
    f"redis://app:{PASSWORD[:4]}?{PASSWORD[4:]}@cache.internal/0",
    f"redis://app:{PASSWORD[:4]}?db={PASSWORD[4:]}@cache.internal/0",
    # An unencoded '#' and '[': a fragment, an invalid IPv6 literal.
    f"redis://app:{PASSWORD[:4]}#{PASSWORD[4:]}@cache.internal:x/0",
    f"rediss://app:{PASSWORD[:4]}[{PASSWORD[4:]}@cache.internal/0",
    f"redis://app:{PASSWORD}@cache.internal:6379/{PASSWORD[2:]}",
    f"unix://app:{PASSWORD}@/run/redis.sock?db={PASSWORD[3:]}",
    f"memory://app:{PASSWORD}@orders",
]


def shown(item: object) -> str:
    """``repr(item)``; an object whose repr fails (a half-built one) shows nothing."""
    try:
        return repr(item)
    except Exception:
        return ""


def reachable_strings(root: BaseException, allowed: object) -> Iterator[tuple[str, str]]:
    """Every string reachable from ``root`` (with where it was found), except the ``allowed`` object itself."""
    seen: set[int] = set()
    pending: list[tuple[Any, str, int]] = [(root, "error", 0)]
    while pending:
        item, where, depth = pending.pop()
        if item is allowed or id(item) in seen or depth > 6:
            continue
        seen.add(id(item))
        if isinstance(item, str):
            yield item, where
        elif isinstance(item, bytes | bytearray):
            yield bytes(item).decode(errors="replace"), where
        elif isinstance(item, BaseException):
            yield str(item), f"{where} (message)"
            yield shown(item), f"{where} (repr)"
            pending += [(arg, f"{where}.args", depth + 1) for arg in item.args]
            pending.append((item.__cause__, f"{where}.__cause__", depth + 1))
            pending.append((item.__context__, f"{where}.__context__", depth + 1))
            pending.append((item.__traceback__, f"{where}.__traceback__", depth + 1))
            pending += [(value, f"{where}.{name}", depth + 1) for name, value in vars(item).items()]
        elif isinstance(item, types.TracebackType):
            frame: types.FrameType | None = item.tb_frame
            if frame is not None and frame.f_code.co_filename != __file__:  # the test's own frames hold what it wrote
                for name, value in frame.f_locals.items():
                    pending.append((value, f"{where} frame {frame.f_code.co_name}() local {name!r}", depth + 1))
            pending.append((item.tb_next, where, depth))
        elif isinstance(item, dict):
            for key, value in item.items():
                pending += [(key, f"{where}[key]", depth + 1), (value, f"{where}[{key!r}]", depth + 1)]
        elif isinstance(item, list | tuple | set | frozenset):
            pending += [(value, f"{where}[]", depth + 1) for value in item]
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            yield shown(item), f"{where} (repr)"
            for field in dataclasses.fields(item):
                pending.append((getattr(item, field.name, None), f"{where}.{field.name}", depth + 1))
        elif item is not None and not isinstance(item, int | float | bool | type | types.FunctionType):
            yield shown(item), f"{where} (repr)"
            if hasattr(item, "__dict__"):
                pending += [(value, f"{where}.{name}", depth + 1) for name, value in vars(item).items()]


@pytest.mark.parametrize("url", MALFORMED, ids=range(len(MALFORMED)))
@pytest.mark.parametrize("how", ["url", "host"])
def test_no_part_of_the_password_is_reachable_from_the_error(url: str, how: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        RedisConfig(url=url) if how == "url" else RedisConfig(host=url)
    secret_parts = fragments(PASSWORD)
    leaks = [
        (where, text[:120])
        for text, where in reachable_strings(info.value, allowed=url)
        if any(part in text for part in secret_parts)
    ]
    assert leaks == [], f"{info.value!r} lets these be reached: {leaks}"
    assert "malformed" in str(info.value) or ":" in str(info.value)  # still an error that says what is wrong


def test_the_walk_finds_a_leak_when_there_is_one() -> None:
    """The checker is not blind: a plain chained error with a password fragment is caught."""
    try:
        try:
            int(PASSWORD[2:])
        except ValueError:
            raise ConfigurationError("url: malformed") from None
    except ConfigurationError as error:
        found = [where for text, where in reachable_strings(error, allowed=None) if PASSWORD[2:8] in text]
    assert any("__context__" in where for where in found)


@pytest.mark.parametrize("field", ["db", "port", "host", "username"])
def test_a_field_contradicting_the_url_leaves_no_part_of_its_password_reachable(field: str) -> None:
    url = f"redis://app:{PASSWORD}@cache.internal:6379/0"
    contradiction = {"db": 3, "port": 6380, "host": "other", "username": "someone"}[field]
    with pytest.raises(ConfigurationError, match=f"{field}: .* contradicts the URL") as info:
        RedisConfig(url=url, **{field: contradiction})
    secret_parts = fragments(PASSWORD)
    leaks = [
        (where, text[:120])
        for text, where in reachable_strings(info.value, allowed=url)
        if any(part in text for part in secret_parts)
    ]
    assert leaks == [], f"{info.value!r} lets these be reached: {leaks}"
