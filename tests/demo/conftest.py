"""Fixtures of the demo suite: the demo application runs on memory and one server.

It uses the entity repository and the coordination backend, whose key
layouts are not cluster-ready yet (see ``tests/integration/conftest.py``).
"""

from __future__ import annotations

import pytest

from tests.conftest import STANDALONE_BACKENDS, backend_url_for


@pytest.fixture(params=STANDALONE_BACKENDS)
def backend_url(request: pytest.FixtureRequest) -> str:
    """Memory and one server only (see the module docstring)."""
    return backend_url_for(request, request.param)
