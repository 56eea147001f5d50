"""Key and tag templates: format strings over named values, parsed once and rendered on every call.

``"item:{item_id}"``, ``"customer:{customer.id}"``, ``"{lines[0]}"``:
``str.format``'s fields (attribute and index access, conversions, format
specs) without ``string.Formatter``'s parsing on every call, which would cost
more than the rest of a cache hit. The decorator renders them over a call's
arguments, the query caching behavior over a request's attributes; each says
how a field's root is read and which values a key may hold.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from typing import Any, Final

from ._library import CacheException, InvalidArgumentError

__all__ = ["FieldTemplate"]

_ROOT: Final = re.compile(r"[A-Za-z_]\w*")
_ACCESS: Final = re.compile(r"\.([A-Za-z_]\w*)|\[([^\]]+)\]")

# literal text, then the field (None after the last one), its root, the accesses after the root, conversion, spec
_Part = tuple[str, str | None, str, tuple[tuple[bool, Any], ...], str | None, str]


class FieldTemplate:
    """A format string whose fields are named values, checked and split once.

    ``what`` names the template in errors (``"key 'item:{id}' of get_item"``);
    a malformed template raises ``error`` (the decorator refuses its
    arguments with :class:`InvalidArgumentError`, a query's declaration is a
    :class:`ConfigurationError`). ``roots`` are the names the fields start
    with, in order, for the caller to check against what it will pass.
    """

    __slots__ = ("_parts", "roots", "text", "what")

    def __init__(
        self,
        text: str,
        what: str,
        *,
        error: type[CacheException] = InvalidArgumentError,
        name_hint: str = "name the parameter",
    ) -> None:
        self.text = text
        self.what = what
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise error(f"{what} is not a valid format string: {exc}") from None
        parts: list[_Part] = []
        roots: list[str] = []
        for literal, field, spec, conversion in parsed:
            if field is None:
                parts.append((literal, None, "", (), None, ""))
                continue
            root = _ROOT.match(field)
            if root is None:
                raise error(f"{what} has a positional field {{{field}}}; {name_hint}")
            if spec and "{" in spec:
                raise error(f"{what}: nested fields in a format spec")
            rest: list[tuple[bool, Any]] = []
            position = root.end()
            while position < len(field):
                access = _ACCESS.match(field, position)
                if access is None:
                    raise error(f"{what}: cannot read the field {{{field}}}")
                attribute, index = access.groups()
                rest.append(
                    (True, attribute) if attribute is not None else (False, int(index) if index.isdigit() else index)
                )
                position = access.end()
            roots.append(root.group())
            parts.append((literal, field, root.group(), tuple(rest), conversion, spec or ""))
        self._parts = parts
        self.roots = tuple(roots)

    def render(self, source: Any, check: Callable[[Any, str, str], None], *, attributes: bool = False) -> str:
        """The text over ``source``: a mapping of the roots, or an object whose attributes they are.

        Each value a field reaches goes to ``check(value, field, what)``, which
        raises for a value a key must not hold; a field that cannot be read
        raises :class:`InvalidArgumentError` naming it.
        """
        out: list[str] = []
        for literal, field, root, rest, conversion, spec in self._parts:
            out.append(literal)
            if field is None:
                continue
            try:
                value = getattr(source, root) if attributes else source[root]
                for is_attribute, name in rest:
                    value = getattr(value, name) if is_attribute else value[name]
            except (AttributeError, KeyError, IndexError, TypeError) as exc:
                raise InvalidArgumentError(f"the field {{{field}}} of {self.what} cannot be read: {exc!r}") from None
            check(value, field, self.what)
            if conversion == "r":
                value = repr(value)
            elif conversion == "s":
                value = str(value)
            elif conversion == "a":
                value = ascii(value)
            out.append(format(value, spec))
        return "".join(out)

    def __repr__(self) -> str:
        return f"FieldTemplate({self.text!r})"
