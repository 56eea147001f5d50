"""A Sentinel group whose data servers and sentinels each require their own password.

The URL's ``user:password@`` is the data servers'; ``?sentinel_password=``
the sentinels'. Each wrong or missing one is refused with an error that says
which, not taken for an outage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from neuroglia.data.redis import CacheAuthenticationError, RedisConfig
from neuroglia.data.redis.testing import SentinelGroup, redis_server_binary
from tests.sentinel.conftest import SentinelRepositories
from tests.support.cache import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

DATA_PASSWORD = "data-secret"
SENTINEL_PASSWORD = "sentinel-secret"


@pytest.fixture(scope="module")
def sentinel_group() -> Iterator[SentinelGroup]:
    """This module's group, with passwords on both sides (shadows the plugin's fixture)."""
    assert redis_server_binary() is not None
    with SentinelGroup(password=DATA_PASSWORD, sentinel_password=SENTINEL_PASSWORD) as group:
        yield group


def hosts(group: SentinelGroup) -> str:
    return ",".join(f"{host}:{port}" for host, port in group.sentinel_addresses)


async def test_both_passwords_reach_the_primary_and_follow_a_failover(
    sentinel_repo: SentinelRepositories, sentinel_group: SentinelGroup
) -> None:
    repo = sentinel_repo(circuit_breaker=False)  # the group's URL carries both passwords
    assert SENTINEL_PASSWORD not in repr(repo.config)
    assert DATA_PASSWORD not in repr(repo.config)
    await repo.set_async("secret", "kept")
    old = sentinel_repo.transport(repo).primary_address
    new = await asyncio.to_thread(sentinel_group.failover)
    # Without a command failing, only the +switch-master subscription (authenticated too) tells it.
    transport = sentinel_repo.transport(repo)
    await eventually(lambda: transport.primary_address == new, within=10, what="the transport follows the switch")
    assert sentinel_repo.transport(repo).primary_address == new != old
    await repo.set_async("after", "failover")
    assert await repo.get_async("secret") == "kept"


async def test_a_wrong_sentinel_password_is_an_authentication_error(
    sentinel_repo: SentinelRepositories, sentinel_group: SentinelGroup
) -> None:
    url = f"redis+sentinel://:{DATA_PASSWORD}@{hosts(sentinel_group)}/neuroglia?sentinel_password=wrong"
    repo = sentinel_repo(url, retry_policy={"retries": 0})
    with pytest.raises(CacheAuthenticationError, match="sentinels of service 'neuroglia' refused"):
        await asyncio.wait_for(repo.get_async("k"), 10)


async def test_a_missing_data_password_is_an_authentication_error(
    sentinel_repo: SentinelRepositories, sentinel_group: SentinelGroup
) -> None:
    url = f"redis+sentinel://{hosts(sentinel_group)}/neuroglia?sentinel_password={SENTINEL_PASSWORD}"
    repo = sentinel_repo(url, retry_policy={"retries": 0})
    with pytest.raises(CacheAuthenticationError):
        await asyncio.wait_for(repo.get_async("k"), 10)


def test_the_sentinel_password_can_be_a_field(sentinel_group: SentinelGroup) -> None:
    config = RedisConfig(
        url=f"redis+sentinel://:{DATA_PASSWORD}@{hosts(sentinel_group)}/neuroglia",
        sentinel_password=SENTINEL_PASSWORD,
    )
    assert config.sentinel_password == SENTINEL_PASSWORD
    assert config.password == DATA_PASSWORD
