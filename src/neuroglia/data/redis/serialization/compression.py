"""Compression for the envelope: zlib and zstd, decompressed in bounded steps.

A compressed value read from Redis is untrusted: a few kilobytes can claim
gigabytes (a decompression bomb). :class:`Inflater` therefore never asks a
decompressor for more than it may produce: it streams the output in steps
(zlib's ``decompressobj`` with ``max_length``, zstd's stream reader) and
stops with :class:`~neuroglia.data.redis.SerializationError` at the bound,
before the bound is exceeded by more than one step. Memory spent on a bomb
is therefore the bound, not what the bomb claims.

A step can be resumed on another thread (one at a time): the envelope
inflates the first megabyte on the event loop and the rest, if any, in a
worker thread.
"""

from __future__ import annotations

import io
import zlib
from typing import Any, Final

from ..exceptions import SerializationError

__all__ = ["NAMES", "NONE", "ZLIB", "ZSTD", "Inflater", "compress", "zstd_module"]

NONE: Final = 0
ZLIB: Final = 1
ZSTD: Final = 2
NAMES: Final = {NONE: "none", ZLIB: "zlib", ZSTD: "zstd"}

# zstd's largest window (log 27, 128 MiB) is what its reference decoder
# accepts by default; a frame may not make us allocate more than that.
_MAX_ZSTD_WINDOW: Final = 1 << 27


def zstd_module() -> Any:
    """The ``zstandard`` module, or ``None`` without the ``zstd`` extra."""
    try:
        import zstandard
    except ImportError:
        return None
    return zstandard


def compress(algorithm: int, data: bytes, level: int | None) -> bytes:
    """``data`` compressed with ``algorithm`` (:data:`ZLIB` or :data:`ZSTD`)."""
    if algorithm == ZLIB:
        return zlib.compress(data, -1 if level is None else level)
    zstandard = zstd_module()
    compressor = zstandard.ZstdCompressor() if level is None else zstandard.ZstdCompressor(level=level)
    return bytes(compressor.compress(data))


class Inflater:
    """Decompresses one payload in bounded steps; see the module docstring.

    ``limit`` is the most it may produce; ``too_large`` is the message of
    the :class:`SerializationError` raised when the payload holds more.
    """

    __slots__ = (
        "_algorithm",
        "_chunks",
        "_declared",
        "_done",
        "_limit",
        "_produced",
        "_reader",
        "_source",
        "_too_large",
    )

    def __init__(self, algorithm: int, data: bytes | memoryview, limit: int, too_large: str) -> None:
        self._algorithm = algorithm
        self._limit = limit
        self._too_large = too_large
        self._chunks: list[bytes] = []
        self._produced = 0
        self._done = False
        self._declared = 0
        self._source: Any
        self._reader: Any = None
        if algorithm == ZLIB:
            self._source = zlib.decompressobj()
            self._reader = memoryview(data)
        elif algorithm == ZSTD:
            zstandard = zstd_module()
            if zstandard is None:
                raise SerializationError(
                    "the value is compressed with zstd: pip install 'neuroglia-redis[zstd]' to read it"
                )
            self._source = zstandard
            try:
                declared = zstandard.get_frame_parameters(data).content_size
            except zstandard.ZstdError as exc:
                raise SerializationError(f"the value's zstd payload is damaged: {exc}") from exc
            # Every frame the library writes declares its size: without it a
            # truncated frame could not be told from a complete one. The claim
            # is checked against the limit at once, and against what the frame
            # really holds as it is decompressed (never trusted for memory).
            if declared == zstandard.CONTENTSIZE_UNKNOWN:
                raise SerializationError("the value's zstd frame does not declare its size; refusing it")
            if declared > limit:
                raise SerializationError(too_large)
            self._declared = declared
            window = min(_MAX_ZSTD_WINDOW, 1 << max(10, (limit - 1).bit_length()))
            decompressor = zstandard.ZstdDecompressor(max_window_size=window)
            self._reader = decompressor.stream_reader(io.BytesIO(data), read_across_frames=False)
        else:
            raise SerializationError(f"unknown compression {algorithm}")

    @property
    def done(self) -> bool:
        """Whether the whole payload was decompressed."""
        return self._done

    @property
    def produced(self) -> int:
        """How many bytes were produced so far."""
        return self._produced

    def step(self, budget: int) -> bool:
        """Produce up to ``budget`` more bytes; returns :attr:`done`."""
        if self._done:
            return True
        # One byte past the limit tells "exactly the limit" from "more".
        want = min(budget, self._limit + 1 - self._produced)
        if self._algorithm == ZLIB:
            self._step_zlib(want)
        else:
            self._step_zstd(want)
        if self._produced > self._limit:
            self._release()
            raise SerializationError(self._too_large)
        return self._done

    def finish(self) -> bytes:
        """Decompress the rest (within the limit) and return the whole payload."""
        while not self.step(1024 * 1024):
            pass
        chunks, self._chunks = self._chunks, []
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _step_zlib(self, want: int) -> None:
        inflater: Any = self._source
        try:
            out = inflater.decompress(self._reader, max(want, 1))
        except zlib.error as exc:
            self._release()
            raise SerializationError(f"the value's zlib payload is damaged: {exc}") from exc
        self._keep(out)
        self._reader = inflater.unconsumed_tail
        if inflater.eof:
            if inflater.unused_data:
                self._release()
                raise SerializationError("the value's zlib payload is followed by extra bytes")
            self._done = True
        elif not inflater.unconsumed_tail and not out:
            self._release()
            raise SerializationError("the value's zlib payload is truncated")

    def _step_zstd(self, want: int) -> None:
        zstandard = self._source
        try:
            out = self._reader.read(max(want, 1))
        except zstandard.ZstdError as exc:
            self._release()
            raise SerializationError(f"the value's zstd payload is damaged: {exc}") from exc
        self._keep(out)
        if self._produced > self._declared:
            self._release()
            raise SerializationError("the value's zstd payload holds more than its frame declares")
        if not out:
            self._done = True
            self._reader.close()
            if self._produced != self._declared:
                self._release()
                raise SerializationError("the value's zstd payload is truncated")

    def _keep(self, out: bytes) -> None:
        if out:
            self._chunks.append(out)
            self._produced += len(out)

    def _release(self) -> None:
        self._chunks.clear()
        self._done = True
