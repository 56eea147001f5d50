"""What a new connection says before any caller's command: protocol, credentials, name, database.

RESP3 starts with ``HELLO 3`` (carrying ``AUTH`` and ``SETNAME``); RESP2 uses
``AUTH``, ``CLIENT SETNAME`` and ``SELECT``, which every server version
understands. The commands leave in one write and their replies are checked
in order; a refusal fails the connection attempt with the mapped error
(:class:`~neuroglia.data.redis.CacheAuthenticationError` for a wrong
password, :class:`~neuroglia.data.redis.CachePermissionError` for a user who
may not select the database...), marked ``NOT_SENT`` because the caller's
own command never left. A TLS connection always makes one round trip here,
so that a server refusing the client certificate (TLS 1.3 says so only after
the handshake) is reported as such before any command is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import hiredis

from neuroglia.data.redis.exceptions import CacheException, ConfigurationError, Delivery

from .connection import Connection, command_name
from .encoding import pack_many
from .errors import server_error

__all__ = ["Credentials", "handshake", "handshake_commands"]


@dataclass(frozen=True, slots=True)
class Credentials:
    """Who the connection says it is (the password is never shown)."""

    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password={'***' if self.password else None})"


def handshake_commands(
    *,
    protocol: int,
    credentials: Credentials,
    client_name: str | None,
    db: int,
    tls: bool,
    extra: Sequence[tuple[Any, ...]] = (),
) -> list[tuple[Any, ...]]:
    """The commands a new connection sends first, in order."""
    commands: list[tuple[Any, ...]] = []
    username, password = credentials.username, credentials.password
    if protocol == 3:
        hello: list[Any] = ["HELLO", 3]
        if password is not None or username is not None:
            hello += ["AUTH", username or "default", password or ""]
        if client_name:
            hello += ["SETNAME", client_name]
        commands.append(tuple(hello))
    else:
        if password is not None or username is not None:
            commands.append(("AUTH", username, password or "") if username else ("AUTH", password or ""))
        if client_name:
            commands.append(("CLIENT", "SETNAME", client_name))
    if db:
        commands.append(("SELECT", db))
    commands.extend(extra)
    if tls and not commands:
        commands.append(("PING",))
    return commands


async def handshake(conn: Connection, commands: Sequence[tuple[Any, ...]], deadline: float | None) -> None:
    """Send ``commands`` on ``conn`` and check every reply; raises the mapped error of the first refusal."""
    if not commands:
        return
    names = [command_name(args[0]) for args in commands]

    def check(replies: list[Any]) -> None:
        for name, args, reply in zip(names, commands, replies, strict=True):
            if reply.__class__ is hiredis.ReplyError:
                raise _refused(str(reply), name, args)

    await conn.submit(pack_many(commands), "", deadline, expected=len(commands), finish=check)


def _refused(message: str, name: str, args: tuple[Any, ...]) -> CacheException:
    shown = name
    if name in ("CLIENT", "HELLO") and len(args) > 1:
        shown = name if name == "HELLO" else f"{name} {command_name(args[1])}"
    if name == "HELLO" and ("unknown command" in message or message.startswith("NOPROTO")):
        error: CacheException = ConfigurationError(
            f"protocol: the server refused RESP3 (HELLO 3: {message}); RESP3 needs Redis 6 or newer, use protocol=2"
        )
    else:
        error = server_error(message, f"connection handshake ({shown})")
    return error.with_delivery(Delivery.NOT_SENT)
