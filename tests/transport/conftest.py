"""Fixtures of the multiplexed transport's tests: private servers, a proxy, transports, both event loops.

Every test that breaks its server owns it (a private ``redis-server`` on a
free loopback port, without persistence, stopped by pid). Tests marked
``both_loops`` run on the standard asyncio loop and on uvloop (installed by
the ``test`` extra); the others on asyncio only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from neuroglia.data.redis import RedisConfig
from neuroglia.data.redis.transport.multiplexed import ConnectionSettings, MultiplexedTransport
from tests.support.servers import debug_server, proxy, server  # noqa: F401  (fixtures, by name)

if TYPE_CHECKING:
    from tests.support.transports import MakeTransport

try:
    import uvloop
except ImportError:  # only where the test extra was not installed
    uvloop = None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "both_loops: run on asyncio's loop and on uvloop")


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> Mapping[str, Callable[[], Any]]:
    factories: dict[str, Callable[[], Any]] = {"asyncio": asyncio.new_event_loop}
    if uvloop is not None and item.get_closest_marker("both_loops") is not None:
        factories["uvloop"] = uvloop.new_event_loop
    return factories


@pytest.fixture
async def make_transport() -> AsyncIterator[MakeTransport]:
    """Build transports from a URL and settings (config fields, or settings overrides); closed at the end."""
    made: list[MultiplexedTransport] = []
    # Settings the config has no field for (max_in_flight is one) override the config's.
    settings_fields = set(ConnectionSettings.__dataclass_fields__) - set(RedisConfig.__dataclass_fields__)

    def make(url: str, **options: Any) -> MultiplexedTransport:
        overrides = {k: options.pop(k) for k in list(options) if k in settings_fields}
        transport = MultiplexedTransport(ConnectionSettings.from_config(RedisConfig(url=url, **options), **overrides))
        made.append(transport)
        return transport

    yield make
    for transport in made:
        await transport.close()
