"""Testing kit: real ``redis-server`` processes for integration tests.

:class:`RedisServer` starts a private ``redis-server`` on a free loopback
port, without persistence, and stops it by pid. Tests never touch a shared
server's data::

    with RedisServer() as server:
        repo = RedisRepository(RedisConfig(url=server.url))

Extra server arguments (``--requirepass``, ``--enable-debug-command local``,
TLS options) go in ``args``. :meth:`RedisServer.stop`,
:meth:`RedisServer.pause`, :meth:`RedisServer.resume` and
:meth:`RedisServer.restart` serve fault-injection tests.

The module is also a pytest plugin, enabled by the package's ``pytest11``
entry point (``-p no:neuroglia_redis`` turns it off). Its fixtures:

``redis_server`` (session)
    A :class:`RedisEndpoint`: a private ``redis-server`` started on a free
    port for the session, or the server ``REDIS_URL`` names (its database is
    flushed before each test that uses ``redis_repository``). Tests that use
    it are skipped, with the reason, only when no ``redis-server`` binary is
    found and ``REDIS_URL`` is unset.
``redis_repository``
    A :class:`~neuroglia.data.redis.RedisRepository` on that server, on a
    database flushed before the test, disconnected after it.
``memory_redis_repository``
    A repository on a private ``memory://`` server (the embedded backend).
``fake_clock``
    A :class:`FakeClock`, for ``CircuitBreakerPolicy(clock=...)`` and any
    other injected monotonic clock.

The repository fixtures are async: they need ``pytest-asyncio`` (any mode).
Importing this module does not need pytest.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ._config import RedisConfig
from ._repository import RedisRepository

__all__ = ["FakeClock", "RedisEndpoint", "RedisServer", "free_port", "redis_server_binary"]


def redis_server_binary() -> str | None:
    """The path of ``redis-server`` (``$REDIS_SERVER_BIN`` or ``PATH``), or ``None``."""
    return os.environ.get("REDIS_SERVER_BIN") or shutil.which("redis-server")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A private ``redis-server`` process on a free loopback port.

    ``port=None`` picks a free port; it is kept across :meth:`restart`.
    ``tls_port`` and TLS settings can be passed through ``args``.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        args: Sequence[str] = (),
        binary: str | None = None,
        startup_timeout: float = 10.0,
    ) -> None:
        found = binary or redis_server_binary()
        if not found:
            raise FileNotFoundError("redis-server is not installed (set REDIS_SERVER_BIN or install it)")
        self.binary = found
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.args = list(args)
        self.startup_timeout = startup_timeout
        self._dir = tempfile.mkdtemp(prefix="neuroglia-redis-")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The server's pid while it runs."""
        return self._process.pid if self._process else None

    @property
    def log_path(self) -> Path:
        """Where the server writes its log."""
        return Path(self._dir) / "redis.log"

    def start(self) -> Self:
        """Start the server and wait until it answers ``PING``."""
        if self._process is not None and self._process.poll() is None:
            return self
        command = [
            self.binary,
            "--port", str(self.port),
            "--bind", self.host,
            "--save", "",
            "--appendonly", "no",
            "--dir", self._dir,
            "--logfile", str(self.log_path),
            "--daemonize", "no",
            *self.args,
        ]  # fmt: skip
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited at start; log:\n{self._log_tail()}")
            if self._answers():
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer within {self.startup_timeout}s; log:\n{self._log_tail()}")

    def _answers(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                reply = sock.recv(64)
        except OSError:
            return False
        # -NOAUTH also proves the server is up when a password is required.
        return reply.startswith((b"+PONG", b"-NOAUTH", b"-ERR"))

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) by pid."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        if self._paused(process):
            process.send_signal(signal.SIGCONT)
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def kill(self) -> None:
        """Kill the server abruptly (SIGKILL), as a crash would."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=5)

    def restart(self) -> Self:
        """Stop (if running) and start again on the same port."""
        self.stop()
        return self.start()

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): connections stay open, nothing answers."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Continue a paused process (SIGCONT)."""
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    @staticmethod
    def _paused(process: subprocess.Popen[bytes]) -> bool:
        try:
            state = Path(f"/proc/{process.pid}/stat").read_text().split()[2]
        except (OSError, IndexError):
            return False
        return state == "T"

    def close(self) -> None:
        """Stop the server and remove its working folder."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RedisServer(port={self.port}, pid={self.pid})"


# -- helpers of the pytest plugin ------------------------------------------------


class FakeClock:
    """A monotonic clock that moves only when the test says so.

    Pass it where a ``clock: Callable[[], float]`` is expected
    (``CircuitBreakerPolicy(clock=fake_clock)``); :meth:`advance` moves time
    forward without sleeping.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (never backward); returns the new time."""
        if seconds < 0:
            raise ValueError(f"a monotonic clock cannot go back ({seconds!r}s)")
        self.now += seconds
        return self.now

    def __repr__(self) -> str:
        return f"FakeClock(now={self.now})"


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


_NO_SERVER_REASON = (
    "no redis-server binary found (PATH or $REDIS_SERVER_BIN) and REDIS_URL is not set: "
    "install redis-server, or set REDIS_URL to a server whose database the tests may flush"
)


def _endpoint() -> Iterator[RedisEndpoint]:
    external = os.environ.get("REDIS_URL")
    if external:
        if RedisConfig(url=external).scheme == "memory":
            raise _pytest_api().UsageError("REDIS_URL must name a real server (redis://...), not memory://")
        yield RedisEndpoint(external)
        return
    if redis_server_binary() is None:
        _pytest_api().skip(_NO_SERVER_REASON)
    with RedisServer() as server:
        yield RedisEndpoint(server.url, server)


def _pytest_api() -> Any:
    import pytest

    return pytest


F = TypeVar("F", bound=Callable[..., Any])


def _async_fixture(function: F) -> F:
    """``pytest_asyncio.fixture`` (works in its strict and auto modes), else plain ``pytest.fixture``."""
    try:
        import pytest_asyncio
    except ImportError:  # pragma: no cover - exercised only without pytest-asyncio
        return cast(F, _pytest_api().fixture(function))
    return cast(F, pytest_asyncio.fixture(function))


# -- the pytest plugin (only when pytest is importable) --------------------------

try:
    import pytest
except ImportError:  # pragma: no cover - the plugin is only loaded by pytest
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture(scope="session")
    def redis_server() -> Iterator[RedisEndpoint]:
        """A real Redis for the session: a private redis-server on a free port, or ``$REDIS_URL``."""
        yield from _endpoint()

    @_async_fixture
    async def redis_repository(redis_server: RedisEndpoint) -> AsyncIterator[RedisRepository]:
        """A repository on ``redis_server``, its database flushed before the test."""
        repo = redis_server.repository()
        try:
            await repo.flushdb()
            yield repo
        finally:
            await repo.disconnect()

    @_async_fixture
    async def memory_redis_repository() -> AsyncIterator[RedisRepository]:
        """A repository on a private ``memory://`` server (needs the ``memory`` extra)."""
        repo = RedisRepository(RedisConfig(url=f"memory://pytest-{uuid.uuid4().hex}"))
        try:
            yield repo
        finally:
            await repo.disconnect()

    @pytest.fixture
    def fake_clock() -> FakeClock:
        """A :class:`FakeClock` starting at 1000.0."""
        return FakeClock()
