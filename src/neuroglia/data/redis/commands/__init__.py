"""The command families: the repository's methods, grouped by Redis data type.

Each family is a mixin of *command methods* (builders decorated with
:func:`~neuroglia.data.redis.core.command`, which the repository runs and a
pipeline queues) plus, in its ``*Operations`` class, the methods that are
not one command (``scan_async``, ``set_many_async``...). The repository
combines the operations; a pipeline combines only the command families, so
a pipeline call that the repository could not queue fails the type checker.
To add a command: write its builder in its family, with a docstring, and
it is both a repository method and a pipeline method.
"""

from .hashes import HashCommands
from .keyspace import KeyCommands, KeyOperations
from .lists import ListCommands
from .server import ServerCommands, ServerOperations
from .sets import SetCommands
from .sorted_sets import SortedSetCommands
from .strings import StringCommands, StringOperations

__all__ = [
    "HashCommands",
    "KeyCommands",
    "KeyOperations",
    "ListCommands",
    "ServerCommands",
    "ServerOperations",
    "SetCommands",
    "SortedSetCommands",
    "StringCommands",
    "StringOperations",
]
