"""RedisEntityRepository: the framework's ``Repository[TEntity, TKey]`` on Redis.

Layout of one entity type (``key_prefix`` defaults to the class name in lower
case, as the framework's Mongo repository names its collection)::

    {key_prefix}:{id}       a hash: 'data'    the entity's document, in the envelope
                                    'version' its version (versioned types only)
    {key_prefix}::index     a sorted set: one member per stored id, scored with
                            its expiry time (ms, the server's clock) or +inf

Every write is one Lua script (``lua/entity_*.lua``) that checks, writes the
hash, sets or clears the expiration and updates the index together, so the
index never disagrees with the entities, and an update that lost an
optimistic-concurrency race writes nothing. Ids are escaped in keys
(:func:`~neuroglia.data.redis.build_key`), so ``":"`` in an id cannot reach
another key, and no id can name the index.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import enum
import inspect
import math
import typing
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

from ..core import Script, build_key
from ..core.keys import one_slot_prefix
from ..exceptions import ConfigurationError, InvalidArgumentError
from ..repository import RedisRepository
from ..serialization import EnvelopeSerializer, SerializationStrategy
from ._documents import DocumentCodec, typevar_bindings
from ._framework import AggregateRoot, AggregateState, Repository, TEntity, TKey
from ._scripts import entity_script
from .errors import EntityAlreadyExistsError, EntityConcurrencyError, EntityNotFoundError

if TYPE_CHECKING:
    from ._framework import Mediator

__all__ = ["AUTO_VERSION", "EntityModel", "RedisEntityRepository"]

Expiration = _dt.timedelta | int | float


class _AutoVersion:
    """The default of ``version_field``: ``state_version`` where there is one."""

    def __repr__(self) -> str:
        return "AUTO_VERSION"


AUTO_VERSION: Final = _AutoVersion()
"""``version_field`` default: aggregates (and entities with a ``state_version``) are versioned by it."""

_DATA: Final = "data"
_MISSING: Final = object()
_INDEX_SUFFIX: Final = "::index"


def _has_attribute(cls: type, name: str, hints: dict[str, Any]) -> bool:
    if name in hints or hasattr(cls, name):
        return True
    if dataclasses.is_dataclass(cls) and any(f.name == name for f in dataclasses.fields(cls)):
        return True
    return name in (getattr(cls, "model_fields", None) or {})


def _class_hints(cls: type) -> dict[str, Any]:
    names: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        names.update(inspect.get_annotations(klass))
    return names


def _expiration_ms(expiration: Expiration | None) -> int:
    if expiration is None:
        return 0
    if isinstance(expiration, _dt.timedelta):
        seconds = expiration.total_seconds()
    elif isinstance(expiration, int | float) and not isinstance(expiration, bool):
        seconds = float(expiration)
    else:
        raise ConfigurationError(
            f"expiration: expected a timedelta or a number of seconds, got {type(expiration).__name__}"
        )
    if not math.isfinite(seconds) or seconds < 0.001:
        raise ConfigurationError(f"expiration: must be at least 1 millisecond, got {expiration!r}")
    return round(seconds * 1000)


class EntityModel:
    """How one entity type is stored: computed and checked once, shared by its repositories.

    Raises :class:`~neuroglia.data.redis.ConfigurationError` for a type the
    repository cannot store: no ``id``, an aggregate root that does not name
    its state type, a version field it does not have, a bad key prefix or
    expiration. The registration builds it once per entity type, so that the
    scoped repositories of each request share its compiled converters.
    """

    def __init__(
        self,
        entity_type: type[Any],
        key_type: type[Any] | None = None,
        *,
        key_prefix: str | None = None,
        expiration: Expiration | None = None,
        version_field: str | _AutoVersion | None = AUTO_VERSION,
    ) -> None:
        if not isinstance(entity_type, type):
            raise ConfigurationError(f"entity_type: expected a class, got {entity_type!r}")
        if key_type is not None and not isinstance(key_type, type):
            raise ConfigurationError(f"key_type: expected a class (str, int, UUID...), got {key_type!r}")
        name = entity_type.__name__
        self.entity_type = entity_type
        self.key_type = key_type
        self.is_aggregate = issubclass(entity_type, AggregateRoot)
        if self.is_aggregate:
            state_parameter = typing.cast(Any, AggregateRoot).__parameters__[0]  # TState
            state_type = typevar_bindings(entity_type).get(state_parameter)
            if not isinstance(state_type, type):
                raise ConfigurationError(
                    f"entity_type: {name} derives from AggregateRoot without naming its state type: declare it "
                    f"as class {name}(AggregateRoot[{name}State, str]) so its state can be stored and rebuilt"
                )
            target: type[Any] = state_type
            if not _has_attribute(state_type, "id", _class_hints(state_type)):
                raise ConfigurationError(
                    f"entity_type: the state of {name} ({state_type.__name__}) has no 'id' attribute: derive it "
                    f"from neuroglia.data.abstractions.AggregateState[str] or declare id: str"
                )
        else:
            target = entity_type
            if not _has_attribute(entity_type, "id", _class_hints(entity_type)):
                raise ConfigurationError(
                    f"entity_type: {name} has no id: an entity stored by RedisEntityRepository needs an 'id' "
                    f"attribute (declare id: str, or derive from neuroglia.data.abstractions.Entity[str])"
                )
        self.state_type = target
        hints = _class_hints(target)
        if isinstance(version_field, _AutoVersion):
            versioned = self.is_aggregate or issubclass(target, AggregateState) or "state_version" in hints
            self.version_field: str | None = "state_version" if versioned else None
        elif version_field is None:
            self.version_field = None
        elif isinstance(version_field, str) and version_field.isidentifier():
            if not _has_attribute(target, version_field, hints):
                raise ConfigurationError(
                    f"version_field: {target.__name__} has no attribute {version_field!r} to keep the version "
                    f"in; declare it ({version_field}: int = 0), or pass version_field=None for no version check"
                )
            self.version_field = version_field
        else:
            raise ConfigurationError(f"version_field: expected an attribute name or None, got {version_field!r}")
        if key_prefix is None:
            key_prefix = name.lower()
        if not isinstance(key_prefix, str) or not key_prefix or key_prefix.endswith(":"):
            raise ConfigurationError(
                f"key_prefix: expected a non-empty str that does not end with ':', got {key_prefix!r}"
            )
        self.key_prefix = key_prefix
        self.index_key = key_prefix + _INDEX_SUFFIX
        self.expiration_ms = _expiration_ms(expiration)
        self.documents = DocumentCodec()
        self.documents.converter(target)  # compiled now: a class it cannot handle fails at registration

    def in_one_slot(self) -> EntityModel:
        """This model with its keys in one Redis Cluster slot: ``{key_prefix}:{id}``, ``{key_prefix}::index``.

        Each write updates an entity and the type's index in one script, so
        on a cluster both must share a slot: the key prefix becomes the hash
        tag (unless it holds one), and one entity type lives on one node.
        """
        clustered = self.__dict__.get("_in_one_slot")
        if clustered is None:
            clustered = copy.copy(self)
            clustered.key_prefix = one_slot_prefix(self.key_prefix)
            clustered.index_key = clustered.key_prefix + _INDEX_SUFFIX
            clustered.__dict__["_in_one_slot"] = clustered
            self.__dict__["_in_one_slot"] = clustered
        return clustered

    def key(self, entity_id: Any) -> str:
        """The key of the entity with ``entity_id``: ``{key_prefix}:{id}``, the id escaped."""
        return f"{self.key_prefix}:{self.member(entity_id)}"

    @staticmethod
    def member(entity_id: Any) -> str:
        """The id as written in keys and in the index."""
        if entity_id is None:
            raise InvalidArgumentError("an entity id must not be None")
        if isinstance(entity_id, enum.Enum):
            entity_id = entity_id.value
        text = entity_id if entity_id.__class__ is str else str(entity_id)
        if not text:
            raise InvalidArgumentError("an entity id must not be empty")
        return build_key(text)

    def __repr__(self) -> str:
        return (
            f"EntityModel({self.entity_type.__name__}, key_prefix={self.key_prefix!r}, "
            f"version_field={self.version_field!r}, expiration_ms={self.expiration_ms})"
        )


class _Scripts:
    __slots__ = ("add", "count", "prune", "remove", "scan", "update")

    def __init__(self, repository: RedisRepository) -> None:
        self.add: Script = repository.register_script(entity_script("entity_add"))
        self.update: Script = repository.register_script(entity_script("entity_update"))
        self.remove: Script = repository.register_script(entity_script("entity_remove"))
        self.scan: Script = repository.register_script(entity_script("entity_scan"))
        self.count: Script = repository.register_script(entity_script("entity_count"))
        self.prune: Script = repository.register_script(entity_script("entity_prune"))


def _raw(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisEntityRepository(Repository[TEntity, TKey]):
    """The framework's ``Repository[TEntity, TKey]`` on Redis.

    ::

        orders = RedisEntityRepository[Order, str](redis, Order, str, mediator=mediator)
        await orders.add_async(order)          # OrderPlaced published after the write
        order = await orders.get_async("o-1")  # an Order, or None
        order.add_pizza("margherita")
        await orders.update_async(order)       # EntityConcurrencyError if someone updated it first

    In an application, register it the framework's way (scoped, like the
    Mongo repository) and inject ``Repository[Order, str]``::

        RedisEntityRepository.configure(builder, Order, str, domain_repository_type=OrderRepository)

    **Storage.** An aggregate root stores its ``state``; any other entity
    stores its public attributes. The document goes through the repository's
    serialization strategy in the versioned envelope (or ``serializer``), and
    comes back as the annotated classes: nested value objects, ``datetime``,
    ``Enum``, ``Decimal``, ``UUID`` (see :mod:`._documents`).

    **Events.** After a successful ``add_async`` or ``update_async`` the
    framework's base class publishes the aggregate's pending domain events
    through ``mediator`` and clears them: once per write, and never when the
    write raised. ``remove_async`` publishes nothing (the framework's rule).

    **Concurrency.** Aggregates (and entities with a ``state_version``, or a
    ``version_field``) are versioned: ``update_async`` writes only if the
    stored version is the one the entity was loaded at, in one Lua script,
    then the entity carries the next version. A lost race raises
    :class:`EntityConcurrencyError` (the framework's
    ``OptimisticConcurrencyException``) and writes nothing.
    ``version_field=None`` turns the check off (last writer wins).

    **Errors.** ``add_async`` of a stored id raises
    :class:`EntityAlreadyExistsError`; ``update_async`` and ``remove_async``
    of an id that is not stored raise :class:`EntityNotFoundError` (the
    framework's ``EntityNotFoundException``). Redis being unreachable raises
    :class:`~neuroglia.data.redis.CacheUnavailableError`, as everywhere.

    **Expiration.** With ``expiration`` every write gives the entity that
    time to live (from the write; reads do not extend it), and an expired
    entity reads as absent.

    **Listing.** :meth:`get_all_async`, :meth:`iter_async`,
    :meth:`count_async` and :meth:`find_async` read an index kept by the same
    scripts as the writes, never ``KEYS``. :meth:`find_async` loads every
    entity of the type and filters in the process: its cost grows with the
    number of entities, not with the number found.
    """

    def __init__(
        self,
        repository: RedisRepository,
        entity_type: type[TEntity],
        key_type: type[TKey] | None = None,
        *,
        mediator: Mediator | None = None,
        key_prefix: str | None = None,
        expiration: Expiration | None = None,
        version_field: str | _AutoVersion | None = AUTO_VERSION,
        serializer: SerializationStrategy | None = None,
        model: EntityModel | None = None,
    ) -> None:
        """``model``: what :class:`EntityModel` computed once (the registration passes it); leave it out."""
        super().__init__(mediator)
        if not isinstance(repository, RedisRepository):
            raise ConfigurationError(f"repository: expected a RedisRepository, got {type(repository).__name__}")
        if model is None:
            model = EntityModel(
                entity_type, key_type, key_prefix=key_prefix, expiration=expiration, version_field=version_field
            )
        elif model.entity_type is not entity_type:
            raise ConfigurationError(
                f"model: it describes {model.entity_type.__name__}, not {getattr(entity_type, '__name__', entity_type)}"
            )
        if repository.config.topology == "cluster":
            model = model.in_one_slot()
        self._repository = repository
        self._model = model
        policy = repository.config.envelope_policy
        self._codec = repository.codec if serializer is None else EnvelopeSerializer(serializer, policy)
        self._scripts = _Scripts(repository)

    # -- what it is ------------------------------------------------------------

    @property
    def repository(self) -> RedisRepository:
        """The Redis repository the entities live in."""
        return self._repository

    @property
    def model(self) -> EntityModel:
        """How the entity type is stored (key prefix, version field, expiration)."""
        return self._model

    @property
    def entity_type(self) -> type[TEntity]:
        """The class of the stored entities."""
        return self._model.entity_type

    def key(self, entity_id: TKey) -> str:
        """The Redis key of the entity with ``entity_id`` (under the repository's own key prefix)."""
        return self._model.key(entity_id)

    def __repr__(self) -> str:
        return f"RedisEntityRepository[{self._model.entity_type.__name__}]({self._model.key_prefix!r})"

    # -- reads -----------------------------------------------------------------

    async def contains_async(self, id: TKey) -> bool:
        """Whether an entity with ``id`` is stored (and has not expired)."""
        return await self._repository.exists_async(self._model.key(id))

    async def get_async(self, id: TKey) -> TEntity | None:
        """The entity with ``id``, or ``None``."""
        raw = await self._repository.hget_async(self._model.key(id), _DATA)
        return None if raw is None else self._load(raw)

    async def get_many_async(self, ids: Iterable[TKey]) -> list[TEntity]:
        """The stored entities among ``ids``, in their order (absent ones left out); one round trip."""
        keys = [self._model.key(i) for i in ids]
        if not keys:
            return []
        async with self._repository.pipeline() as pipe:
            for key in keys:
                pipe.hget_async(key, _DATA)
        return [self._load(raw) for raw in pipe.results or () if raw is not None]

    async def iter_async(self, *, batch_size: int = 100) -> AsyncIterator[TEntity]:
        """Every stored entity of the type, a page of ``batch_size`` at a time.

        Two round trips per page (the index, then the entities). Entities
        stored for the whole iteration are yielded exactly once; one added or
        removed meanwhile may or may not be.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidArgumentError(f"batch_size must be a positive int, got {batch_size!r}")
        model = self._model
        seen: set[str] = set()
        cursor = "0"
        while True:
            page = await self._scripts.scan(keys=(model.index_key,), args=(cursor, batch_size))
            # (bytes, not str, when the repository is configured with decode_responses=False)
            cursor = _text(page[0])
            members = [_text(m) for m in page[1:]]
            fresh = [m for m in members if m not in seen]
            seen.update(fresh)
            if fresh:
                keys = [f"{model.key_prefix}:{m}" for m in fresh]
                async with self._repository.pipeline() as pipe:
                    for key in keys:
                        pipe.hget_async(key, _DATA)
                missing: list[tuple[str, str]] = []
                for member, key, raw in zip(fresh, keys, pipe.results or (), strict=True):
                    if raw is None:
                        missing.append((key, member))
                    else:
                        yield self._load(raw)
                if missing:
                    # Gone since it was indexed (deleted from outside, or expired):
                    # drop its entry, unless it is stored again by now.
                    await self._scripts.prune(
                        keys=(model.index_key, *(k for k, _ in missing)), args=[m for _, m in missing]
                    )
            if cursor == "0":
                return

    async def get_all_async(self) -> list[TEntity]:
        """Every stored entity of the type (loads them all: mind their number)."""
        return [entity async for entity in self.iter_async()]

    async def find_async(self, predicate: Callable[[TEntity], bool]) -> list[TEntity]:
        """The stored entities for which ``predicate`` is true.

        Redis cannot evaluate the predicate: every entity of the type is
        loaded and tested here, so the cost is that of :meth:`get_all_async`
        whatever the number found. Keep an index of your own (a set per
        status, say) for queries that must scale.
        """
        return [entity async for entity in self.iter_async() if predicate(entity)]

    async def find_one_async(self, predicate: Callable[[TEntity], bool]) -> TEntity | None:
        """The first stored entity for which ``predicate`` is true, or ``None``.

        Loads entities page by page until one matches: at worst, all of them
        (see :meth:`find_async`).
        """
        async for entity in self.iter_async():
            if predicate(entity):
                return entity
        return None

    async def count_async(self) -> int:
        """How many entities of the type are stored (one round trip, nothing loaded)."""
        return int(await self._scripts.count(keys=(self._model.index_key,)))

    # -- writes (the framework's base class publishes the events after them) ------

    async def _do_add_async(self, entity: TEntity) -> TEntity:
        model = self._model
        target = self._target(entity)
        if model.is_aggregate:
            # As the framework's Mongo repository does: the timestamps exist before the first write.
            if getattr(target, "created_at", None) is None:
                target.created_at = _dt.datetime.now(_dt.UTC)
            if getattr(target, "last_modified", None) is None:
                target.last_modified = target.created_at
        entity_id = self._id_of(entity)
        member = model.member(entity_id)
        version: Any = ""
        if model.version_field is not None:
            version = self._version_of(target)
        document = self._dump(target)
        added = await self._scripts.add(
            keys=(f"{model.key_prefix}:{member}", model.index_key),
            args=(member, document, version, model.expiration_ms),
        )
        if int(added) == 0:
            raise EntityAlreadyExistsError(model.entity_type.__name__, entity_id)
        return entity

    async def _do_update_async(self, entity: TEntity) -> TEntity:
        model = self._model
        target = self._target(entity)
        entity_id = self._id_of(entity)
        member = model.member(entity_id)
        field = model.version_field
        # As the framework's Mongo repository does: an aggregate (or an entity
        # with a last_modified) is stamped, and its version moves on by one.
        touch = model.is_aggregate or hasattr(target, "last_modified")
        previous_modified = getattr(target, "last_modified", _MISSING)
        expected: Any = ""
        new_version: Any = ""
        if field is not None:
            expected = self._version_of(target)
            new_version = expected + 1
            setattr(target, field, new_version)
        if touch:
            target.last_modified = _dt.datetime.now(_dt.UTC)
        try:
            document = self._dump(target)
            reply = await self._scripts.update(
                keys=(f"{model.key_prefix}:{member}", model.index_key),
                args=(member, document, expected, new_version, model.expiration_ms),
            )
            status = int(reply[0])
            if status == 0:
                raise EntityNotFoundError(model.entity_type.__name__, entity_id, "update_async")
            if status < 0:
                raise EntityConcurrencyError(model.entity_type.__name__, entity_id, expected, int(reply[1]))
        except BaseException:
            # Nothing was written (or nothing is known to be): the entity keeps
            # the version it was loaded at, so a reload-and-retry stays honest.
            if field is not None:
                setattr(target, field, expected)
            if touch:
                if previous_modified is _MISSING:
                    del target.last_modified
                else:
                    target.last_modified = previous_modified
            raise
        return entity

    async def _do_remove_async(self, id: TKey) -> None:
        model = self._model
        member = model.member(id)
        removed = await self._scripts.remove(keys=(f"{model.key_prefix}:{member}", model.index_key), args=(member,))
        if int(removed) == 0:
            raise EntityNotFoundError(model.entity_type.__name__, id, "remove_async")

    # -- conversions -----------------------------------------------------------------

    def _target(self, entity: Any) -> Any:
        """What is stored of ``entity``: an aggregate's state, or the entity itself."""
        model = self._model
        if not isinstance(entity, model.entity_type):
            raise InvalidArgumentError(
                f"entity: this repository stores {model.entity_type.__name__}, got {type(entity).__name__}"
            )
        return entity.state if model.is_aggregate else entity

    def _id_of(self, entity: Any) -> Any:
        entity_id = getattr(entity, "id", None)
        if callable(entity_id):  # AggregateRoot.id() is a method
            entity_id = entity_id()
        if entity_id is None:
            raise InvalidArgumentError(f"entity: this {type(entity).__name__} has no id")
        return entity_id

    def _version_of(self, target: Any) -> int:
        field = self._model.version_field
        assert field is not None
        version = getattr(target, field, 0)
        if version is None:
            return 0
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise InvalidArgumentError(f"entity: {field} must be a non-negative int, got {version!r}")
        return version

    def _dump(self, target: Any) -> bytes:
        return self._codec.dumps(self._model.documents.encode(target))

    def _load(self, raw: Any) -> Any:
        model = self._model
        target = model.documents.decode(self._codec.loads(_raw(raw)), model.state_type)
        if not model.is_aggregate:
            return target
        aggregate = object.__new__(model.entity_type)
        aggregate.state = target
        aggregate._pending_events = []
        return aggregate

    # -- registration ------------------------------------------------------------------

    @staticmethod
    def configure(
        builder: Any,
        entity_type: type[Any],
        key_type: type[Any],
        *,
        key_prefix: str | None = None,
        expiration: Expiration | None = None,
        version_field: str | _AutoVersion | None = AUTO_VERSION,
        serializer: SerializationStrategy | None = None,
        domain_repository_type: type[Any] | None = None,
        implementation_type: type[Any] | None = None,
        publish_events: bool | None = None,
        connection_string_name: str = "redis",
        replace: bool = False,
    ) -> Any:
        """Register the repository of ``entity_type`` in an application builder; returns the builder.

        The framework's way, as ``MotorRepository.configure``: scoped
        ``RedisEntityRepository[entity_type, key_type]`` and
        ``Repository[entity_type, key_type]`` (and ``domain_repository_type``,
        if given) resolving to one instance per scope. When no Redis
        repository is registered yet, registers one first from the builder
        settings' ``connection_strings[connection_string_name]`` (else the
        ``REDIS_*`` environment variables). See
        :func:`~neuroglia.data.redis.integration.add_redis_entity_repository`
        for the options.
        """
        services = builder.services
        if not any(d.service_type is RedisRepository for d in services):
            RedisRepository.configure(builder, connection_string_name=connection_string_name)
        # Attached to the framework's ServiceCollection by this package (see registration.py).
        services.add_redis_entity_repository(
            entity_type,
            key_type,
            key_prefix=key_prefix,
            expiration=expiration,
            version_field=version_field,
            serializer=serializer,
            domain_repository_type=domain_repository_type,
            implementation_type=implementation_type,
            publish_events=publish_events,
            replace=replace,
        )
        return builder
