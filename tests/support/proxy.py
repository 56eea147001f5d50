"""A small in-process TCP proxy for fault tests: delays replies and cuts connections.

It listens on a free loopback port and forwards bytes between each client and
the real server, one upstream connection per client connection::

    proxy = await TcpProxy("127.0.0.1", server.port).start()
    repo = RedisRepository(RedisConfig(url=proxy.url))
    proxy.reply_delay = 0.01      # every chunk from the server waits 10 ms
    await proxy.cut_all()         # reset every connection (RST both ways)
    await proxy.close()

``accepted`` counts client connections, so a test can prove that a code path
opened no socket. ``hold_replies`` keeps replies back (the connection stays
open and silent, as in a network partition) until it is cleared.
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["TcpProxy"]

_CHUNK = 65536


class TcpProxy:
    """Forward 127.0.0.1:<port> to ``target_host:target_port``, with faults on demand."""

    def __init__(self, target_host: str, target_port: int, *, reply_delay: float = 0.0) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.reply_delay = reply_delay
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._released = asyncio.Event()
        self._released.set()

    @property
    def port(self) -> int:
        """The port the proxy listens on."""
        assert self._server is not None, "start() the proxy first"
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def hold_replies(self) -> bool:
        """Whether replies are held back (the connections stay open and silent)."""
        return not self._released.is_set()

    @hold_replies.setter
    def hold_replies(self, value: bool) -> None:
        if value:
            self._released.clear()
        else:
            self._released.set()

    async def start(self) -> TcpProxy:
        """Listen on a free loopback port."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            server_reader, server_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers.update((client_writer, server_writer))
        up = asyncio.create_task(self._pump(client_reader, server_writer, delayed=False))
        down = asyncio.create_task(self._pump(server_reader, client_writer, delayed=True))
        self._tasks.update((up, down))
        try:
            await asyncio.wait((up, down), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (up, down):
                task.cancel()
            for writer in (client_writer, server_writer):
                writer.transport.abort()
                self._writers.discard(writer)
            self._tasks.difference_update((up, down))

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, delayed: bool) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while True:
                data = await reader.read(_CHUNK)
                if not data:
                    return
                if delayed:
                    await self._released.wait()
                    if self.reply_delay:
                        await asyncio.sleep(self.reply_delay)
                writer.write(data)
                await writer.drain()

    async def cut_all(self) -> None:
        """Reset every open connection at once (both the client and the server side)."""
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        await asyncio.sleep(0)

    async def close(self) -> None:
        """Stop listening and reset every connection."""
        self._released.set()
        if self._server is not None:
            self._server.close()
        await self.cut_all()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
