"""Keys built from untrusted parts, and glob patterns that match only what they say.

Two injection risks live in cache keys:

* a *separator* inside a part (``customer_id = "42:admin"``) adds a level to
  the key, so two different part lists can name the same key, or a part can
  reach into another namespace: :func:`build_key` escapes ``%`` and ``:``
  inside each part (``%25``, ``%3A``), so the joined key is unambiguous;
* a *glob character* inside a part of a pattern (``customer_id = "*"``)
  widens a SCAN or a pattern delete to every key: :func:`escape_pattern`
  escapes ``* ? [ ] \\``, and :func:`build_pattern` does both at once.

Keys are binary safe for Redis (RESP frames them by length), so no other
character needs escaping: newlines, spaces, NUL and any Unicode go through
as they are.
"""

from __future__ import annotations

import uuid
from typing import Final

from ..config.topology import has_hash_tag
from ..exceptions import InvalidArgumentError

__all__ = ["KEY_SEPARATOR", "build_key", "build_pattern", "escape_pattern", "has_hash_tag", "one_slot_prefix"]

KEY_SEPARATOR: Final = ":"
_GLOB_SPECIALS: Final = str.maketrans({c: "\\" + c for c in "\\*?[]"})
_PART_ESCAPES: Final = str.maketrans({"%": "%25", KEY_SEPARATOR: "%3A"})

KeyPart = str | int | uuid.UUID


def escape_pattern(part: str) -> str:
    """Escape glob characters (``* ? [ ] \\``) in a user-supplied key part.

    Use it for every untrusted piece of a pattern given to
    :meth:`RedisRepository.delete_pattern_async` or
    :meth:`RedisRepository.scan_async`, so that an id such as ``"*"`` matches
    only itself: ``f"orders:{escape_pattern(customer_id)}:*"``.
    """
    if not isinstance(part, str):
        raise InvalidArgumentError(f"escape_pattern expects a str, got {type(part).__name__}")
    return part.translate(_GLOB_SPECIALS)


def _part(index: int, part: KeyPart) -> str:
    if isinstance(part, str):
        text = str.__str__(part)
    elif isinstance(part, int) and not isinstance(part, bool):
        text = str(int(part))
    elif isinstance(part, uuid.UUID):
        text = str(part)
    else:
        raise InvalidArgumentError(f"key part {index} must be str, int or UUID, got {type(part).__name__}")
    if not text:
        raise InvalidArgumentError(f"key part {index} is empty")
    try:
        text.encode()
    except UnicodeEncodeError:
        raise InvalidArgumentError(f"key part {index} is not valid Unicode text (it holds a lone surrogate)") from None
    return text.translate(_PART_ESCAPES)


def build_key(*parts: KeyPart) -> str:
    """Join key parts with ``:``, escaping ``%`` and ``:`` inside each part.

    ``build_key("mario_pizzeria", "sessions", customer_id)`` is
    ``"mario_pizzeria:sessions:42"`` for ``customer_id="42"`` (parts without
    ``:`` or ``%`` are unchanged), and ``"mario_pizzeria:sessions:42%3Aadmin"``
    for ``"42:admin"``: a part never adds a level, and different part lists
    never give the same key. Parts are ``str``, ``int`` or ``UUID``; an
    empty part is refused with :class:`InvalidArgumentError`.
    """
    if not parts:
        raise InvalidArgumentError("build_key needs at least one part")
    return KEY_SEPARATOR.join([_part(i, p) for i, p in enumerate(parts)])


def build_pattern(*parts: KeyPart) -> str:
    """The glob pattern matching every key *below* ``build_key(*parts)``.

    ``build_pattern("orders", customer_id)`` is ``"orders:<id>:*"`` with the
    id escaped for both the key and the glob, so
    ``delete_pattern_async(build_pattern("orders", customer_id))`` deletes
    that customer's orders and nothing else, whatever the id holds.
    """
    return escape_pattern(build_key(*parts)) + KEY_SEPARATOR + "*"


def one_slot_prefix(prefix: str) -> str:
    """``prefix`` as a hash tag (``"{menu}"``) so that every key under it lands in one cluster slot.

    Left as it is when it holds a tag already (``"menu:{eu}"``).
    """
    return prefix if has_hash_tag(prefix) else f"{{{prefix}}}"
