"""Commands as values, and the parsers of raw replies.

A repository method that maps to one Redis command is written once, as a
*builder* that returns a :class:`Command` (the arguments to send and the
function that turns the raw reply into the method's result). The
:func:`command` decorator turns the builder into the public ``async``
method, which runs the command through the repository's one execute path;
a pipeline queues the same builders' commands instead. So validation, key
prefixing and reply parsing exist once for both.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar

if TYPE_CHECKING:
    from ._repository import RedisRepository

__all__ = ["Command", "command", "decode_text", "parse_info"]

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R", bound="RedisRepository")


class Command(Generic[T]):
    """One command: its arguments, how to parse the reply, and its traits.

    ``args`` empty means "nothing to send": the result is ``parse(None)``
    (for example ``delete_async()`` of no keys). ``block`` is the server-side
    timeout of a blocking command. ``idempotent`` tells the retry layer that
    sending the command twice has the same effect as once. ``read`` marks a
    cache read: its replies feed the stale fallback and the hit/miss counts.
    ``batch`` holds the commands of a pipeline sent as one unit (``args`` then
    only names it, ``MULTI`` or ``PIPELINE``).
    """

    __slots__ = ("args", "batch", "block", "idempotent", "parse", "read")

    def __init__(
        self,
        args: tuple[Any, ...],
        parse: Callable[[Any], T],
        *,
        idempotent: bool = True,
        block: float | None = None,
        read: bool = False,
        batch: tuple[tuple[Any, ...], ...] | None = None,
    ) -> None:
        self.args = args
        self.parse = parse
        self.idempotent = idempotent
        self.block = block
        self.read = read
        self.batch = batch

    @property
    def name(self) -> str:
        """The command's name, upper case (``""`` for the no-op command)."""
        return str(self.args[0]).upper() if self.args else ""

    def __repr__(self) -> str:
        return f"Command({self.name})"


def command(
    build: Callable[Concatenate[R, P], Command[T]],
) -> Callable[Concatenate[R, P], Coroutine[Any, Any, T]]:
    """Turn a command builder into the repository's public async method."""

    @functools.wraps(build)
    async def run(self: R, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._execute(build(self, *args, **kwargs))

    run.build = build  # type: ignore[attr-defined]  # found by Pipeline.__getattr__
    return run  # type: ignore[return-value]  # functools' _Wrapped hides the signature


def decode_text(value: Any) -> Any:
    """UTF-8 bytes become ``str``; bytes that are not UTF-8 stay ``bytes``.

    Containers are decoded element by element. This is the default reply
    policy (``decode_responses=True``): text reads as text, while msgpack,
    pickle or compressed values come back intact instead of mangled.
    """
    cls = value.__class__
    if cls is bytes:
        try:
            return value.decode()
        except UnicodeDecodeError:
            return value
    if cls is list:
        return [decode_text(v) for v in value]
    return value


def keep_bytes(value: Any) -> Any:
    """The ``decode_responses=False`` policy: replies stay as sent."""
    return value


def parse_info(raw: Any) -> dict[str, Any]:
    """Parse an ``INFO`` reply into a flat dict with numbers converted.

    ``db0:keys=1,expires=0`` style lines become nested dicts.
    """
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    info: dict[str, Any] = {}
    for line in text.splitlines():
        if not line or line.startswith("#") or ":" not in line:
            continue
        key, _, value = line.partition(":")
        if ("=" in value and "," in value) or (key.startswith("db") and "=" in value):
            info[key] = {k: _number(v) for k, _, v in (p.partition("=") for p in value.split(","))}
        else:
            info[key] = _number(value)
    return info


def _number(value: str) -> Any:
    for convert in (int, float):
        try:
            return convert(value)
        except ValueError:
            pass
    return value
