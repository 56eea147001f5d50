"""Asking the sentinels where the primary and its replicas are.

The sentinels are asked in order; the one whose answer was confirmed is
moved to the front, so a dead or lagging sentinel costs one question once,
not on every resolution. Each sentinel gets one small multiplexed connection of its own,
with the sentinel credentials (``sentinel_username``/``sentinel_password``,
not the data's) and, for ``rediss+sentinel://``, the same TLS verification as
the data connections (the sentinel's own host name checked).

A sentinel that answers nil for the service does not monitor it; when every
sentinel that answered says so, the service name is wrong, and the error
names it (:class:`~neuroglia.data.redis.ConfigurationError`). When none
answers, the error lists what each one said
(:class:`~neuroglia.data.redis.CacheUnavailableError`, ``NOT_SENT``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any

from neuroglia.data.redis.exceptions import (
    CacheException,
    CacheTLSError,
    CacheUnavailableError,
    ConfigurationError,
    Delivery,
)

from ..multiplexed import ConnectionSettings, MultiplexedTransport
from ..multiplexed.connection import copy_error

__all__ = ["Address", "Replica", "SentinelResolver"]

Address = tuple[str, int]
"""``(host, port)`` of one server."""

# Sentinel flags of a replica that must not serve reads.
_UNUSABLE_FLAGS = frozenset({"s_down", "o_down", "disconnected"})


@dataclass(frozen=True, slots=True)
class Replica:
    """One replica as a sentinel describes it."""

    address: Address
    usable: bool  # up, linked to its primary, not flagged down


def format_address(address: Address) -> str:
    """``host:port`` (IPv6 hosts in brackets)."""
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class SentinelResolver:
    """The sentinels of one service, asked in order, responsive ones first."""

    def __init__(
        self,
        sentinels: Sequence[Address],
        service_name: str,
        settings_for: Any,
        *,
        timeout: float,
    ) -> None:
        """``settings_for(host, port)`` gives the :class:`ConnectionSettings` of one sentinel."""
        if not sentinels:
            raise ConfigurationError("sentinels: at least one sentinel address is needed")
        if not service_name:
            raise ConfigurationError("service_name: the sentinel URL must name the monitored service")
        self.service_name = service_name
        self.timeout = timeout
        self._order: list[Address] = list(dict.fromkeys(sentinels))
        self._settings_for = settings_for
        self._transports: dict[Address, MultiplexedTransport] = {}

    @property
    def sentinels(self) -> list[Address]:
        """The sentinels in the order they are asked (the last one that answered first)."""
        return list(self._order)

    def settings(self, address: Address) -> ConnectionSettings:
        """The connection settings of the sentinel at ``address``."""
        settings: ConnectionSettings = self._settings_for(*address)
        return settings

    def _transport(self, address: Address) -> MultiplexedTransport:
        transport = self._transports.get(address)
        if transport is None:
            transport = self._transports[address] = MultiplexedTransport(self.settings(address))
        return transport

    async def ask(self, *args: Any) -> Any:
        """Send ``args`` to the sentinels in order and return the first answer.

        Raises :class:`CacheUnavailableError` (``NOT_SENT``) when none answers.
        """
        failures: list[tuple[Address, CacheException]] = []
        loop = asyncio.get_running_loop()
        for sentinel in list(self._order):
            try:
                return await self._transport(sentinel).execute(args, loop.time() + self.timeout)
            except CacheException as exc:
                failures.append((sentinel, exc))
        raise self._none_answered(failures)

    async def primaries(self) -> AsyncGenerator[tuple[Address, Address], None]:
        """The primary's address as each sentinel reports it, in order, without repeats: ``(primary, sentinel)``.

        The sentinels are asked one by one as the caller asks for more: the
        first answer usually is the primary, and is then the only question.
        During a failover the sentinels disagree for a moment (the others
        learn the new primary from the leader within seconds), so a caller
        whose first candidate does not confirm asks for the next. Raises
        :class:`CacheUnavailableError` when no sentinel answers and
        :class:`ConfigurationError` when none knows the service.
        """
        args = ("SENTINEL", "get-master-addr-by-name", self.service_name)
        failures: list[tuple[Address, CacheException]] = []
        answered: list[Address] = []
        seen: set[Address] = set()
        loop = asyncio.get_running_loop()
        for sentinel in list(self._order):
            try:
                reply = await self._transport(sentinel).execute(args, loop.time() + self.timeout)
            except CacheException as exc:
                failures.append((sentinel, exc))
                continue
            answered.append(sentinel)
            if not (isinstance(reply, list) and len(reply) == 2):
                continue  # this sentinel does not monitor the service
            address = (_text(reply[0]), int(reply[1]))
            if address not in seen:
                seen.add(address)
                yield address, sentinel
        if not answered:
            raise self._none_answered(failures)
        if not seen:
            asked = ", ".join(format_address(address) for address in answered)
            raise ConfigurationError(
                f"service_name: no sentinel monitors a primary named {self.service_name!r} "
                f"(asked {asked}); check the service name in the sentinel URL (the name in 'sentinel monitor')"
            ).with_delivery(Delivery.NOT_SENT)

    def _none_answered(self, failures: list[tuple[Address, CacheException]]) -> CacheException:
        """The error when no sentinel answered: a refusal (sentinel credentials, ACL, TLS) says so, else an outage."""
        said = "; ".join(f"{format_address(sentinel)}: {exc}" for sentinel, exc in failures)
        refused = next(
            (
                exc
                for _, exc in failures
                if isinstance(exc, CacheTLSError) or not isinstance(exc, CacheUnavailableError)
            ),
            None,
        )
        if refused is not None:
            # Resending will not help: the sentinel credentials or the TLS trust are wrong.
            error = copy_error(refused, "", Delivery.NOT_SENT)
            error.args = (f"the sentinels of service {self.service_name!r} refused the connection: {said}",)
            return error
        return CacheUnavailableError(
            f"Redis unavailable: no sentinel of service {self.service_name!r} answered: {said}"
        ).with_delivery(Delivery.NOT_SENT)

    def prefer(self, sentinel: Address) -> None:
        """Ask ``sentinel`` first from now on (it answered with the confirmed primary)."""
        if sentinel in self._order and self._order[0] != sentinel:
            self._order.remove(sentinel)
            self._order.insert(0, sentinel)

    async def replicas(self) -> list[Replica]:
        """The service's replicas as the first answering sentinel describes them."""
        reply = await self.ask("SENTINEL", "replicas", self.service_name)
        found: list[Replica] = []
        for entry in reply if isinstance(reply, list) else []:
            fields = _fields(entry)
            try:
                address = (fields["ip"], int(fields["port"]))
            except (KeyError, ValueError):
                continue
            flags = set(fields.get("flags", "").split(","))
            usable = not (flags & _UNUSABLE_FLAGS) and fields.get("master-link-status", "ok") == "ok"
            found.append(Replica(address, usable))
        return found

    async def close(self) -> None:
        """Close the sentinel connections (a later question reopens them)."""
        transports, self._transports = list(self._transports.values()), {}
        for transport in transports:
            await transport.close()


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _fields(entry: Any) -> dict[str, str]:
    """A sentinel's flat ``[name, value, ...]`` list (or RESP3 map) as a dict of text."""
    if isinstance(entry, dict):
        return {_text(k): _text(v) for k, v in entry.items()}
    items = list(entry) if isinstance(entry, list) else []
    return {_text(k): _text(v) for k, v in zip(items[::2], items[1::2], strict=False)}
