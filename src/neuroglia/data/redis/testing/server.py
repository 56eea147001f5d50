"""Real ``redis-server`` processes for tests: private, on free loopback ports, without persistence.

:class:`RedisServer` starts one and stops it by pid; tests never touch a
shared server's data::

    with RedisServer() as server:
        repo = RedisRepository(RedisConfig(url=server.url))

Extra server arguments (``--requirepass``, ``--enable-debug-command local``,
TLS options) go in ``args``. :meth:`RedisServer.stop`,
:meth:`RedisServer.pause`, :meth:`RedisServer.resume` and
:meth:`RedisServer.restart` serve fault-injection tests.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = ["RedisServer", "free_port", "redis_server_binary"]


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
        self._process = subprocess.Popen(self._command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited at start; log:\n{self._log_tail()}")
            if self._answers():
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer within {self.startup_timeout}s; log:\n{self._log_tail()}")

    def _command(self) -> list[str]:
        """The process's command line (a subclass may put a config file first, as a sentinel needs)."""
        return [
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
