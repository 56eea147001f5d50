"""Mario's Pizzeria as a Neuroglia application on Redis: :func:`create_app` and :func:`serve`.

What is registered, the framework's way:

==================================  ===============================================
``RedisRepository``                 the shared repository (``enable_metrics=True``)
``RedisEntityRepository[Pizza]``    the menu, as aggregates (scoped)
``RedisEntityRepository[Order]``    the orders, as aggregates (scoped)
``QueryCachingBehavior``            ``GetMenuQuery`` answered from Redis; the menu
                                    invalidated by ``AddPizzaCommand`` and by the
                                    ``PizzaPriceChanged`` domain event
``LeaseCoordinationBackend``        the kitchen's leader election
``Mediator``                        the handlers of :mod:`.application`
controllers                         :mod:`.api`, under ``/api``
``/health``, ``/ready``             the framework's observability endpoints, with
                                    the library's ``RedisHealthCheck``
``/metrics``                        the repository's and the cache's figures in the
                                    Prometheus text format
==================================  ===============================================

Hosted services (started and stopped by the application's lifespan): the
menu is seeded with the page's pizzas when it is empty, the kitchen's leader
election runs, and at shutdown the query cache and the repository are closed.

Each application gets a service collection of its own (the framework's
builders share one otherwise), so several can run in one process, as the
end-to-end test does with two instances electing one kitchen leader.
"""

# No ``from __future__ import annotations``: the framework reads the return
# annotations of the factories registered here.

import os
import secrets
import socket
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Response
from neuroglia.dependency_injection import ServiceCollection, ServiceProviderBase
from neuroglia.hosting.abstractions import HostedService
from neuroglia.hosting.web import SubAppConfig, WebApplicationBuilder
from neuroglia.mapping import Mapper
from neuroglia.mediation import Mediator
from neuroglia.observability import ApplicationSettingsWithObservability, Observability
from neuroglia.serialization.json import JsonSerializer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import Field

from ...config import RedisConfig
from ...exceptions import CacheException
from ...integration import (
    LeaseCoordinationBackend,
    RedisEntityRepository,
    RedisRepositoryHealthCheck,
    invalidates,
)
from ...observability import register_prometheus
from ...repository import RedisRepository
from .application import CookOrderCommand
from .domain import Order, Pizza, PizzaPriceChanged
from .kitchen import KitchenLeader, KitchenQueue

__all__ = ["DEFAULT_URL", "MENU", "MenuSeeder", "PizzeriaSettings", "create_app", "serve"]

DEFAULT_URL = "memory://mario-pizzeria"
KEY_PREFIX = "mario-pizzeria:"
METRICS_PREFIX = "mario_pizzeria_redis"
_PACKAGE = __name__.rpartition(".")[0]

MENU: tuple[tuple[str, Decimal, tuple[str, ...]], ...] = (
    ("Margherita", Decimal("12.99"), ("tomato", "mozzarella", "basil")),
    ("Pepperoni", Decimal("15.99"), ("tomato", "mozzarella", "pepperoni")),
    ("Quattro Stagioni", Decimal("16.50"), ("tomato", "mozzarella", "ham", "mushrooms", "artichokes", "olives")),
    ("Diavola", Decimal("14.50"), ("tomato", "mozzarella", "spicy salami", "chili")),
)
"""The pizzas of the framework's page, the menu of a new pizzeria."""


def _instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


class PizzeriaSettings(ApplicationSettingsWithObservability):
    """The application's settings (each also read from the environment: ``KITCHEN_BAKE_SECONDS=2``...).

    The framework's OpenTelemetry SDK stays off: the service's figures are
    served at ``/metrics`` from a registry of its own (the framework's
    ``/metrics`` serves the process-wide one, which two applications in one
    process could not share).
    """

    service_name: str = "mario-pizzeria"
    otel_enabled: bool = False
    observability_tracing_enabled: bool = False
    observability_metrics_enabled: bool = False
    observability_logging_enabled: bool = False
    observability_metrics_endpoint: bool = False
    instance_id: str = Field(default_factory=_instance_id)
    kitchen_lease_seconds: int = 5
    kitchen_bake_seconds: float = 0.5
    kitchen_poll_seconds: float = 0.2


class MenuSeeder:
    """A hosted service that puts the page's pizzas on the menu when the menu is empty."""

    def __init__(self, redis: RedisRepository) -> None:
        self.pizzas = RedisEntityRepository[Pizza, str](redis, Pizza, str)

    async def start_async(self) -> None:
        if await self.pizzas.count_async():
            return
        for name, price, toppings in MENU:
            try:
                await self.pizzas.add_async(Pizza(name, price, list(toppings)))
            except CacheException as exc:  # another instance seeded it meanwhile, or Redis is down
                if not await self.pizzas.contains_async(Pizza(name, price, []).state.id):
                    raise exc

    async def stop_async(self) -> None:
        """Nothing to do."""


class _ApplicationBuilder(WebApplicationBuilder):
    """A web application builder with a service collection of its own (the framework's share a class-level one)."""

    def __init__(self, settings: PizzeriaSettings) -> None:
        self.services = ServiceCollection()
        super().__init__(settings)


def _redis_config(url: str | None, settings: PizzeriaSettings, timeout: float | None) -> RedisConfig:
    target = url or settings.connection_strings.get("redis") or os.environ.get("REDIS_URL") or DEFAULT_URL
    fields: dict[str, Any] = {"url": target, "key_prefix": KEY_PREFIX, "enable_metrics": True}
    if timeout is not None:
        fields["operation_timeout"] = timeout
    return RedisConfig.from_env(metrics_prefix=METRICS_PREFIX, **fields)


def create_app(
    redis_url: str | None = None, settings: PizzeriaSettings | None = None, *, timeout: float | None = None
) -> FastAPI:
    """Build the pizzeria on ``redis_url``; nothing connects before the first request or the lifespan's start.

    ``redis_url`` defaults to the settings' ``redis`` connection string, then
    ``REDIS_URL``, then ``memory://mario-pizzeria``; the other ``REDIS_*``
    variables apply too. ``timeout`` bounds each Redis operation (seconds).
    """
    settings = settings if settings is not None else PizzeriaSettings()
    builder = _ApplicationBuilder(settings)
    services: Any = builder.services

    services.add_redis_repository(_redis_config(redis_url, settings, timeout))
    services.add_redis_entity_repository(Pizza, str)
    services.add_redis_entity_repository(Order, str)
    services.add_query_caching(invalidations={PizzaPriceChanged: invalidates(tags=["menu"])})
    services.add_redis_coordination()

    def queue_factory(provider: ServiceProviderBase) -> KitchenQueue:
        return kitchens[0].queue if kitchens else KitchenQueue(provider.get_required_service(RedisRepository))

    kitchens: list[KitchenLeader] = []

    def kitchen_factory(provider: ServiceProviderBase) -> KitchenLeader:
        if not kitchens:

            async def cook(order_id: str, cook: str, token: int) -> bool:
                mediator: Mediator = provider.get_required_service(Mediator)
                result = await mediator.execute_async(CookOrderCommand(order_id, cook, token))
                return bool(result.is_success or result.status == 404)  # a vanished order leaves the queue too

            kitchens.append(
                KitchenLeader(
                    provider.get_required_service(LeaseCoordinationBackend),
                    KitchenQueue(provider.get_required_service(RedisRepository)),
                    cook,
                    identity=settings.instance_id,
                    lease_seconds=settings.kitchen_lease_seconds,
                    bake_seconds=settings.kitchen_bake_seconds,
                    poll_seconds=settings.kitchen_poll_seconds,
                )
            )
        return kitchens[0]

    def seeder_factory(provider: ServiceProviderBase) -> MenuSeeder:
        return MenuSeeder(provider.get_required_service(RedisRepository))

    services.add_singleton(KitchenQueue, implementation_factory=queue_factory)
    services.add_singleton(KitchenLeader, implementation_factory=kitchen_factory)
    services.add_singleton(HostedService, implementation_factory=seeder_factory)
    services.add_singleton(HostedService, implementation_factory=kitchen_factory)

    Mediator.configure(builder, [f"{_PACKAGE}.application"])
    Mapper.configure(builder, [])
    JsonSerializer.configure(builder)
    # The library's health check: a HealthCheckProvider by registration with the framework's ABC.
    health_checks: list[Any] = [RedisRepositoryHealthCheck.from_services(builder.services)]
    Observability.configure(builder, health_check_providers=health_checks)
    builder.add_sub_app(
        SubAppConfig(path="/api", name="api", title="Mario's Pizzeria", controllers=[f"{_PACKAGE}.api"])
    )
    app = builder.build_app_with_lifespan(title="Mario's Pizzeria", description="Orders, menu and kitchen on Redis")

    registry = CollectorRegistry()
    register_prometheus(app.state.services.get_required_service(RedisRepository), registry)

    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
    app.state.settings = settings
    return app


def serve(
    redis_url: str | None = None, *, host: str = "127.0.0.1", port: int = 8080, timeout: float | None = None
) -> None:
    """Run the pizzeria with uvicorn until interrupted (``python -m neuroglia.data.redis app``)."""
    import uvicorn

    uvicorn.run(create_app(redis_url, timeout=timeout), host=host, port=port, log_level="info")
