"""The example service, Mario's Pizzeria on the framework, driven over HTTP end to end.

The application is built by ``create_app`` exactly as ``python -m
neuroglia.data.redis app`` builds it, its lifespan run (the menu seeded, the
kitchen's election started), and driven with httpx's ASGI transport, on
memory:// and on a real server: place an order, read the menu twice (the
second read is a cache hit, as ``/metrics`` shows), change the menu (a price
through a domain event, a new pizza through a command: both invalidate it),
watch the kitchen's leader cook the order with its fencing token, and read
``/health`` and ``/metrics``. Two instances on one Redis elect one kitchen
leader, which hands over when it stops. The command line serves it on a real
port.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest

from neuroglia.data.redis.demo.app import PizzeriaSettings, create_app
from neuroglia.data.redis.testing import RedisEndpoint, free_port
from tests.support.isolation import run_without_framework

TIMEOUT = 10.0  # seconds any wait of these tests may take at most


def settings(**fields: Any) -> PizzeriaSettings:
    """Fast kitchen settings: no baking time, a short lease, a quick poll."""
    return PizzeriaSettings(kitchen_bake_seconds=0, kitchen_lease_seconds=2, kitchen_poll_seconds=0.05, **fields)


@asynccontextmanager
async def running(url: str, **fields: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The pizzeria on ``url``, its lifespan started, and an HTTP client for it (stopped at the end)."""
    app = create_app(url, settings(**fields))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://pizzeria") as client:
            yield client


async def eventually(check: Callable[[], Awaitable[Any]], what: str) -> Any:
    """Poll ``check`` until it returns something truthy, for at most TIMEOUT seconds."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {TIMEOUT} s: {what}")
        await asyncio.sleep(0.05)


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one series in a Prometheus exposition (0.0 when it is absent)."""
    rendered = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.escape(f"mario_pizzeria_redis_{name}" + (f"{{{rendered}}}" if labels else "")) + r" (\S+)"
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


async def cache_figures(client: httpx.AsyncClient) -> tuple[float, float]:
    text = (await client.get("/metrics")).text
    hits = metric(text, "rediscache_hits_total", cache="queries", source="redis")
    return hits, metric(text, "rediscache_misses_total", cache="queries")


async def ready_order(client: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    async def cooked() -> dict[str, Any] | None:
        order: dict[str, Any] = (await client.get(f"/api/orders/{order_id}")).json()
        return order if order["status"] == "ready" else None

    result: dict[str, Any] = await eventually(cooked, f"order {order_id} cooked")
    return result


async def test_the_pizzeria_over_http(backend_url: str, repo_factory: Any) -> None:
    async with running(backend_url, instance_id="pizzeria-1") as client:
        # The menu: a miss, then a hit that never reaches the handler.
        menu = await client.get("/api/menu")
        assert menu.status_code == 200
        pizzas = {p["id"]: p for p in menu.json()["pizzas"]}
        assert sorted(pizzas) == ["diavola", "margherita", "pepperoni", "quattro-stagioni"]
        assert pizzas["margherita"]["price"] == "12.99"
        assert (await client.get("/api/menu")).json() == menu.json()
        assert await cache_figures(client) == (1.0, 1.0)

        # An order, cooked by the kitchen's leader (this instance), its write fenced.
        placed = await client.post("/api/orders", json={"customer": "Luigi", "pizzas": ["Margherita", "diavola"]})
        assert placed.status_code == 201
        order = placed.json()
        assert (order["status"], order["total"], order["pizzas"]) == ("placed", "27.49", ["margherita", "diavola"])
        cooked = await ready_order(client, order["id"])
        assert cooked["cooked_by"] == "pizzeria-1"
        assert cooked["fencing_token"] >= 1
        kitchen = (await client.get("/api/kitchen")).json()
        assert kitchen["leader"] is True
        assert kitchen["instance"] == "pizzeria-1"
        assert kitchen["fencing_token"] == cooked["fencing_token"]
        assert (kitchen["queued"], kitchen["cooked"]) == (0, 1)

        # A price change invalidates the menu through its domain event (PizzaPriceChanged).
        changed = await client.put("/api/menu/margherita/price", json={"price": "13.50"})
        assert changed.status_code == 200
        after_price = {p["id"]: p for p in (await client.get("/api/menu")).json()["pizzas"]}
        assert after_price["margherita"]["price"] == "13.50"
        assert await cache_figures(client) == (1.0, 2.0)

        # A new pizza invalidates it through the command's declaration (AddPizzaCommand).
        added = await client.post("/api/menu", json={"name": "Capricciosa", "price": "15.00", "toppings": ["ham"]})
        assert added.status_code == 201
        assert "capricciosa" in {p["id"] for p in (await client.get("/api/menu")).json()["pizzas"]}
        assert (await client.get("/api/menu")).status_code == 200
        assert await cache_figures(client) == (2.0, 3.0)

        # What the handlers refuse: the problem details, never cached.
        unknown = await client.post("/api/orders", json={"customer": "Luigi", "pizzas": ["hawaii"]})
        assert unknown.status_code == 400
        assert "not on the menu: hawaii" in unknown.text
        assert (await client.get("/api/orders/no-such-order")).status_code == 404
        assert (await client.post("/api/menu", json={"name": "Margherita", "price": "9"})).status_code == 409
        assert (await client.put("/api/menu/margherita/price", json={"price": "-1"})).status_code == 400

        # Health and metrics.
        health = (await client.get("/health")).json()
        assert health["status"] == "healthy"
        assert health["dependencies"]["redis"]["status"] == "healthy"
        assert (await client.get("/ready")).json()["checks"]["redis"] == "ready"
        exposition = await client.get("/metrics")
        assert exposition.headers["content-type"].startswith("text/plain")
        assert metric(exposition.text, "commands_total", command="EVALSHA") > 0
        assert metric(exposition.text, "rediscache_factory_runs_total", cache="queries", outcome="ok") == 3.0
        assert metric(exposition.text, "circuit_breaker_open") == 0.0


class Instance:
    """One instance of the service, started and stopped at will (stopping twice is harmless)."""

    def __init__(self, url: str, name: str) -> None:
        self.url, self.name = url, name
        self._stack = AsyncExitStack()
        self.client: httpx.AsyncClient | None = None

    async def start(self) -> httpx.AsyncClient:
        self.client = await self._stack.enter_async_context(running(self.url, instance_id=self.name))
        return self.client

    async def stop(self) -> None:
        await self._stack.aclose()


async def test_two_instances_elect_one_kitchen_leader_which_hands_over(backend_url: str, repo_factory: Any) -> None:
    instances = [Instance(backend_url, "pizzeria-a"), Instance(backend_url, "pizzeria-b")]
    try:
        clients = {instance.name: await instance.start() for instance in instances}

        async def leaders() -> list[str]:
            found = [name for name, c in clients.items() if (await c.get("/api/kitchen")).json()["leader"]]
            return found if len(found) == 1 else []

        (leader,) = await eventually(leaders, "exactly one kitchen leader")
        orders = []
        for client in [*clients.values(), *clients.values()]:  # placed through both instances
            placed = await client.post("/api/orders", json={"customer": "Mario", "pizzas": ["pepperoni"]})
            orders.append(placed.json()["id"])
        cooked = [await ready_order(clients[leader], order_id) for order_id in orders]
        assert {o["cooked_by"] for o in cooked} == {leader}
        first_token = cooked[0]["fencing_token"]
        assert (await clients[leader].get("/api/kitchen")).json()["cooked"] == 4

        # The leader stops (its lease is given up): the other instance takes the kitchen over.
        await next(i for i in instances if i.name == leader).stop()
        follower = next(name for name in clients if name != leader)
        survivor = clients[follower]

        async def took_over() -> bool:
            return bool((await survivor.get("/api/kitchen")).json()["leader"])

        await eventually(took_over, f"{follower} leading after {leader} stopped")
        placed = await survivor.post("/api/orders", json={"customer": "Peach", "pizzas": ["diavola"]})
        handed_over = await ready_order(survivor, placed.json()["id"])
        assert handed_over["cooked_by"] == follower
        assert handed_over["fencing_token"] > first_token  # a newer lease, a larger token
    finally:
        for instance in instances:
            await instance.stop()


# -- the command line ----------------------------------------------------------------------


def serve(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "neuroglia.data.redis", "app", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "KITCHEN_BAKE_SECONDS": "0"},
    )


def stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        output, _ = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return process.returncode, output


@pytest.mark.parametrize("where", ["memory", pytest.param("redis", marks=pytest.mark.integration)])
def test_the_app_command_serves_the_pizzeria(where: str, request: pytest.FixtureRequest) -> None:
    url = "memory://mario-pizzeria"
    if where == "redis":
        endpoint: RedisEndpoint = request.getfixturevalue("redis_server")
        url = endpoint.url
    port = free_port()
    process = serve("--url", url, "--port", str(port))
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + TIMEOUT * 2  # a fresh interpreter imports the framework first
        while True:
            try:
                health = httpx.get(f"{base}/health", timeout=2)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"the app did not answer: {stop(process)}") from None
                time.sleep(0.1)
        assert health.json()["dependencies"]["redis"]["status"] == "healthy"
        menu = httpx.get(f"{base}/api/menu", timeout=5).json()
        assert Decimal(next(p["price"] for p in menu["pizzas"] if p["id"] == "margherita")) > 0
        placed = httpx.post(f"{base}/api/orders", json={"customer": "Toad", "pizzas": ["Diavola"]}, timeout=5)
        assert placed.status_code == 201
    finally:
        code, output = stop(process)
    assert code == 0, output
    assert "Application shutdown complete" in output


def test_the_app_command_says_when_redis_cannot_be_reached() -> None:
    process = serve("--url", f"redis://127.0.0.1:{free_port()}/0", "--timeout", "1")
    try:
        output, _ = process.communicate(timeout=TIMEOUT * 2)
    finally:
        stop(process)
    assert process.returncode == 3, output
    assert "Redis unreachable at redis://127.0.0.1:" in output


def test_without_the_framework_the_app_command_says_what_to_install() -> None:
    result = run_without_framework(
        """
        from neuroglia.data.redis.__main__ import main

        print("exit", main(["app"]))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "exit 2"
    assert "the example service needs the framework: pip install 'neuroglia-redis[neuroglia]'" in result.stderr
