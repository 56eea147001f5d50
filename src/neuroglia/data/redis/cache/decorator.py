"""The ``@cache.cached(...)`` decorator: cache keys derived from a function's arguments.

::

    @cache.cached(expiration=timedelta(minutes=10), key="item:{item_id}", tags=["menu"])
    async def get_menu_item(item_id: str) -> MenuItem: ...

    await get_menu_item("margherita")                   # get-or-set under "item:margherita"
    await get_menu_item.invalidate_async("margherita")  # remove it

Keys:

* a **format string** over the parameters: ``"item:{item_id}"``, with
  attribute and index access (``"menu:{query.category}"``, ``"{ids[0]}"``).
  Its fields are checked against the signature when decorating, and every
  value they reach must be a plain value (str, int, float, bool, None, an
  enum, UUID, Decimal, date/time): a list, a dict or an arbitrary object is
  refused when called, with the field's name;
* a **callable** taking the function's arguments and returning the key;
* by default, the function's module and qualified name and *all* its
  arguments: plain values, tuples and frozensets of them, and dataclass or
  pydantic instances (by their fields). Mutable containers (list, dict, set)
  and objects without a stable value are refused.

A first parameter named ``self`` or ``cls`` is left out of the default key, so
a method's results are shared by all instances (use ``{self.tenant}`` in a
format key to separate them). Methods and neuroglia query handlers
(``QueryHandler.handle_async(self, query)``) work as functions do;
``handler.handle_async.invalidate_async(query)`` invalidates through an instance.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import decimal
import enum
import functools
import hashlib
import inspect
import types
import typing
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Concatenate, Final, Generic, ParamSpec, TypeVar, overload

from ._library import InvalidArgumentError
from .factory import FactoryContext
from .framework import OperationResultShape, operation_result_type
from .options import CacheOptions, check_tags
from .shape import ListShape, OptionalShape, PlainShape, TypedShape, ValueShape
from .templates import FieldTemplate

if TYPE_CHECKING:
    from .facade import RedisCache

__all__ = ["BoundCachedFunction", "CachedFunction", "KeySpec", "make_cached"]

P = ParamSpec("P")
P2 = ParamSpec("P2")
R = TypeVar("R")
S = TypeVar("S")

KeySpec = str | Callable[..., str]
"""A key: a format string over the parameters, or a callable taking the arguments."""

_SCALARS: Final = (str, int, float, uuid.UUID, decimal.Decimal, _dt.date, _dt.time, enum.Enum)
# Default keys longer than this are shortened to their start and a digest.
_MAX_DEFAULT_KEY: Final = 256


def _describe(value: Any) -> str:
    return type(value).__name__


def _check_part(value: Any, field: str, what: str) -> None:
    """A value a key field reaches must render the same in every process and every run."""
    if value is None or isinstance(value, _SCALARS):  # (bool is an int)
        return
    if isinstance(value, list | dict | set | bytearray):
        raise InvalidArgumentError(
            f"the field {{{field}}} of {what} is a {_describe(value)}: mutable and unhashable, it "
            "cannot be part of a key; name a plain attribute or element instead"
        )
    raise InvalidArgumentError(
        f"the field {{{field}}} of {what} is a {_describe(value)}, not a str, int, float, bool, enum, "
        f"UUID, Decimal or date: name one of its attributes (for example {{{field}.id}})"
    )


def _canonical(value: Any, where: str, function: str, depth: int = 0) -> str:
    """A text for ``value`` that is the same in every process (no ids, no hash())."""
    if depth > 8:
        raise InvalidArgumentError(f"argument {where} of {function} is nested too deeply for a cache key")
    if value is None or isinstance(value, bool | int | float | str | decimal.Decimal):
        return repr(value)
    if isinstance(value, enum.Enum):
        return f"{type(value).__qualname__}.{value.name}"
    if isinstance(value, uuid.UUID | _dt.date | _dt.time):
        return f"{type(value).__name__}({value.isoformat() if not isinstance(value, uuid.UUID) else value})"
    if isinstance(value, tuple):
        return "(" + ",".join(_canonical(v, where, function, depth + 1) for v in value) + ")"
    if isinstance(value, frozenset):
        return "{" + ",".join(sorted(_canonical(v, where, function, depth + 1) for v in value)) + "}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = ",".join(
            f"{f.name}={_canonical(getattr(value, f.name), f'{where}.{f.name}', function, depth + 1)}"
            for f in dataclasses.fields(value)
        )
        return f"{type(value).__qualname__}({fields})"
    model_fields = getattr(type(value), "model_fields", None)
    if isinstance(model_fields, Mapping) and callable(getattr(value, "model_dump", None)):  # pydantic v2
        fields = ",".join(
            f"{name}={_canonical(getattr(value, name), f'{where}.{name}', function, depth + 1)}"
            for name in model_fields
        )
        return f"{type(value).__qualname__}({fields})"
    if isinstance(value, list | dict | set | bytearray):
        raise InvalidArgumentError(
            f"argument {where} of {function} is a {_describe(value)}: mutable and unhashable, it cannot be part of "
            "a cache key; pass a tuple or frozenset, or give key='...{...}' naming what identifies it"
        )
    raise InvalidArgumentError(
        f"argument {where} of {function} is a {_describe(value)}, which has no stable cache key; give "
        "key='...{...}' naming the attributes that identify it, or key=<callable>"
    )


def _shape_of(annotation: Any) -> ValueShape[Any]:
    """The shape that rebuilds values annotated ``annotation``."""
    if annotation is None or annotation is Any or annotation is inspect.Signature.empty:
        return PlainShape()
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union or origin is types.UnionType:
        others = [a for a in args if a is not type(None)]
        if len(others) == 1:
            return _shape_of(others[0])
        return PlainShape()
    result_type = operation_result_type()
    if result_type is not None and (origin is result_type or annotation is result_type):
        return OperationResultShape(result_type, _shape_of(args[0]) if args else PlainShape())
    if origin is list and len(args) == 1:
        return ListShape(_shape_of(args[0]))
    if origin is not None or not isinstance(annotation, type):
        return PlainShape()  # dict[str, X], tuples, type variables...: returned as decoded
    return TypedShape(annotation)


def _type_shape(type_: Any) -> ValueShape[Any]:
    shape = _shape_of(type_)
    if isinstance(shape, PlainShape) and type_ is not None and type_ is not Any:
        raise InvalidArgumentError(f"type_={type_!r} is not a class, X | None, list[X] or OperationResult[X]")
    return shape


class CachedFunction(Generic[P, R]):
    """An async function whose results are cached; made by :meth:`RedisCache.cached`."""

    def __init__(
        self,
        cache: RedisCache,
        function: Callable[P, Awaitable[R]],
        options: CacheOptions,
        *,
        key: KeySpec | None,
        tags: Iterable[str],
        cache_none: bool,
        type_: Any,
    ) -> None:
        name = getattr(function, "__qualname__", repr(function))
        if not inspect.iscoroutinefunction(function):
            raise InvalidArgumentError(
                f"cached() decorates async functions; {name} is not one (write it with async def)"
            )
        if not isinstance(cache_none, bool):
            raise InvalidArgumentError(f"cache_none must be True or False, got {cache_none!r}")
        functools.update_wrapper(self, function)
        self.cache = cache
        self._function = function
        self._name = name
        self._options = options
        self._cache_none = cache_none
        self._signature = inspect.signature(function)
        parameters = list(self._signature.parameters.values())
        self._skip_first = bool(parameters) and parameters[0].name in ("self", "cls")
        names = {p.name for p in parameters}
        self._key_template: FieldTemplate | None = None
        if isinstance(key, str):
            if not key:
                raise InvalidArgumentError(f"key of {name} must be a non-empty format string")
            self._key_template = FieldTemplate(key, f"key {key!r} of {name}")
            self._check_roots(self._key_template.roots, names)
        elif key is not None and not callable(key):
            raise InvalidArgumentError(f"key of {name} must be a format string or a callable, got {key!r}")
        self._key = key
        tag_list = check_tags(list(tags), "tags")
        self._tag_templates: list[FieldTemplate] = []
        self._static_tags: list[str] = []
        for tag in tag_list:
            template = FieldTemplate(tag, f"tag {tag!r} of {name}")
            self._check_roots(template.roots, names)
            if template.roots:
                self._tag_templates.append(template)
            else:
                self._static_tags.append(tag)
        # A signature of plain parameters is bound here, in its order, without
        # inspect's Signature.bind (slow); any other goes through it.
        plain = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        self._simple = all(p.kind in plain for p in parameters)
        self._names = tuple(p.name for p in parameters)
        self._positional = sum(1 for p in parameters if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD)
        self._defaults = {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}
        if self._static_tags and not self._tag_templates:
            self._options = cache._options(options, {}, tags=self._static_tags)
        self._type = type_
        if type_ is not None:
            self._shape: ValueShape[Any] | None = OptionalShape(_type_shape(type_))
        else:
            self._shape = None  # from the return annotation, on first use (it may name a later class)
        self._prefix = f"{getattr(function, '__module__', '?')}.{name}"

    def _check_roots(self, roots: tuple[str, ...], names: set[str]) -> None:
        for root in roots:
            if root not in names:
                raise InvalidArgumentError(
                    f"the key field {{{root}}} is not a parameter of {self._name} "
                    f"(parameters: {', '.join(self._signature.parameters) or 'none'})"
                )

    def _value_shape(self) -> ValueShape[Any]:
        shape = self._shape
        if shape is None:
            try:
                annotation = typing.get_type_hints(self._function).get("return")
            except Exception:  # an annotation that cannot be resolved: values stay as decoded
                annotation = None
            shape = self._shape = OptionalShape(_shape_of(annotation))
        return shape

    # -- keys -----------------------------------------------------------------------

    def key_for(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """The cache key of a call with these arguments (without the cache's namespace)."""
        key = self._key
        if callable(key):
            built = key(*args, **kwargs)
            if not isinstance(built, str) or not built:
                raise InvalidArgumentError(f"the key callable of {self._name} returned {built!r}, not a non-empty str")
            return built
        arguments = self._bind(args, kwargs)
        if self._key_template is not None:
            return self._key_template.render(arguments, _check_part)
        return self._default_key(arguments)

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if self._simple and len(args) <= self._positional:
            arguments: dict[str, Any] = {}
            taken = 0
            defaults = self._defaults
            for index, name in enumerate(self._names):
                if index < len(args):
                    arguments[name] = args[index]
                elif name in kwargs:
                    arguments[name] = kwargs[name]
                    taken += 1
                elif name in defaults:
                    arguments[name] = defaults[name]
                else:
                    break  # a missing argument: Signature.bind says which
            else:
                if taken == len(kwargs):  # else an unknown or doubled keyword: Signature.bind says which
                    return arguments
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self._name}(): {exc}") from None
        bound.apply_defaults()
        return bound.arguments

    def _default_key(self, arguments: dict[str, Any]) -> str:
        parts: list[str] = []
        for index, (name, value) in enumerate(arguments.items()):
            if index == 0 and self._skip_first:
                continue
            kind = self._signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                parts.extend(f"{k}={_canonical(v, k, self._name)}" for k, v in sorted(value.items()))
            elif kind is inspect.Parameter.VAR_POSITIONAL:
                parts.extend(_canonical(v, f"*{name}", self._name) for v in value)
            else:
                parts.append(f"{name}={_canonical(value, name, self._name)}")
        text = f"{self._prefix}({','.join(parts)})"
        if len(text) > _MAX_DEFAULT_KEY:
            digest = hashlib.sha256(text.encode()).hexdigest()[:32]
            text = f"{text[: _MAX_DEFAULT_KEY - 40]}..#{digest}"
        return text

    def _options_for(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> CacheOptions:
        if not self._tag_templates:
            return self._options
        arguments = self._bind(args, kwargs)
        tags = [*self._static_tags, *(t.render(arguments, _check_part) for t in self._tag_templates)]
        return self.cache._options(self._options, {}, tags=tags)

    # -- calls ------------------------------------------------------------------------

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        key = self.key_for(*args, **kwargs)
        options = self._options_for(args, kwargs)
        shape = self._value_shape()
        function = self._function
        cache_none = self._cache_none

        async def factory(ctx: FactoryContext) -> R:
            value = await function(*args, **kwargs)
            if (value is None and not cache_none) or not shape.cacheable(value):
                ctx.do_not_cache = True
            return value

        return await self.cache._get_or_set(key, factory, options, shape, plain=True)  # type: ignore[no-any-return]

    async def invalidate_async(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Remove the cached result of a call with these arguments; returns whether it was cached."""
        return await self.cache.remove_async(self.key_for(*args, **kwargs))

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> CachedFunction[P, R]: ...

    @overload
    def __get__(
        self: CachedFunction[Concatenate[S, P2], R], instance: S, owner: type[Any] | None = None
    ) -> BoundCachedFunction[P2, R]: ...

    def __get__(self, instance: Any, owner: type[Any] | None = None) -> Any:
        if instance is None:
            return self
        return BoundCachedFunction(self, instance)

    def __repr__(self) -> str:
        return f"<cached {self._name} in {self.cache.namespace!r}>"


class BoundCachedFunction(Generic[P, R]):
    """A cached method bound to an instance (what ``handler.handle_async`` gives)."""

    __slots__ = ("__self__", "__wrapped__")

    def __init__(self, function: CachedFunction[Any, R], instance: Any) -> None:
        self.__wrapped__ = function
        self.__self__ = instance

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return await self.__wrapped__(self.__self__, *args, **kwargs)

    async def invalidate_async(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Remove the cached result of a call with these arguments."""
        return await self.__wrapped__.invalidate_async(self.__self__, *args, **kwargs)

    def key_for(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """The cache key of a call with these arguments."""
        return self.__wrapped__.key_for(self.__self__, *args, **kwargs)

    def __repr__(self) -> str:
        return f"<bound {self.__wrapped__!r} of {self.__self__!r}>"


def make_cached(
    cache: RedisCache,
    options: CacheOptions,
    *,
    key: KeySpec | None,
    tags: Iterable[str],
    cache_none: bool,
    type_: Any,
) -> Callable[[Callable[P, Awaitable[R]]], CachedFunction[P, R]]:
    """The decorator :meth:`RedisCache.cached` returns (arguments checked now, the function when applied)."""
    if (isinstance(key, str) and not key) or not (key is None or isinstance(key, str) or callable(key)):
        raise InvalidArgumentError(f"key must be a non-empty format string or a callable, got {key!r}")
    if type_ is not None:
        _type_shape(type_)
    check_tags(list(tags) if not isinstance(tags, str | bytes) else tags, "tags")

    def decorate(function: Callable[P, Awaitable[R]]) -> CachedFunction[P, R]:
        return CachedFunction(cache, function, options, key=key, tags=tags, cache_none=cache_none, type_=type_)

    return decorate
