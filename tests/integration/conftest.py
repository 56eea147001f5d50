"""Fixtures of the framework-integration suite.

``pytester`` (pytest's own plugin for testing plugins) is enabled here with a
hook rather than ``pytest_plugins``, which pytest refuses in a conftest that
is not at the top of the run.

The Neuroglia framework's builders share one class-level ``ServiceCollection``
(``ApplicationBuilderBase.services``); ``fresh_services`` gives each test its
own, so that registrations of one test never leak into the next.
"""

from __future__ import annotations

from typing import Any

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")


@pytest.fixture
def fresh_services(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A new, empty class-level ServiceCollection for the framework's builders (restored after the test)."""
    from neuroglia.dependency_injection import ServiceCollection
    from neuroglia.hosting.abstractions import ApplicationBuilderBase

    services = ServiceCollection()
    monkeypatch.setattr(ApplicationBuilderBase, "services", services)
    return services
