"""RedisEndpoint: a real Redis a test may use, and how to reach it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..config import RedisConfig
from ..repository import RedisRepository
from .server import RedisServer

__all__ = ["RedisEndpoint"]


@dataclass(frozen=True, slots=True, repr=False)
class RedisEndpoint:
    """The real Redis the ``redis_server`` fixture provides.

    ``server`` is the private :class:`RedisServer` (``None`` when
    ``REDIS_URL`` points at an existing server). Its ``repr`` masks a
    password in the URL.
    """

    url: str
    server: RedisServer | None = None

    def config(self, **settings: Any) -> RedisConfig:
        """A :class:`RedisConfig` for this server; ``settings`` are further fields (``db=`` picks another database)."""
        url = self.url
        if "db" in settings:
            url = _with_db(url, settings.pop("db"))
        return RedisConfig(url=url, **settings)

    def repository(self, **settings: Any) -> RedisRepository:
        """A new (lazily connected) repository on this server; disconnect it yourself."""
        return RedisRepository(self.config(**settings))

    def __repr__(self) -> str:
        return f"RedisEndpoint({RedisConfig(url=self.url).redacted_url!r}, server={self.server!r})"


def _with_db(url: str, db: Any) -> str:
    """``url`` with its database number replaced (in the path, or ``?db=`` for ``unix://``)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "db"] + [("db", str(db))]
        return f"unix://{parts.netloc}{parts.path}?{urlencode(query)}"  # urlunsplit would drop the "//"
    return urlunsplit(parts._replace(path=f"/{db}"))
