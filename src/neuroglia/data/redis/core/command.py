"""Commands as values, and command builders as methods.

A repository method that maps to one Redis command is written once, as a
*builder* that returns a :class:`Command` (the arguments to send and the
function that turns the raw reply into the method's result). Decorated with
:func:`command`, the builder becomes a method that runs the command through
the executor when called on a repository, and queues it when called on a
pipeline (a :class:`CommandQueue`). So validation, key prefixing and reply
parsing exist once for both, and a pipeline offers exactly the repository's
command methods, checked by the type checker.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar, Concatenate, Generic, Literal, ParamSpec, Self, TypeVar, overload

__all__ = ["Command", "CommandFamily", "CommandMethod", "CommandQueue", "command"]

T = TypeVar("T")
P = ParamSpec("P")
Q = TypeVar("Q", bound="CommandQueue")


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


class CommandQueue:
    """A class whose command methods queue their command instead of running it (pipelines)."""

    def _queue(self, cmd: Command[Any]) -> None:
        raise NotImplementedError


class CommandMethod(Generic[P, T]):
    """A command builder used as a method; see the module docstring.

    On a repository the method is ``async`` and returns the parsed reply; on
    a :class:`CommandQueue` it queues the command and returns the queue, so
    calls chain. ``build`` is the builder itself, for code that needs the
    command value (``StringCommands.set_async.build(self, ...)``).
    """

    def __init__(self, build: Callable[Concatenate[Any, P], Command[T]]) -> None:
        self.build = build
        self.__doc__ = build.__doc__
        self.__name__ = build.__name__
        self.__qualname__ = build.__qualname__
        self.__wrapped__ = build

    @overload
    def __get__(self, obj: None, owner: type[Any] | None = None) -> Self: ...
    @overload
    def __get__(self, obj: Q, owner: type[Any] | None = None) -> Callable[P, Q]: ...
    @overload
    def __get__(self, obj: object, owner: type[Any] | None = None) -> Callable[P, Coroutine[Any, Any, T]]: ...
    def __get__(self, obj: Any, owner: type[Any] | None = None) -> Any:
        # Concrete classes get plain functions installed by CommandFamily
        # (no descriptor call on the hot path); this serves the rest.
        if obj is None:
            return self
        return self.as_function(queue=isinstance(obj, CommandQueue)).__get__(obj, owner)

    def as_function(self, *, queue: bool) -> Callable[..., Any]:
        """The plain function that runs (or, with ``queue``, queues) this command."""
        build = self.build
        if queue:

            def queue_command(owner: Any, *args: Any, **kwargs: Any) -> Any:
                owner._queue(build(owner, *args, **kwargs))
                return owner

            function: Callable[..., Any] = queue_command
        else:

            async def run_command(owner: Any, *args: Any, **kwargs: Any) -> Any:
                return await owner._run(build(owner, *args, **kwargs))

            function = run_command
        functools.update_wrapper(function, build)
        function.build = build  # type: ignore[attr-defined]
        return function


def command(build: Callable[Concatenate[Any, P], Command[T]]) -> CommandMethod[P, T]:
    """Turn a command builder into a command method (see :class:`CommandMethod`)."""
    return CommandMethod(build)


class CommandFamily:
    """Base of the command families and of the classes that combine them.

    A family (strings, hashes...) is a mixin of command methods; it is
    abstract (``_command_mode`` is ``None``). A concrete class sets
    ``_command_mode`` to ``"run"`` (the repository: ``self._run(cmd)``
    executes) or ``"queue"`` (a pipeline: ``self._queue(cmd)``), and gets a
    plain function per command method at class creation, so calling one
    costs what calling an ordinary method costs.
    """

    _command_mode: ClassVar[Literal["run", "queue"] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        mode = cls._command_mode
        if mode is None:
            return
        # What the class resolves each name to: an override in a subclass
        # wins over a family's command, and inherited functions stay.
        methods = {name: inspect.getattr_static(cls, name) for name in dir(cls)}
        for name, method in methods.items():
            if isinstance(method, CommandMethod):
                setattr(cls, name, method.as_function(queue=mode == "queue"))
