"""The testing kit's transports: the fault injector never lets a refused command through.

The demo's simulated outage is a :class:`FaultInjectingTransport` in front of
the real transport; here the inner transport is a :class:`MockTransport`
that answers PING and records what reaches it.
"""

from __future__ import annotations

import pytest

from neuroglia.data.redis import CacheUnavailableError, CircuitOpenError, RedisConfig, RedisRepository
from neuroglia.data.redis.testing import FaultInjectingTransport, Faults, MockTransport


async def test_an_outage_never_lets_a_command_through() -> None:
    faults = Faults()
    inner = MockTransport(handler=lambda args: b"PONG")
    config = RedisConfig(circuit_breaker={"failure_threshold": 2, "recovery_timeout": 60}, retry_policy={"retries": 1})
    repo = RedisRepository(config, transport=FaultInjectingTransport(inner, faults))
    assert await repo.ping()
    assert len(inner.sent) == 1
    faults.outage = True
    with pytest.raises(
        CacheUnavailableError, match=r"PING: Redis unavailable: \[Errno \d+\] Connection refused \(simulated outage\)"
    ):
        await repo.ping()
    with pytest.raises(CacheUnavailableError):
        async with repo.pipeline() as pipe:
            pipe.ping()
    with pytest.raises(CircuitOpenError):  # two failed operations opened the breaker
        await repo.ping()
    assert faults.refused == 4  # each operation twice: a refused connection sent nothing, so it is retried
    assert len(inner.sent) == 1  # nothing reached the transport behind the faults
    assert inner.batches == []
    faults.outage = False
    breaker = repo.circuit_breaker
    assert breaker is not None
    breaker.reset()
    assert await repo.ping()
    assert len(inner.sent) == 2
    await repo.disconnect()
    assert inner.closed == 0  # an injected transport belongs to whoever injected it
