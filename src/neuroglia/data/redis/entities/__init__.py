"""Entities over the repository: :class:`RedisHashRepository` stores objects of one type as hashes."""

from .hash_repository import RedisHashRepository

__all__ = ["RedisHashRepository"]
