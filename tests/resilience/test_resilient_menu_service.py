"""The page's ResilientMenuService (Circuit Breaker and Resilience), run against a real server.

The page's class writes ``@circuit_breaker.apply`` in the class body while
``circuit_breaker`` is an instance attribute created in ``__init__``; Python
evaluates a decorator when the class is defined, so that is a ``NameError``
(``test_breaker_unit.py`` shows it). The working form used here keeps the
page's code and moves the breaker to the class body, shared by the
instances. Everything else is the page's code as written: it catches
``CacheException`` itself, so its method-level breaker never sees an outage;
the repository's own breaker is what opens, fails fast, and closes again.

The server is stopped and restarted by the test.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from neuroglia.dependency_injection import ServiceCollection, ServiceProviderBase

from neuroglia.data.redis import (
    CacheException,
    CircuitBreakerPolicy,
    CircuitState,
    RedisRepository,
)
from neuroglia.data.redis.testing import RedisServer
from tests.support.faults import fast_config

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

MENUS = {
    "margherita": {"name": "Margherita", "price": 9.5},
    "pepperoni": {"name": "Pepperoni", "price": 11.0},
    "quattro_stagioni": {"name": "Quattro Stagioni", "price": 12.5},
}


class ResilientMenuService:
    # The working form of the page's decorator: a class-level breaker.
    circuit_breaker = CircuitBreakerPolicy(failure_threshold=5, recovery_timeout=60, success_threshold=3)

    def __init__(self, service_provider: ServiceProviderBase):
        self.redis = service_provider.get_service(RedisRepository)
        self.fallback_cache: dict[str, Any] = {}  # In-memory fallback
        self.database_loads: list[str] = []
        self.log: list[str] = []

    async def load_menu_from_database(self, menu_id: str) -> dict[str, Any]:
        self.database_loads.append(menu_id)
        return dict(MENUS[menu_id])

    @circuit_breaker.apply
    async def get_menu_with_fallback(self, menu_id: str) -> dict[str, Any]:
        """Get menu with circuit breaker and fallback."""
        try:
            # Try Redis cache first
            cache_key = f"mario_pizzeria:menu:{menu_id}"
            cached_menu = await self.redis.get_async(cache_key)

            if cached_menu:
                menu_data: dict[str, Any] = json.loads(cached_menu)
                # Update fallback cache
                self.fallback_cache[menu_id] = menu_data
                return menu_data

            # Cache miss - load from database
            menu_data = await self.load_menu_from_database(menu_id)

            # Cache in Redis
            await self.redis.set_async(cache_key, json.dumps(menu_data), expiration=timedelta(hours=6))

            # Update fallback cache
            self.fallback_cache[menu_id] = menu_data
            return menu_data

        except CacheException as e:
            self.log.append(f"Redis unavailable, using fallback cache: {e}")

            # Use fallback cache
            if menu_id in self.fallback_cache:
                return self.fallback_cache[menu_id]  # type: ignore[no-any-return]

            # Last resort - load from database
            return await self.load_menu_from_database(menu_id)

    async def warm_fallback_cache(self) -> None:
        """Pre-load frequently accessed items into fallback cache."""
        popular_menus = ["margherita", "pepperoni", "quattro_stagioni"]

        for menu_id in popular_menus:
            try:
                menu_data = await self.get_menu_with_fallback(menu_id)
                self.fallback_cache[menu_id] = menu_data
            except Exception as e:
                self.log.append(f"Failed to warm cache for {menu_id}: {e}")


async def test_resilient_menu_service_through_an_outage(server: RedisServer) -> None:
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
    repo_breaker = repo.circuit_breaker
    assert repo_breaker is not None
    events: list[str] = []
    repo_breaker.add_listener(lambda old, new: events.append(f"{old.value}->{new.value}"))
    try:
        # Healthy: a miss goes to the database and fills Redis; the next read is a hit.
        await service.warm_fallback_cache()
        assert service.database_loads == ["margherita", "pepperoni", "quattro_stagioni"]
        assert await service.get_menu_with_fallback("margherita") == MENUS["margherita"]
        assert service.database_loads == ["margherita", "pepperoni", "quattro_stagioni"]
        assert await repo.exists_async("mario_pizzeria:menu:margherita")

        # Outage: the service keeps answering from its own fallback dict.
        server.stop()
        loop = asyncio.get_running_loop()
        for _ in range(20):
            started = loop.time()
            assert await service.get_menu_with_fallback("pepperoni") == MENUS["pepperoni"]
            assert loop.time() - started <= 1.0 + 0.75  # bounded by the operation deadline
        assert service.log
        assert all(line.startswith("Redis unavailable, using fallback cache:") for line in service.log)
        # The service caught every CacheException, yet the repository's breaker opened...
        assert repo_breaker.state is CircuitState.OPEN
        assert "circuit" in service.log[-1]  # the later calls failed fast on the open circuit
        # ...while the page's method-level breaker never saw a failure.
        assert ResilientMenuService.circuit_breaker.state is CircuitState.CLOSED
        # A menu never read before comes from the database as a last resort.
        service.database_loads.clear()
        assert await service.get_menu_with_fallback("quattro_stagioni") == MENUS["quattro_stagioni"]
        service.fallback_cache.pop("quattro_stagioni")
        assert await service.get_menu_with_fallback("quattro_stagioni") == MENUS["quattro_stagioni"]
        assert service.database_loads == ["quattro_stagioni"]

        # Recovery: the same port, no action by the service; Redis is used again.
        server.start()
        deadline = loop.time() + 10
        while repo_breaker.state is not CircuitState.CLOSED and loop.time() < deadline:
            await service.get_menu_with_fallback("margherita")
            await asyncio.sleep(0.05)
        assert repo_breaker.state is CircuitState.CLOSED
        assert events[:2] == ["closed->open", "open->half_open"]
        assert events[-1] == "half_open->closed"
        service.log.clear()
        service.database_loads.clear()
        assert await service.get_menu_with_fallback("pepperoni") == MENUS["pepperoni"]
        assert service.log == []
        assert json.loads(await repo.get_async("mario_pizzeria:menu:pepperoni") or "null") == MENUS["pepperoni"]
    finally:
        await repo.disconnect()
