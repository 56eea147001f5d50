"""Typed reads: decoded data rebuilt as the type the caller asked for, nested types included.

``get_object_async(key, Order)`` and :class:`RedisHashRepository` decode
the stored bytes into plain data (dicts, lists, text, numbers) and then
rebuild ``Order`` from it. That second step is pydantic's ``TypeAdapter``
(the ``typed`` extra; the Neuroglia framework depends on pydantic anyway):
it validates and converts every nested field by its annotation, so a
dataclass or a pydantic model holding nested dataclasses, ``datetime``,
``set``, ``tuple``, ``Decimal``, ``UUID`` and enums reads back equal to what
was written. Adapters are built once per type and cached.

Without pydantic, a dataclass whose fields are all of JSON's own types
(``str``, ``int``, ``float``, ``bool``, ``None``, ``list``, ``dict`` and
``Optional`` of them) is still built, as it comes back exact; any other
annotation (a nested dataclass, a ``datetime``...) raises
:class:`~neuroglia.data.redis.ConfigurationError` naming the field and the
extra to install, rather than returning a half-typed object.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any, Final, TypeVar, cast

from ..exceptions import ConfigurationError, SerializationError

__all__ = ["from_plain", "typed_codec_available"]

T = TypeVar("T")

_NO_ADAPTER: Final = object()  # a type pydantic cannot describe: built the 0.1 way
_JSON_TYPES: Final[frozenset[Any]] = frozenset({str, int, float, bool, type(None), Any, list, dict, object})


def typed_codec_available() -> bool:
    """Whether pydantic (the ``typed`` extra) is installed."""
    return _pydantic() is not None


@functools.cache
def _pydantic() -> Any:
    try:
        import pydantic
    except ImportError:
        return None
    return pydantic


@functools.lru_cache(maxsize=512)
def _adapter(type_: Any) -> Any:
    pydantic = _pydantic()
    if pydantic is None:
        return None
    try:
        return pydantic.TypeAdapter(type_)
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError, TypeError):
        return _NO_ADAPTER


def from_plain(data: Any, type_: type[T] | None) -> T:
    """Rebuild an object of ``type_`` from decoded data (``None``: return it as is).

    Nested fields are converted by their annotations (see the module
    docstring). Data that does not fit ``type_`` raises
    :class:`~neuroglia.data.redis.SerializationError`.
    """
    if type_ is None:
        return cast(T, data)
    if isinstance(type_, type) and isinstance(data, type_):
        return data  # already what was asked (a str, a dict, a pickled object)
    name = getattr(type_, "__name__", repr(type_))
    if type_ is str and isinstance(data, bytes):
        # str(b"x") would give "b'x'"; the raw strategy hands back UTF-8 bytes.
        try:
            return cast(T, data.decode())
        except UnicodeDecodeError as exc:
            raise SerializationError(f"cannot build str from the stored value: {exc}") from None
    adapter = _adapter(cast(Any, type_))
    if adapter is None:
        return cast(T, _without_pydantic(data, type_, name))
    if adapter is _NO_ADAPTER:
        return cast(T, _as_in_0_1(data, type_, name))
    pydantic = _pydantic()
    try:
        return cast(T, adapter.validate_python(data))
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(value)'}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)[:5]
        )
        raise SerializationError(f"cannot build {name} from the stored value: {problems}") from None


def _as_in_0_1(data: Any, type_: Any, name: str) -> Any:
    """A class pydantic cannot describe: ``type_(**mapping)`` or ``type_(data)``."""
    build: Any = type_
    try:
        if dataclasses.is_dataclass(type_) and isinstance(data, dict):
            return build(**data)
        return build(data)
    except (TypeError, ValueError) as exc:
        raise SerializationError(f"cannot build {name} from the stored value: {exc}") from exc


def _without_pydantic(data: Any, type_: Any, name: str) -> Any:
    if dataclasses.is_dataclass(type_) and isinstance(type_, type):
        try:
            hints = typing.get_type_hints(type_)
        except Exception:  # an annotation that does not resolve: nothing to promise
            hints = {}
        for field in dataclasses.fields(type_):
            annotation = hints.get(field.name, Any)
            if not _json_annotation(annotation):
                raise ConfigurationError(
                    f"reading {name} needs its field {field.name!r} ({annotation!r}) rebuilt by type: "
                    "pip install 'neuroglia-redis[typed]' (pydantic)"
                )
    elif not (isinstance(type_, type) and type_ in _JSON_TYPES):
        raise ConfigurationError(f"reading {name} by type needs pydantic: pip install 'neuroglia-redis[typed]'")
    return _as_in_0_1(data, type_, name)


def _json_annotation(annotation: Any) -> bool:
    """Whether values of ``annotation`` come back from JSON exactly as they were (no conversion needed)."""
    if annotation in _JSON_TYPES:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, dict):
        return all(_json_annotation(arg) for arg in typing.get_args(annotation))
    return False
