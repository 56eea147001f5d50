"""Where a cache's keys live in Redis.

Under the repository's ``key_prefix`` (applied by the repository), with the
cache's namespace ``ns``::

    ns:<key>                  an entry (hash: v, m, t)
    ns#lease:<key>            the lease of the process computing <key>
    ns#wait:<key>             the ids of the processes waiting for <key>
    ns#wake:<key>:<id>        the wake-up list of waiting process <id>
    ns#tag:<tag>              the entries carrying <tag> (sorted set)
    ns#tagdel:<tag>           what removals of <tag> still have to delete

A namespace cannot contain ``#``, so the cache's own keys never collide with
an entry's, whatever the entry keys are.

On a Redis Cluster every key of one cache lives in one hash slot: a write
updates the entry and its tag sets in one script, and a lease's waiters and
wake-up lists are named by the scripts from their arguments, so they must
sit beside the entry. The namespace becomes the hash tag (``{ns}:<key>``,
``{ns}#tag:<tag>``...) unless it holds one already (``"menu:{eu}"``): the
load of one cache goes to one node, and several caches spread over the
cluster.
"""

from __future__ import annotations

from ._library import InvalidArgumentError, one_slot_prefix

__all__ = ["KeySpace"]


class KeySpace:
    """The key names of one cache."""

    __slots__ = ("_entry", "_internal", "full_prefix", "namespace")

    def __init__(self, namespace: str, repository_prefix: str, *, one_slot: bool = False) -> None:
        if not isinstance(namespace, str) or not namespace:
            raise InvalidArgumentError(f"namespace must be a non-empty str, got {namespace!r}")
        if "#" in namespace:
            raise InvalidArgumentError(f"namespace cannot contain '#', got {namespace!r}")
        self.namespace = namespace
        root = one_slot_prefix(namespace) if one_slot else namespace
        self._entry = root + ":"
        self._internal = root + "#"
        self.full_prefix = repository_prefix
        """The repository's key prefix: the scripts name keys the repository did not prefix."""

    def entry(self, key: str) -> str:
        """The entry of ``key`` (validated: a non-empty str)."""
        if key.__class__ is str and key:
            return self._entry + key
        if isinstance(key, str) and key:
            return self._entry + str.__str__(key)  # a StrEnum member: its plain value
        raise InvalidArgumentError(f"a cache key must be a non-empty str, got {key!r}")

    def lease(self, key: str) -> str:
        """The lease of ``key``."""
        return f"{self._internal}lease:{key}"

    def waiters(self, key: str) -> str:
        """The waiters set of ``key``."""
        return f"{self._internal}wait:{key}"

    def wake(self, key: str, waiter_id: str) -> str:
        """The wake-up list of ``waiter_id`` for ``key`` (as the repository names it)."""
        return f"{self._internal}wake:{key}:{waiter_id}"

    def wake_prefix(self, key: str) -> str:
        """The full (prefixed) name of ``key``'s wake-up lists, without the waiter id (for scripts)."""
        return f"{self.full_prefix}{self._internal}wake:{key}:"

    def tag(self, tag: str) -> str:
        """The set of entries carrying ``tag``."""
        return f"{self._internal}tag:{tag}"

    @property
    def tag_prefix(self) -> str:
        """The full (prefixed) name of tag sets, without the tag (for scripts)."""
        return f"{self.full_prefix}{self._internal}tag:"

    def tag_pending(self, tag: str) -> str:
        """What removals of ``tag`` still have to delete."""
        return f"{self._internal}tagdel:{tag}"

    @property
    def entry_root(self) -> str:
        """What every entry name starts with: ``ns:``."""
        return self._entry

    @property
    def internal_root(self) -> str:
        """What the name of every key the cache keeps beside its entries starts with: ``ns#``."""
        return self._internal
