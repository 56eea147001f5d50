"""Redis Cluster: commands routed by hash slot over one multiplexed transport per node.

:class:`ClusterTransport` implements the transport contract for
``redis+cluster://`` and ``rediss+cluster://``. Modules: :mod:`.slots`
(hash slots, hash tags, the cross-slot error), :mod:`.commands` (where each
command's keys are, which commands only read), :mod:`.topology` (the slot
map and the redirections that change it), :mod:`.nodes` (one multiplexed
transport per node, push handlers and session hooks on all of them),
:mod:`.discovery` (reading, refreshing and following the slot map),
:mod:`.transport` (routing and recovery), :mod:`.fanout` (commands split by slot or sent to every node,
pipelines, transactions), :mod:`.info` (one ``INFO`` for the cluster) and
:mod:`.session` (``WATCH`` sessions). Semantics are told in
``docs/scale-out.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from ..multiplexed import ConnectionSettings
from .slots import cross_slot_error, key_slot
from .transport import ClusterTransport

if TYPE_CHECKING:
    from ...config import RedisConfig

__all__ = ["ClusterTransport", "build_cluster_transport", "cross_slot_error", "key_slot"]


def build_cluster_transport(config: RedisConfig) -> ClusterTransport:
    """The cluster transport for a ``redis+cluster://`` config (no I/O happens here)."""
    tls = config.scheme == "rediss"
    # The config normalises cluster_nodes to (host, port) pairs.
    seeds = cast("tuple[tuple[str, int], ...]", tuple(config.cluster_nodes or ()))

    def node_settings(host: str, port: int) -> ConnectionSettings:
        return ConnectionSettings.from_config(
            config, host=host, port=port, server_hostname=host if tls else None, unix_socket_path=None, db=0
        )

    return ClusterTransport(seeds, node_settings, read_from=config.read_from)
