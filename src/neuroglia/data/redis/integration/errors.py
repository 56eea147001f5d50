"""What :class:`~neuroglia.data.redis.integration.RedisEntityRepository` raises.

Each error is both the framework's and the library's: code written against
the framework's repositories catches the framework's classes
(``OptimisticConcurrencyException``, ``EntityNotFoundException``,
``DataAccessException``), and code that protects every library call with
``except CacheException`` catches these too::

    DataAccessException (framework)        CacheException (library)
    ├── OptimisticConcurrencyException     │
    │   └── EntityConcurrencyError ────────┤  update of a version someone else wrote
    ├── EntityNotFoundException            │
    │   └── EntityNotFoundError ───────────┤  update or remove of an id that is not stored
    └── EntityAlreadyExistsError ──────────┘  add of an id that is stored already

The framework has no exception for a duplicate add (its in-memory repository
raises a bare ``Exception``, Mongo a driver error), hence
:class:`EntityAlreadyExistsError`.
"""

from __future__ import annotations

from typing import Any

from ..exceptions import CacheException
from ._framework import DataAccessException, EntityNotFoundException, OptimisticConcurrencyException

__all__ = ["EntityAlreadyExistsError", "EntityConcurrencyError", "EntityNotFoundError"]


class EntityConcurrencyError(OptimisticConcurrencyException, CacheException):
    """An update lost the race: the stored version is not the one the entity was loaded at.

    Nothing was written. ``entity_id``, ``expected_version`` (the version the
    entity carried when loaded) and ``actual_version`` (the stored one) are
    the framework's attributes; ``entity_type`` names the class. Reload the
    entity and apply the change again.
    """

    def __init__(self, entity_type: str, entity_id: Any, expected_version: int, actual_version: int) -> None:
        self.entity_type = entity_type
        super().__init__(
            entity_id,
            expected_version,
            actual_version,
            f"optimistic concurrency conflict for {entity_type} {entity_id!r}: it was loaded at version "
            f"{expected_version}, but version {actual_version} is stored; another writer changed it. "
            "Nothing was written: reload it and apply the change again.",
        )


class EntityNotFoundError(EntityNotFoundException, CacheException):
    """``update_async`` or ``remove_async`` of an id that is not stored (or has expired)."""

    def __init__(self, entity_type: str, entity_id: Any, operation: str) -> None:
        super().__init__(entity_id, entity_type)
        self.operation = operation
        self.args = (
            f"{entity_type} {entity_id!r} is not stored (never added, removed, or expired): "
            f"{operation} found nothing to {'update' if operation == 'update_async' else 'remove'}",
        )


class EntityAlreadyExistsError(DataAccessException, CacheException):
    """``add_async`` of an id that is stored already; nothing was written.

    ``add_async`` stores new entities only: change a stored one with
    ``update_async``.
    """

    def __init__(self, entity_type: str, entity_id: Any) -> None:
        self.entity_type = entity_type
        self.entity_id = entity_id
        super().__init__(
            f"{entity_type} {entity_id!r} is already stored: add_async stores new entities only "
            "(use update_async to change it); nothing was written"
        )
