"""RedisHashRepository: typed objects stored as Redis hashes, one field per attribute."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from ..core.arguments import Expiration
from ..core.keys import build_key
from ..core.scripts import lua_source
from ..exceptions import InvalidArgumentError, SerializationError
from ..repository import RedisRepository
from ..serialization import SerializationStrategy, to_plain
from ..serialization.deferred import resolve
from ..serialization.envelope import EnvelopeSerializer

__all__ = ["RedisHashRepository"]

T = TypeVar("T")


class RedisHashRepository(Generic[T]):
    """Store objects of one type as hashes: ``{key_prefix}:{id}`` -> field per attribute.

    Works with dataclasses, pydantic models and plain dicts. Each attribute is
    encoded with the serialization strategy (the repository's by default,
    JSON unless configured), so types survive the round trip and single
    fields can be read or updated without loading the whole object.

    Each field is stored in the versioned envelope (see ``docs/security.md``),
    so a reader configured with another strategy refuses it instead of
    misreading it, except integers, which are stored as bare decimal text so
    that :meth:`increment_field_async` (``HINCRBY``) works on them; with a
    signed strategy every field is signed, integers included, and
    :meth:`increment_field_async` is not available.

    Entity ids are untrusted: :meth:`key` escapes ``:`` and ``%`` in them
    (:func:`~neuroglia.data.redis.build_key`), so an id cannot reach another
    entity's or another repository's keys.

    Whole-object writes replace the hash atomically (``MULTI``/``EXEC``), so a
    reader never sees a mix of old and new attributes.
    """

    def __init__(
        self,
        repository: RedisRepository,
        entity_type: type[T],
        *,
        key_prefix: str | None = None,
        id_field: str = "id",
        expiration: Expiration | None = None,
        serializer: SerializationStrategy | None = None,
    ) -> None:
        self._repository = repository
        self.entity_type = entity_type
        self.key_prefix = key_prefix if key_prefix is not None else entity_type.__name__.lower()
        self.id_field = id_field
        self.expiration = expiration
        self._serializer = serializer or repository.serializer
        self._codec = (
            EnvelopeSerializer(serializer, repository.config.envelope_policy) if serializer else repository.codec
        )

    def key(self, entity_id: Any) -> str:
        """The Redis key of the entity with ``entity_id``: ``{key_prefix}:{id}``, the id escaped."""
        text = str(entity_id)
        if entity_id is None or not text:
            raise InvalidArgumentError("an entity id must not be empty")
        return f"{self.key_prefix}:{build_key(text)}"

    def _fields(self, entity: T) -> tuple[Any, dict[str, bytes]]:
        data = entity if isinstance(entity, Mapping) else to_plain(entity)
        if not isinstance(data, Mapping):
            raise SerializationError(f"{type(entity).__name__} does not convert to a mapping of attributes")
        if self.id_field not in data:
            raise InvalidArgumentError(f"entity has no {self.id_field!r} attribute to use as its id")
        dumps = self._codec.dumps_field
        return data[self.id_field], {str(name): dumps(value) for name, value in data.items()}

    async def add_async(self, entity: T) -> T:
        """Store ``entity`` (replacing any stored one with the same id)."""
        entity_id, fields = self._fields(entity)
        key = self.key(entity_id)
        async with self._repository.transaction() as tx:
            tx.delete_async(key)
            tx.hset_async(key, fields)
            if self.expiration is not None:
                tx.expire_async(key, self.expiration)
        return entity

    update_async = add_async

    async def get_async(self, entity_id: Any) -> T | None:
        """The entity with ``entity_id``, or ``None``."""
        raw = await self._repository.hgetall_async(self.key(entity_id))
        if not raw:
            return None
        # Nested fields are rebuilt by the entity's annotations; large hashes
        # are decoded in a worker thread, off the event loop.
        return await resolve(self._codec.begin_fields(raw, self.entity_type))

    async def contains_async(self, entity_id: Any) -> bool:
        """Whether an entity with ``entity_id`` is stored."""
        return await self._repository.exists_async(self.key(entity_id))

    async def remove_async(self, entity_id: Any) -> bool:
        """Delete the entity; returns whether it existed."""
        return await self._repository.delete_async(self.key(entity_id)) > 0

    async def get_field_async(self, entity_id: Any, field: str) -> Any:
        """One attribute of the stored entity, or ``None``."""
        raw = await self._repository.hget_async(self.key(entity_id), field)
        if raw is None:
            return None
        found: dict[str, Any] = await resolve(self._codec.begin_fields({field: raw}))
        return found[field]

    async def set_field_async(self, entity_id: Any, field: str, value: Any) -> bool:
        """Update one attribute of a stored entity in place.

        Returns ``False`` (and writes nothing) when no entity has that id, so
        a stray update never leaves a partial object behind.
        """
        key = self.key(entity_id)
        if field == self.id_field:
            raise InvalidArgumentError(f"{field!r} is the id field and cannot be changed")
        script = self._repository.register_script(lua_source(__name__, "hash_set_if_exists"))
        return bool(await script(keys=[key], args=[field, self._codec.dumps_field(value)]))

    async def increment_field_async(self, entity_id: Any, field: str, amount: int = 1) -> int | None:
        """Atomically add ``amount`` to an integer attribute; returns the new value.

        ``None`` (and nothing written) when no entity has that id.
        """
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise InvalidArgumentError(f"amount must be an int, got {type(amount).__name__}")
        script = self._repository.register_script(lua_source(__name__, "hash_incrby_if_exists"))
        result = await script(keys=[self.key(entity_id)], args=[field, amount])
        return None if result is None else int(result)


