"""The repository core: the executor (the one chokepoint), commands as values, argument checks, replies, keys, scripts.

Everything a command needs between the command families above and the
transport below: :class:`Command` and the :func:`command` decorator that makes
a builder a method; :class:`Arguments`, which refuses bad input before
anything is sent; :class:`Replies`, which turns raw replies into results;
:class:`Executor`, through which every command passes (breaker, deadline,
retry, metrics, fallback); :class:`Script` for Lua; and the key helpers.
"""

from .arguments import MAX_VALUE_BYTES, Arguments, Expiration, Key, KeyMapping, ScalarValue, ScoreMapping, Value
from .command import Command, CommandFamily, CommandMethod, CommandQueue, command
from .executor import Executor
from .keys import KEY_SEPARATOR, build_key, build_pattern, escape_pattern
from .replies import Replies, decode_text, parse_info
from .scripts import Script, lua_source

__all__ = [
    "KEY_SEPARATOR",
    "MAX_VALUE_BYTES",
    "Arguments",
    "Command",
    "CommandFamily",
    "CommandMethod",
    "CommandQueue",
    "Executor",
    "Expiration",
    "Key",
    "KeyMapping",
    "Replies",
    "ScalarValue",
    "ScoreMapping",
    "Script",
    "Value",
    "build_key",
    "build_pattern",
    "command",
    "decode_text",
    "escape_pattern",
    "lua_source",
    "parse_info",
]
