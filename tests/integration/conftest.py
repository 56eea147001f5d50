"""Fixtures of the integration suites (the framework adapters' tests use these).

The repository fixtures themselves (``backend``, ``backend_url``,
``repo_factory``, the plugin's ``redis_server``) come from ``tests/conftest.py``.
``fresh_services`` gives a test its own class-level ``ServiceCollection``:
the framework's builders share one unless each is given its own, so that
registrations of one test would otherwise leak into the next.
"""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def fresh_services(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A new, empty class-level ServiceCollection for the framework's builders (restored after the test)."""
    from neuroglia.dependency_injection import ServiceCollection
    from neuroglia.hosting.abstractions import ApplicationBuilderBase

    services = ServiceCollection()
    monkeypatch.setattr(ApplicationBuilderBase, "services", services)
    return services
