"""A tiny blocking RESP client for the testing kit's fixtures (no event loop, no client library).

The fixtures' helpers run from synchronous code (pytest fixtures, a thread
beside an async test): :func:`command` sends one command on a fresh
connection and reads its reply; :func:`info`, :func:`fields` and
:func:`wait_until` are what the Sentinel group's helpers are made of.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["command", "fields", "info", "wait_until"]


def command(port: int, *args: str, host: str = "127.0.0.1", timeout: float = 1.0, password: str | None = None) -> Any:
    """Send one command to ``host:port`` and return its reply (RESP2; error replies raise ``RuntimeError``).

    With ``password``, ``AUTH`` is sent first.
    """
    commands = [("AUTH", password), args] if password is not None else [args]
    payload = b"".join(_pack(command) for command in commands)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(payload)
        reader = sock.makefile("rb")
        if password is not None:
            _read(reader)  # +OK, or the refusal raised
        return _read(reader)


def _pack(args: Sequence[str]) -> bytes:
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(f"${len(data)}\r\n".encode() + data + b"\r\n")
    return b"".join(parts)


def _read(reader: Any) -> Any:
    line: bytes = reader.readline()
    if not line:
        raise ConnectionError("the server closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest
    if kind == b"-":
        raise RuntimeError(rest.decode(errors="replace"))
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        return None if size < 0 else reader.read(size + 2)[:-2]
    if kind == b"*":
        size = int(rest)
        return None if size < 0 else [_read(reader) for _ in range(size)]
    raise RuntimeError(f"unexpected reply {line!r}")


def info(port: int, section: str, password: str | None = None) -> bytes:
    """The server's ``INFO <section>`` text, or ``b""`` when it does not answer."""
    try:
        reply = command(port, "INFO", section, password=password)
    except (OSError, RuntimeError):
        return b""
    return reply if isinstance(reply, bytes) else b""


def fields(reply: Any) -> dict[bytes, bytes]:
    """A flat ``[name, value, ...]`` reply as a dict."""
    items = list(reply) if isinstance(reply, list) else []
    return dict(zip(items[::2], items[1::2], strict=False))


def wait_until(condition: Any, timeout: float, what: str, *, retry_errors: bool = True) -> None:
    """Call ``condition()`` every 50 ms until it is true; ``RuntimeError`` naming ``what`` after ``timeout`` s.

    A server not answering yet (``OSError``, an error reply) counts as "not
    yet" unless ``retry_errors`` is false.
    """
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (OSError, RuntimeError) as exc:  # a process not answering yet
            if not retry_errors:
                raise
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"timed out after {timeout:g}s waiting for {what}" + (f" (last error: {last})" if last else ""))
