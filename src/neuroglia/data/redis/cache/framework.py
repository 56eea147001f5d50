"""The Neuroglia framework's ``OperationResult``, as a cached value (optional).

Query handlers of ``neuroglia.mediation`` usually return
``OperationResult[T]``. The decorator caches only successful results (status
2xx), stores the status fields with the data, and rebuilds an
``OperationResult`` on a hit, its ``data`` rebuilt as ``T``. Without the
framework installed nothing here is used.
"""

from __future__ import annotations

from typing import Any

from .shape import ValueShape

__all__ = ["OperationResultShape", "operation_result_type"]

_MARK = "$operation_result"


def operation_result_type() -> type[Any] | None:
    """The framework's ``OperationResult`` class, or ``None`` when the framework is not installed."""
    try:
        from neuroglia.core import OperationResult
    except ImportError:
        return None
    return OperationResult


class OperationResultShape(ValueShape[Any]):
    """An ``OperationResult`` whose ``data`` has the shape ``data``."""

    __slots__ = ("_data", "_type")

    def __init__(self, result_type: type[Any], data: ValueShape[Any]) -> None:
        self._type = result_type
        self._data = data

    def cacheable(self, value: Any) -> bool:
        """Only successful results are cached: an error is answered again next time."""
        if not isinstance(value, self._type):
            return True
        status = getattr(value, "status", None)
        return isinstance(status, int) and 200 <= status < 300

    def dump(self, value: Any) -> Any:
        if not isinstance(value, self._type):
            return value
        return {
            _MARK: {
                "title": value.title,
                "status": value.status,
                "detail": value.detail,
                "type": value.type,
                "instance": value.instance,
                "data": self._data.dump(getattr(value, "data", None)),
            }
        }

    def load(self, plain: Any) -> Any:
        if not (isinstance(plain, dict) and len(plain) == 1 and _MARK in plain):
            return plain
        fields = plain[_MARK]
        result = self._type(
            fields["title"], fields["status"], fields.get("detail"), fields.get("type"), fields.get("instance")
        )
        data = fields.get("data")
        result.data = None if data is None else self._data.load(data)
        return result

    def keeps(self, value: Any) -> bool:
        return isinstance(value, self._type)
