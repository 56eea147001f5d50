"""The page's ResilientMenuService (Circuit Breaker and Resilience), run against a real server.

The page's class writes ``@circuit_breaker.apply`` in the class body while
``circuit_breaker`` is an instance attribute created in ``__init__``; Python
evaluates a decorator when the class is defined, so that is a ``NameError``
(``test_breaker_unit.py`` shows it). The class imported from
:mod:`neuroglia.data.redis.demo.pizzeria` is the page's code with the working
form completed: a class-level breaker, shared by the instances. The rest is
the page's code as written: it catches ``CacheException`` itself (and prints
it), so its method-level breaker never sees an outage; the repository's own
breaker is what opens, fails fast, and closes again.

The server is stopped and restarted by the test.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from neuroglia.dependency_injection import ServiceCollection

from neuroglia.data.redis import CircuitState, RedisRepository
from neuroglia.data.redis.demo.pizzeria import MENU, ResilientMenuService
from neuroglia.data.redis.testing import RedisServer
from tests.support.faults import fast_config

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def count_database_loads(service: ResilientMenuService) -> list[str]:
    """The menus ``service`` loads from its database from now on (the page leaves the database to the reader)."""
    loads: list[str] = []
    load = service.load_menu_from_database

    async def counted(menu_id: str) -> dict[str, Any]:
        loads.append(menu_id)
        return await load(menu_id)  # type: ignore[no-any-return]

    service.load_menu_from_database = counted  # type: ignore[method-assign]
    return loads


async def test_resilient_menu_service_through_an_outage(
    server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    ResilientMenuService.circuit_breaker.reset()
    repo = RedisRepository(
        fast_config(
            server.url,
            circuit_breaker={"failure_threshold": 5, "recovery_timeout": 0.5, "success_threshold": 3},
        )
    )
    services = ServiceCollection()
    services.add_singleton(RedisRepository, singleton=repo)
    provider = services.build()
    service = ResilientMenuService(provider)
    database_loads = count_database_loads(service)
    log: list[str] = []  # what the service printed

    def printed() -> list[str]:
        log.extend(capsys.readouterr().out.splitlines())
        return log

    repo_breaker = repo.circuit_breaker
    assert repo_breaker is not None
    events: list[str] = []
    repo_breaker.add_listener(lambda old, new: events.append(f"{old.value}->{new.value}"))
    try:
        # Healthy: a miss goes to the database and fills Redis; the next read is a hit.
        await service.warm_fallback_cache()
        assert database_loads == ["margherita", "pepperoni", "quattro_stagioni"]
        assert await service.get_menu_with_fallback("margherita") == MENU["margherita"]
        assert database_loads == ["margherita", "pepperoni", "quattro_stagioni"]
        assert await repo.exists_async("mario_pizzeria:menu:margherita")

        # Outage: the service keeps answering from its own fallback dict.
        server.stop()
        loop = asyncio.get_running_loop()
        for _ in range(20):
            started = loop.time()
            assert await service.get_menu_with_fallback("pepperoni") == MENU["pepperoni"]
            assert loop.time() - started <= 1.0 + 0.75  # bounded by the operation deadline
        assert printed()
        assert all(line.startswith("Redis unavailable, using fallback cache:") for line in printed())
        # The service caught every CacheException, yet the repository's breaker opened...
        assert repo_breaker.state is CircuitState.OPEN
        assert "circuit" in printed()[-1]  # the later calls failed fast on the open circuit
        # ...while the page's method-level breaker never saw a failure.
        assert ResilientMenuService.circuit_breaker.state is CircuitState.CLOSED
        # A menu never read before comes from the database as a last resort.
        database_loads.clear()
        assert await service.get_menu_with_fallback("quattro_stagioni") == MENU["quattro_stagioni"]
        service.fallback_cache.pop("quattro_stagioni")
        assert await service.get_menu_with_fallback("quattro_stagioni") == MENU["quattro_stagioni"]
        assert database_loads == ["quattro_stagioni"]

        # Recovery: the same port, no action by the service; Redis is used again.
        server.start()
        deadline = loop.time() + 10
        while repo_breaker.state is not CircuitState.CLOSED and loop.time() < deadline:
            await service.get_menu_with_fallback("margherita")
            await asyncio.sleep(0.05)
        assert repo_breaker.state is CircuitState.CLOSED
        assert events[:2] == ["closed->open", "open->half_open"]
        assert events[-1] == "half_open->closed"
        printed().clear()
        database_loads.clear()
        assert await service.get_menu_with_fallback("pepperoni") == MENU["pepperoni"]
        assert printed() == []
        assert json.loads(await repo.get_async("mario_pizzeria:menu:pepperoni") or "null") == MENU["pepperoni"]
    finally:
        await repo.disconnect()
