"""The base of command families: what their builders may use."""

from __future__ import annotations

from .arguments import Arguments
from .command import CommandFamily as _CommandFamily
from .executor import Executor
from .replies import Replies

__all__ = ["Family"]


class Family(_CommandFamily):
    """A command family: builders over the owner's argument checks and reply decoding.

    ``_executor`` is there only on the repository (a pipeline queues
    instead); operations that are not one command (``scan_async``...) use it.
    """

    _arg: Arguments
    _reply: Replies
    _executor: Executor
