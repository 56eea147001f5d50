"""How a value is turned into what the serializer stores, and back.

JSON gives back plain data (dicts, lists): a :class:`ValueShape` rebuilds the
caller's type from it (``type_=MenuItem``: a dataclass or pydantic model,
through the library's ``from_plain``). On a miss the factory's own object is
returned when it already has the expected type; without a type the value
makes the serializer's round trip on a miss too, so a hit and a miss always
return the same shape.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from ._library import from_plain

__all__ = ["ListShape", "OptionalShape", "PlainShape", "TypedShape", "ValueShape", "shape_for"]

T = TypeVar("T")


class ValueShape(Generic[T]):
    """The identity shape: values are stored and returned as the serializer sees them."""

    __slots__ = ()

    def dump(self, value: Any) -> Any:
        """What to hand to the serializer for ``value``."""
        return value

    def load(self, plain: Any) -> T:
        """The caller's value from what the serializer decoded."""
        return plain  # type: ignore[no-any-return]

    def keeps(self, value: Any) -> bool:
        """Whether the factory's own ``value`` can be returned as it is (else it takes the round trip)."""
        return False

    def cacheable(self, value: Any) -> bool:
        """Whether ``value`` may be stored at all (the decorator skips the others)."""
        return True


class PlainShape(ValueShape[Any]):
    """No type given: hit and miss both return the serializer's decoding."""

    __slots__ = ()


class TypedShape(ValueShape[T]):
    """Values rebuilt as ``type_`` (dataclass, pydantic model, or any class ``from_plain`` knows)."""

    __slots__ = ("type_",)

    def __init__(self, type_: type[T]) -> None:
        self.type_ = type_

    def load(self, plain: Any) -> T:
        return from_plain(plain, self.type_)

    def keeps(self, value: Any) -> bool:
        return isinstance(value, self.type_)


_PLAIN = PlainShape()


def shape_for(type_: type[T] | None) -> ValueShape[Any]:
    """The shape of a call with ``type_`` (``None``: plain)."""
    return _PLAIN if type_ is None else TypedShape(type_)


class OptionalShape(ValueShape[Any]):
    """``inner``, or ``None``."""

    __slots__ = ("inner",)

    def __init__(self, inner: ValueShape[Any]) -> None:
        self.inner = inner

    def dump(self, value: Any) -> Any:
        return None if value is None else self.inner.dump(value)

    def load(self, plain: Any) -> Any:
        return None if plain is None else self.inner.load(plain)

    def keeps(self, value: Any) -> bool:
        return value is None or self.inner.keeps(value)

    def cacheable(self, value: Any) -> bool:
        return value is None or self.inner.cacheable(value)


class ListShape(ValueShape[Any]):
    """A list of ``item``."""

    __slots__ = ("item",)

    def __init__(self, item: ValueShape[Any]) -> None:
        self.item = item

    def dump(self, value: Any) -> Any:
        return [self.item.dump(v) for v in value] if isinstance(value, list) else value

    def load(self, plain: Any) -> Any:
        return [self.item.load(v) for v in plain] if isinstance(plain, list) else plain

    def keeps(self, value: Any) -> bool:
        return isinstance(value, list) and all(self.item.keeps(v) for v in value)
