"""The nodes of a cluster: one multiplexed transport per node, and what every node's connections share.

Push handlers and session hooks (the near cache's ``CLIENT TRACKING``) are
given to every node's transport, the ones already made and those the
cluster names later, so a feature that needs them works on a cluster as on
one server.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from neuroglia.data.redis.exceptions import ConfigurationError

from ..contract import Args
from ..multiplexed import ConnectionSettings, MultiplexedTransport, PushHandler, SessionHook
from .topology import Address

__all__ = ["ClusterHook", "Nodes"]


class Nodes:
    """The node transports of one cluster (made on first use) and what they share."""

    def __init__(self, seeds: Sequence[Address], node_settings: Callable[[str, int], ConnectionSettings]) -> None:
        if not seeds:
            raise ConfigurationError("cluster_nodes: at least one seed node is needed")
        self._seeds = [(str(h), int(p)) for h, p in seeds]
        self._node_settings = node_settings
        self._nodes: dict[Address, MultiplexedTransport] = {}
        self._readonly: set[Address] = set()
        self._push_handlers: list[PushHandler] = []
        self._hooks: list[ClusterHook] = []
        self._node_ids: dict[Address, int] = {}
        self._settings: ConnectionSettings | None = None

    def node(self, address: Address, *, replica: bool = False) -> MultiplexedTransport:
        """The transport of the node at ``address`` (made on first use; ``READONLY`` on it for replica reads)."""
        transport = self._nodes.get(address)
        if transport is None:
            transport = self._nodes[address] = MultiplexedTransport(self._node_settings(*address))
            for handler in self._push_handlers:
                transport.add_push_handler(handler)
            for hook in self._hooks:
                self._attach(hook, address, transport)
        if replica and address not in self._readonly:
            self._readonly.add(address)
            transport.add_session_hook((("READONLY",),))
        return transport

    @property
    def settings(self) -> ConnectionSettings:
        """The connection settings of the first seed (every node's are the same but for the address)."""
        if self._settings is None:
            self._settings = self._node_settings(*self._seeds[0])
        return self._settings

    # -- push messages and session hooks, on every node (for the near cache) ----------------

    def add_push_handler(self, handler: PushHandler) -> None:
        """Call ``handler`` with the push messages of every node's shared connections (now and later)."""
        self._push_handlers.append(handler)
        for transport in self._nodes.values():
            transport.add_push_handler(handler)

    def remove_push_handler(self, handler: PushHandler) -> None:
        """Stop calling ``handler``."""
        if handler in self._push_handlers:
            self._push_handlers.remove(handler)
        for transport in self._nodes.values():
            transport.remove_push_handler(handler)

    def add_session_hook(
        self,
        commands: Sequence[Args],
        *,
        on_ready: Callable[[int], None] | None = None,
        on_lost: Callable[[int], None] | None = None,
    ) -> ClusterHook:
        """Run ``commands`` on every shared connection of every node, now and later (see the multiplexed transport).

        ``on_ready``/``on_lost`` get a connection number unique across the
        nodes (the node's number times 2**32 plus its own connection number).
        """
        hook = ClusterHook(tuple(tuple(a) for a in commands), on_ready, on_lost)
        self._hooks.append(hook)
        for address, transport in list(self._nodes.items()):
            self._attach(hook, address, transport)
        return hook

    def remove_session_hook(self, hook: ClusterHook) -> None:
        """Stop running ``hook`` on new connections and stop its callbacks."""
        if hook in self._hooks:
            self._hooks.remove(hook)
        for address, inner in hook.per_node.items():
            transport = self._nodes.get(address)
            if transport is not None:
                transport.remove_session_hook(inner)
        hook.per_node.clear()

    def _attach(self, hook: ClusterHook, address: Address, transport: MultiplexedTransport) -> None:
        base = self._node_ids.setdefault(address, len(self._node_ids)) << 32
        ready, lost = hook.on_ready, hook.on_lost
        hook.per_node[address] = transport.add_session_hook(
            hook.commands,
            on_ready=None if ready is None else (lambda serial: ready(base + serial)),
            on_lost=None if lost is None else (lambda serial: lost(base + serial)),
        )


@dataclass(eq=False)
class ClusterHook:
    """A session hook of the cluster: the same hook on every node's transport (see ``add_session_hook``)."""

    commands: tuple[Args, ...]
    on_ready: Callable[[int], None] | None = None
    on_lost: Callable[[int], None] | None = None
    per_node: dict[Address, SessionHook] = field(default_factory=dict)
