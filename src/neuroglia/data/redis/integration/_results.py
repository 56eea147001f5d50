"""Query results as cached documents, and back, by the query's declared result type.

A query of the framework declares what it returns: ``class GetMenuQuery(Query[OperationResult[MenuDto]])``.
:class:`ResultCodec` stores a result as a plain document (what every
serialization strategy can hold, see :mod:`._documents`) and rebuilds it on a
hit as that type, nested value objects, dates, decimals and enums included.
An ``OperationResult`` keeps its status fields (``title``, ``status``,
``detail``, ``type``, ``instance``) beside its ``data``, which is rebuilt as
the ``T`` of ``OperationResult[T]``. Only a successful one (a 2xx status) is
cacheable.
"""

from __future__ import annotations

import typing
from typing import Any, Final, TypeVar

from ._documents import DocumentCodec
from ._framework import OperationResult, Query

__all__ = ["ResultCodec", "declared_result"]

_MARK: Final = "$operation_result"
_FIELDS: Final = ("title", "status", "detail", "type", "instance")


def declared_result(query_type: type) -> Any:
    """The ``TResult`` of ``Query[TResult]`` among the bases of ``query_type``; ``None`` when it names none."""
    for klass in query_type.__mro__:
        for base in klass.__dict__.get("__orig_bases__", ()):
            origin = typing.get_origin(base)
            if isinstance(origin, type) and issubclass(origin, Query):
                arguments = typing.get_args(base)
                if arguments and not isinstance(arguments[0], TypeVar):
                    return arguments[0]
    return None


def is_failure(result: Any) -> bool:
    """Whether ``result`` is an ``OperationResult`` that does not report a success (a status outside 2xx)."""
    if not isinstance(result, OperationResult):
        return False
    status = getattr(result, "status", None)
    return not (isinstance(status, int) and 200 <= status < 300)


class ResultCodec:
    """Stores the results of one query type as documents and rebuilds them as its declared type."""

    __slots__ = ("_codec", "_data_hint", "_hint")

    def __init__(self, hint: Any, codec: DocumentCodec) -> None:
        self._codec = codec
        # What a document without the OperationResult mark is rebuilt as, and
        # what the data of one with the mark is rebuilt as (Any: as decoded).
        self._hint: Any = Any if hint is None else hint
        self._data_hint: Any = Any
        origin = typing.get_origin(hint) or hint
        if isinstance(origin, type) and issubclass(origin, OperationResult):
            arguments = typing.get_args(hint)
            self._data_hint = arguments[0] if arguments else Any
            self._hint = Any  # an OperationResult was declared: anything else returned stays as decoded

    def dump(self, result: Any) -> Any:
        """The document of ``result``; :class:`~neuroglia.data.redis.SerializationError` if it cannot be stored."""
        codec = self._codec
        if isinstance(result, OperationResult):
            fields = {name: codec.encode(getattr(result, name, None)) for name in _FIELDS}
            fields["data"] = codec.encode(getattr(result, "data", None))
            return {_MARK: fields}
        return codec.encode(result)

    def load(self, document: Any) -> Any:
        """The result ``document`` was dumped from, rebuilt as the declared type."""
        if isinstance(document, dict) and len(document) == 1 and _MARK in document:
            fields = document[_MARK]
            result: Any = OperationResult(
                fields["title"], fields["status"], fields.get("detail"), fields.get("type"), fields.get("instance")
            )
            data = fields.get("data")
            result.data = None if data is None else self._codec.decode(data, self._data_hint)
            return result
        return self._codec.decode(document, self._hint)
