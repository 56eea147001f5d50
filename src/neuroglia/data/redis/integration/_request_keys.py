"""Cache keys and tags of mediator requests: templates over a request's attributes, and default keys.

A template is a format string whose fields name the request's attributes,
with attribute and index access: ``"menu:{category}"``,
``"order:{order_id}"``, ``"customer:{customer.id}"``, ``"{lines[0]}"``. It is
parsed once, when declared; its fields are checked against the request class
then (a misspelt name is refused with the class's attributes), and every value
a field reaches when rendered must be a plain value that prints the same in
every process: ``str``, ``int``, ``float``, ``bool``, ``None``, an enum, a
``UUID``, a ``Decimal``, a date or a time.

Without a template, a query's key is its class's module and qualified name and
all its public attributes (:func:`default_key`): plain values, and lists,
tuples, sets, dicts, dataclasses and pydantic models of them. Long keys are
shortened to their start and a digest.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import decimal
import enum
import hashlib
import inspect
import uuid
from collections.abc import Mapping
from typing import Any, Final

from ..cache.templates import FieldTemplate
from ..exceptions import ConfigurationError, InvalidArgumentError

__all__ = ["RequestTemplate", "attribute_names", "default_key"]

_PLAIN: Final = (str, int, float, uuid.UUID, decimal.Decimal, _dt.date, _dt.time, enum.Enum)
_MAX_DEFAULT_KEY: Final = 256
_MAX_DEPTH: Final = 8


def attribute_names(request_type: type) -> set[str]:
    """The attributes a request class declares: annotations, dataclass and pydantic fields, ``__init__`` parameters.

    Domain events of the framework usually set their attributes in
    ``__init__`` without annotating them; the parameters of ``__init__`` stand
    for those.
    """
    names: set[str] = set()
    for klass in request_type.__mro__:
        names.update(inspect.get_annotations(klass))
        names.update(name for name, value in vars(klass).items() if not callable(value) and name[:1] != "_")
    if dataclasses.is_dataclass(request_type):
        names.update(field.name for field in dataclasses.fields(request_type))
    names.update(getattr(request_type, "model_fields", None) or ())
    try:
        parameters = list(inspect.signature(request_type).parameters.values())
    except (TypeError, ValueError):  # a builtin __init__
        parameters = []
    names.update(p.name for p in parameters if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))
    return {name for name in names if name[:1] != "_"}


class RequestTemplate:
    """A key or tag template over a request's attributes, parsed and checked once (a :class:`FieldTemplate`)."""

    __slots__ = ("_template",)

    def __init__(self, text: Any, what: str, request_type: type) -> None:
        if not isinstance(text, str) or not text:
            raise ConfigurationError(f"{what} of {request_type.__name__} must be a non-empty str, got {text!r}")
        template = FieldTemplate(
            text, f"{what} {text!r} of {request_type.__name__}", error=ConfigurationError, name_hint="name an attribute"
        )
        known = attribute_names(request_type)
        for root in template.roots:
            if root not in known:
                raise ConfigurationError(
                    f"the field {{{root}}} of {template.what} is not an attribute of {request_type.__name__} "
                    f"(attributes: {', '.join(sorted(known)) or 'none'})"
                )
        self._template = template

    @property
    def text(self) -> str:
        """The format string."""
        return self._template.text

    @property
    def roots(self) -> tuple[str, ...]:
        """The attributes its fields start with."""
        return self._template.roots

    def render(self, request: Any) -> str:
        """The text for ``request``; :class:`InvalidArgumentError` names a field that cannot be rendered."""
        return self._template.render(request, _check_plain, attributes=True)

    def __repr__(self) -> str:
        return f"RequestTemplate({self.text!r})"


def _check_plain(value: Any, field: str, what: str) -> None:
    if not (value is None or isinstance(value, _PLAIN)):  # (bool is an int)
        raise InvalidArgumentError(
            f"the field {{{field}}} of {what} is a {type(value).__name__}, not a str, int, float, bool, "
            f"enum, UUID, Decimal or date: name one of its attributes (for example {{{field}.id}})"
        )


def _canonical(value: Any, where: str, depth: int = 0) -> str:
    """A text for ``value`` that is the same in every process and every run (no ids, no ``hash()``)."""
    if depth > _MAX_DEPTH:
        raise InvalidArgumentError(f"{where} is nested too deeply for a cache key")
    if value is None or isinstance(value, bool | int | float | str | decimal.Decimal):
        return repr(value)
    if isinstance(value, enum.Enum):
        return f"{type(value).__qualname__}.{value.name}"
    if isinstance(value, uuid.UUID):
        return f"UUID({value})"
    if isinstance(value, _dt.date | _dt.time):
        return f"{type(value).__name__}({value.isoformat()})"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_canonical(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)) + "]"
    if isinstance(value, set | frozenset):
        return "{" + ",".join(sorted(_canonical(v, f"{where}[]", depth + 1) for v in value)) + "}"
    if isinstance(value, Mapping):
        items = sorted((_canonical(k, f"{where} key", depth + 1), v) for k, v in value.items())
        return "{" + ",".join(f"{k}:{_canonical(v, f'{where}[{k}]', depth + 1)}" for k, v in items) + "}"
    fields = _public_fields(value)
    if fields is not None:
        body = ",".join(f"{name}={_canonical(item, f'{where}.{name}', depth + 1)}" for name, item in fields)
        return f"{type(value).__qualname__}({body})"
    raise InvalidArgumentError(
        f"{where} is a {type(value).__name__}, which has no stable cache key: declare key='...{{...}}' naming the "
        "attributes that identify the query"
    )


def _public_fields(value: Any) -> list[tuple[str, Any]] | None:
    """The attributes that identify a dataclass, a pydantic model or a plain object; ``None`` for other values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value) if f.name[:1] != "_"]
    model_fields = getattr(type(value), "model_fields", None)
    if isinstance(model_fields, Mapping) and callable(getattr(value, "model_dump", None)):  # pydantic v2
        return [(name, getattr(value, name)) for name in model_fields]
    attributes = getattr(value, "__dict__", None)
    if isinstance(attributes, dict) and type(value).__module__ != "builtins":
        return sorted((name, item) for name, item in attributes.items() if name[:1] != "_")
    return None


def default_key(request: Any) -> str:
    """``module.QualifiedName(field=value,...)`` over the request's public attributes; long keys shortened."""
    cls = type(request)
    fields = _public_fields(request) or []
    body = ",".join(f"{name}={_canonical(item, f'{cls.__name__}.{name}')}" for name, item in fields)
    text = f"{cls.__module__}.{cls.__qualname__}({body})"
    if len(text) > _MAX_DEFAULT_KEY:
        digest = hashlib.sha256(text.encode()).hexdigest()[:32]
        text = f"{text[: _MAX_DEFAULT_KEY - 40]}..#{digest}"
    return text
