"""The error raised when an adapter is used without the Neuroglia framework installed."""

from __future__ import annotations

from ..exceptions import ConfigurationError

__all__ = ["FrameworkNotInstalledError"]


class FrameworkNotInstalledError(ConfigurationError, ImportError):
    """An adapter was used without the Neuroglia framework installed.

    Also an :class:`ImportError`, so the usual optional-dependency idiom
    (``try: from ... import ... except ImportError:``) keeps working.
    """
