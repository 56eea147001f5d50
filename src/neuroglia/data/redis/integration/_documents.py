"""Entities and aggregate states as plain documents, and back, by their annotations.

A *document* is what every serialization strategy can store: dicts with
``str`` keys, lists, ``str``, ``int``, ``float``, ``bool`` and ``None``
(``bytes`` too, for strategies that keep them). :meth:`DocumentCodec.encode`
turns an object graph into one; :meth:`DocumentCodec.decode` rebuilds the
object graph from the class's annotations::

    datetime, date, time     ISO 8601 text              datetime.fromisoformat ...
    timedelta                seconds (float)            timedelta(seconds=...)
    Decimal, UUID            text                       Decimal(...), UUID(...)
    Enum                     its value                  by value, else by name
    set, frozenset, tuple    list                       the annotated container
    dataclass                dict of its fields         built without __init__
    pydantic model           model_dump(mode="json")    model_validate
    other objects            dict of public attributes  built without __init__

Objects are rebuilt without calling ``__init__`` (constructors of aggregates
register events and draw new ids), as the framework's own JSON serializer
does, and attributes whose names start with ``_`` are not stored (the same
rule as the framework's). An attribute without an annotation comes back as
the plain value that was stored (a ``datetime`` as its text), so annotate the
state classes. Generic parameters (``id: TKey`` of ``AggregateState[str]``)
are resolved from the class's bases.

Converters are compiled once per annotation and cached, so that loading an
entity costs a dict lookup and a call per attribute.
"""

from __future__ import annotations

import collections.abc as abc
import dataclasses
import datetime as _dt
import decimal
import enum
import functools
import inspect
import types
import typing
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ..exceptions import SerializationError

__all__ = ["DocumentCodec", "typevar_bindings"]

Converter = Callable[[Any], Any]
_SCALARS: frozenset[type] = frozenset({str, int, float, bool, type(None)})
_SEQUENCE_ORIGINS: frozenset[Any] = frozenset({list, abc.Sequence, abc.MutableSequence, abc.Iterable, abc.Collection})
_SET_ORIGINS: frozenset[Any] = frozenset({set, abc.Set, abc.MutableSet})
_MAPPING_ORIGINS: frozenset[Any] = frozenset({dict, abc.Mapping, abc.MutableMapping})


class _DecodeError(Exception):
    """A value that cannot be rebuilt, with the path of attributes leading to it."""

    def __init__(self, path: list[str], cause: BaseException) -> None:
        super().__init__(str(cause))
        self.path = path
        self.cause = cause


def _identity(value: Any) -> Any:
    return value


def typevar_bindings(cls: type) -> dict[Any, Any]:
    """What each type variable of ``cls``'s generic bases stands for.

    ``class OrderState(AggregateState[str])`` binds ``TKey`` to ``str``; the
    most derived binding wins, and a variable bound to another variable is
    followed (``class Base(Identifiable[K])``, ``class Leaf(Base[int])``).
    """
    bindings: dict[Any, Any] = {}
    for klass in cls.__mro__:
        for base in klass.__dict__.get("__orig_bases__", ()):
            origin = typing.get_origin(base)
            if origin is None:
                continue
            parameters = getattr(origin, "__parameters__", ())
            for parameter, argument in zip(parameters, typing.get_args(base), strict=False):
                if isinstance(argument, TypeVar):
                    argument = bindings.get(argument, argument)
                bindings.setdefault(parameter, argument)
    return bindings


def _substitute(hint: Any, bindings: Mapping[Any, Any]) -> Any:
    """``hint`` with its type variables replaced by what they are bound to (``Any`` if unbound)."""
    if isinstance(hint, TypeVar):
        bound = bindings.get(hint, Any)
        return Any if isinstance(bound, TypeVar) else bound
    arguments = typing.get_args(hint)
    if not arguments:
        return hint
    replaced = tuple(_substitute(a, bindings) for a in arguments)
    if replaced == arguments:
        return hint
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        return typing.Union[replaced]  # noqa: UP007 - built from a tuple
    try:
        return origin[replaced] if origin is not None else hint
    except TypeError:
        return hint


def _class_hints(cls: type) -> dict[str, Any]:
    """The resolved annotations of ``cls`` and its bases, without ``ClassVar``s."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an unresolvable forward reference: keep what can be read
        hints = {}
        for klass in reversed(cls.__mro__):
            for name, hint in inspect.get_annotations(klass).items():
                hints[name] = Any if isinstance(hint, str) else hint
    bindings = typevar_bindings(cls)
    resolved: dict[str, Any] = {}
    for name, hint in hints.items():
        if typing.get_origin(hint) is typing.ClassVar or hint is typing.ClassVar:  # type: ignore[comparison-overlap]
            continue
        resolved[name] = _substitute(hint, bindings)
    return resolved


def _is_pydantic(cls: type) -> bool:
    return callable(getattr(cls, "model_validate", None)) and hasattr(cls, "model_fields")


def _is_optional(hint: Any) -> bool:
    origin = typing.get_origin(hint)
    return (origin is typing.Union or origin is types.UnionType) and type(None) in typing.get_args(hint)


class DocumentCodec:
    """Encodes objects into documents and rebuilds them from their annotations (see the module)."""

    def __init__(self) -> None:
        self._encoders: dict[type, Converter] = {}
        self._decoders: dict[Any, Converter] = {}

    # -- encoding ------------------------------------------------------------

    def encode(self, value: Any) -> Any:
        """The document of ``value``; :class:`SerializationError` names what cannot be stored."""
        try:
            return self._encode(value)
        except _DecodeError as exc:
            where = ".".join(exc.path)
            raise SerializationError(f"cannot store {type(value).__name__}: {where}: {exc.cause}") from exc.cause

    def _encode(self, value: Any) -> Any:
        cls = value.__class__
        if cls in _SCALARS:
            return value
        encoder = self._encoders.get(cls)
        if encoder is None:
            encoder = self._encoders[cls] = self._encoder_for(cls)
        return encoder(value)

    def _encoder_for(self, cls: type) -> Converter:
        encode = self._encode
        if issubclass(cls, enum.Enum):
            return lambda v: encode(v.value)
        if issubclass(cls, _dt.date | _dt.time):  # datetime is a date
            return lambda v: v.isoformat()
        if issubclass(cls, _dt.timedelta):
            return lambda v: v.total_seconds()
        if issubclass(cls, decimal.Decimal | uuid.UUID):
            return str
        if issubclass(cls, str | int | float):  # subclasses of the scalars (a NewType base, say)
            base = next(b for b in (bool, int, float, str) if issubclass(cls, b))
            return base
        if issubclass(cls, bytes | bytearray | memoryview):
            return bytes
        if issubclass(cls, list | tuple | set | frozenset):
            return lambda v: [encode(item) for item in v]
        if issubclass(cls, Mapping):
            return lambda v: {self._encode_key(k): encode(item) for k, item in v.items()}
        if _is_pydantic(cls):
            return lambda v: v.model_dump(mode="json")
        if dataclasses.is_dataclass(cls):
            names = [f.name for f in dataclasses.fields(cls)]
            return lambda v: self._encode_fields(v, names)
        return self._encode_object

    def _encode_fields(self, value: Any, names: list[str]) -> dict[str, Any]:
        document: dict[str, Any] = {}
        for name in names:
            try:
                document[name] = self._encode(getattr(value, name))
            except _DecodeError as exc:
                exc.path.insert(0, name)
                raise
            except (TypeError, ValueError, SerializationError) as exc:
                raise _DecodeError([name], exc) from exc
        return document

    def _encode_object(self, value: Any) -> dict[str, Any]:
        try:
            attributes = vars(value)
        except TypeError:  # __slots__ only
            attributes = {
                name: getattr(value, name)
                for klass in type(value).__mro__
                for name in klass.__dict__.get("__slots__", ())
                if hasattr(value, name)
            }
        document: dict[str, Any] = {}
        for name, item in attributes.items():
            if name[:1] == "_":
                continue
            try:
                document[name] = self._encode(item)
            except _DecodeError as exc:
                exc.path.insert(0, name)
                raise
            except (TypeError, ValueError, SerializationError) as exc:
                raise _DecodeError([name], exc) from exc
        return document

    def _encode_key(self, key: Any) -> str:
        if key.__class__ is str:
            return str(key)
        if isinstance(key, enum.Enum):
            return str(key.value)
        if isinstance(key, bool | int | float | decimal.Decimal | uuid.UUID | str):
            return str(key)
        if isinstance(key, _dt.date | _dt.time):
            return key.isoformat()
        raise TypeError(f"a dict key of type {type(key).__name__} cannot be stored")

    # -- decoding ------------------------------------------------------------

    def decode(self, document: Any, hint: Any) -> Any:
        """Rebuild an instance of ``hint`` from ``document``; :class:`SerializationError` names the attribute."""
        try:
            return self.converter(hint)(document)
        except _DecodeError as exc:
            where = ".".join(exc.path)
            raise SerializationError(
                f"cannot rebuild {getattr(hint, '__name__', hint)} from the stored document: {where}: {exc.cause}"
            ) from exc.cause
        except (TypeError, ValueError, KeyError, AttributeError, ArithmeticError) as exc:
            raise SerializationError(
                f"cannot rebuild {getattr(hint, '__name__', hint)} from the stored document: {exc}"
            ) from exc

    def converter(self, hint: Any) -> Converter:
        """The function that rebuilds a value annotated ``hint`` (compiled once)."""
        try:
            found = self._decoders.get(hint)
        except TypeError:  # an unhashable annotation (Annotated with a dict...)
            return self._converter_for(hint)
        if found is None:
            # Placeholder first: a class that refers to itself (a tree of nodes)
            # finds this forwarding function while its own converter is built.
            def forward(value: Any) -> Any:
                return self._decoders[hint](value)

            self._decoders[hint] = forward
            try:
                found = self._decoders[hint] = self._converter_for(hint)
            except BaseException:
                del self._decoders[hint]
                raise
        return found

    def _converter_for(self, hint: Any) -> Converter:
        if hint is Any or hint is object or hint is None or isinstance(hint, str | typing.ForwardRef | TypeVar):
            return _identity
        if hint is type(None):
            return _identity
        origin = typing.get_origin(hint)
        if origin is not None:
            return self._generic_converter(hint, origin, typing.get_args(hint))
        if not isinstance(hint, type):
            return _identity  # NewType, Literal members, and the like: keep the stored value
        if hint in (str, int, bool):
            return _identity
        if hint is float:
            return lambda v: float(v) if v.__class__ is int else v
        if issubclass(hint, enum.Enum):
            return self._enum_converter(hint)
        if issubclass(hint, _dt.datetime):
            return lambda v: v if isinstance(v, _dt.datetime) else _dt.datetime.fromisoformat(v)
        if issubclass(hint, _dt.date):
            return lambda v: v if isinstance(v, _dt.date) else _dt.date.fromisoformat(v)
        if issubclass(hint, _dt.time):
            return lambda v: v if isinstance(v, _dt.time) else _dt.time.fromisoformat(v)
        if issubclass(hint, _dt.timedelta):
            return lambda v: v if isinstance(v, _dt.timedelta) else _dt.timedelta(seconds=v)
        if issubclass(hint, decimal.Decimal):
            return lambda v: v if isinstance(v, decimal.Decimal) else decimal.Decimal(str(v))
        if issubclass(hint, uuid.UUID):
            return lambda v: v if isinstance(v, uuid.UUID) else uuid.UUID(str(v))
        if issubclass(hint, bytes):
            return lambda v: v.encode() if isinstance(v, str) else bytes(v)
        if issubclass(hint, str | int | float):
            return hint  # a subclass of a scalar: its constructor takes the scalar
        if hint in (list, tuple, set, frozenset, dict):
            return lambda v: v if isinstance(v, hint) else hint(v)
        if _is_pydantic(hint):
            validate = hint.model_validate  # type: ignore[attr-defined]
            return lambda v: v if isinstance(v, hint) else validate(v)
        return self._object_converter(hint)

    def _generic_converter(self, hint: Any, origin: Any, arguments: tuple[Any, ...]) -> Converter:
        if origin is typing.Union or origin is types.UnionType:
            return self._union_converter(arguments)
        if origin is typing.Annotated:
            return self.converter(arguments[0])
        if origin is typing.Literal or origin is typing.ClassVar:
            return _identity
        if origin is tuple:
            if len(arguments) == 2 and arguments[1] is Ellipsis:
                item = self.converter(arguments[0])
                return lambda v: tuple(item(x) for x in v)
            if arguments == ((),):
                return lambda v: ()
            items = [self.converter(a) for a in arguments]
            return lambda v: tuple(c(x) for c, x in zip(items, v, strict=True))
        if origin in _SEQUENCE_ORIGINS:
            item = self.converter(arguments[0]) if arguments else _identity
            return lambda v: [item(x) for x in v]
        if origin in _SET_ORIGINS or origin is frozenset:
            item = self.converter(arguments[0]) if arguments else _identity
            build = frozenset if origin is frozenset else set
            return lambda v: build(item(x) for x in v)
        if origin in _MAPPING_ORIGINS:
            key = self._key_converter(arguments[0]) if arguments else _identity
            value = self.converter(arguments[1]) if len(arguments) > 1 else _identity
            return lambda v: {key(k): value(x) for k, x in v.items()}
        if isinstance(origin, type):
            # A generic class of the application (``Money[Currency]``): rebuild
            # the class, its own annotations resolved through its bindings.
            return self._object_converter(origin, typevar_bindings_of=hint)
        return _identity

    def _union_converter(self, arguments: tuple[Any, ...]) -> Converter:
        options = [a for a in arguments if a is not type(None)]
        if len(options) == 1:
            only = self.converter(options[0])
            return lambda v: None if v is None else only(v)
        converters = [(a, self.converter(a)) for a in options]
        scalars = {a for a in options if a in _SCALARS}

        def convert(value: Any) -> Any:
            if value is None or value.__class__ in scalars:
                return value
            errors: list[str] = []
            for option, converter in converters:
                try:
                    return converter(value)
                except Exception as exc:  # try the next member of the union
                    errors.append(f"{getattr(option, '__name__', option)}: {exc}")
            raise ValueError(f"{value!r} matches no member of the union ({'; '.join(errors)})")

        return convert

    def _key_converter(self, hint: Any) -> Converter:
        if hint is str or hint is Any:
            return _identity
        if hint is int:
            return int
        if hint is float:
            return float
        if hint is bool:
            return lambda k: k in (True, "True", "true", "1")
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            by_value = self._enum_converter(hint)

            def enum_key(key: Any) -> Any:
                for member in hint:
                    if str(member.value) == key:
                        return member
                return by_value(key)

            return enum_key
        return self.converter(hint)

    @staticmethod
    def _enum_converter(hint: type[enum.Enum]) -> Converter:
        def convert(value: Any) -> Any:
            if isinstance(value, hint):
                return value
            try:
                return hint(value)
            except ValueError:
                try:
                    return hint[value]  # stored by name (the framework's JSON serializer does that)
                except (KeyError, TypeError):
                    raise ValueError(f"{value!r} is not a value or a name of {hint.__name__}") from None

        return convert

    def _object_converter(self, cls: type, *, typevar_bindings_of: Any = None) -> Converter:
        hints = _class_hints(cls)
        if typevar_bindings_of is not None:
            parameters = getattr(cls, "__parameters__", ())
            bindings = dict(zip(parameters, typing.get_args(typevar_bindings_of), strict=False))
            hints = {name: _substitute(hint, bindings) for name, hint in hints.items()}
        converters = {name: self.converter(hint) for name, hint in hints.items()}
        defaults: dict[str, Callable[[], Any]] = {}
        if dataclasses.is_dataclass(cls):
            for field in dataclasses.fields(cls):
                if field.default is not dataclasses.MISSING:
                    defaults[field.name] = functools.partial(_identity, field.default)
                elif field.default_factory is not dataclasses.MISSING:
                    defaults[field.name] = field.default_factory
        # Optional attributes absent from an older document read as None
        # (unless the class gives a default), as the framework's serializer does.
        for name, hint in hints.items():
            if name not in defaults and _is_optional(hint) and not hasattr(cls, name):
                defaults[name] = lambda: None
        frozen = dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
        # Instances have a __dict__ unless every class of the hierarchy declares __slots__.
        has_dict = any("__slots__" not in klass.__dict__ for klass in cls.__mro__[:-1])
        name_of = cls.__name__

        def convert(value: Any) -> Any:
            if isinstance(value, cls):
                return value
            if not isinstance(value, Mapping):
                raise TypeError(f"expected a mapping of attributes for {name_of}, got {type(value).__name__}")
            attributes: dict[str, Any] = {}
            for name, item in value.items():
                converter = converters.get(name)
                if converter is None:
                    attributes[name] = item
                    continue
                try:
                    attributes[name] = converter(item)
                except _DecodeError as exc:
                    exc.path.insert(0, name)
                    raise
                except Exception as exc:
                    raise _DecodeError([name], exc) from exc
            for name, default in defaults.items():
                if name not in attributes:
                    attributes[name] = default()
            instance: Any = object.__new__(cls)
            if has_dict and not frozen:
                instance.__dict__.update(attributes)
            else:
                for name, item in attributes.items():
                    object.__setattr__(instance, name, item)
            return instance

        return convert
