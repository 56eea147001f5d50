"""The page's services live in one place, and the demo runs them without the optional extras."""

from __future__ import annotations

import ast
from pathlib import Path

from neuroglia.data.redis.demo import pizzeria
from tests.support.isolation import run_without_framework

ROOT = Path(__file__).resolve().parents[2]
PAGE_SERVICES = (
    "MenuCacheService",
    "CustomerSessionService",
    "OrderProcessingService",
    "KitchenQueueService",
    "PizzaAnalyticsService",
    "CustomerSegmentationService",
    "ResilientMenuService",
    "CustomSerializationService",
    "CachePerformanceMonitor",
)


def class_definitions(name: str) -> list[str]:
    """Where a class ``name`` is defined in the source and the tests (``path:line``)."""
    found = []
    for folder in ("src", "tests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            found += [
                f"{path.relative_to(ROOT)}:{node.lineno}"
                for node in ast.walk(tree)
                if isinstance(node, ast.ClassDef) and node.name == name
            ]
    return found


def test_each_page_service_is_written_once() -> None:
    for name in PAGE_SERVICES:
        places = class_definitions(name)
        assert len(places) == 1, places
        assert places[0].startswith("src/neuroglia/data/redis/demo/pizzeria.py:"), places
        assert getattr(pizzeria, name).__module__ == pizzeria.__name__


def test_the_module_exports_the_services_and_the_completions() -> None:
    assert set(PAGE_SERVICES) <= set(pizzeria.__all__)
    for name in pizzeria.__all__:
        assert hasattr(pizzeria, name), name


def test_the_demo_runs_without_the_framework_and_without_msgpack() -> None:
    # What an install without the neuroglia and msgpack extras looks like: both imports fail.
    done = run_without_framework(
        """
        from neuroglia.data.redis.__main__ import main
        from neuroglia.data.redis.demo import pizzeria

        assert pizzeria.msgpack is None
        assert pizzeria.ServiceProviderBase.__module__ == pizzeria.__name__
        assert "neuroglia.dependency_injection" not in sys.modules
        sys.exit(main(["demo"]))
        """,
        hide=["msgpack"],
        timeout=90,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "msgpack is not installed: pip install 'neuroglia-redis[msgpack]'" in done.stdout
    assert done.stdout.rstrip().splitlines()[-1].startswith("All ")
