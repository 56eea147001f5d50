"""``INFO`` of a whole cluster: every primary's reply merged into one, in the server's text format.

The repository parses ``INFO`` as text (``field:value`` lines under
``# Section`` headers), so the merge keeps that shape:

* counters and sizes are summed over the primaries: ``keyspace_hits``,
  ``total_commands_processed``, ``used_memory``, ``connected_clients``,
  ``expired_keys``, ``instantaneous_ops_per_sec``, ``dbN:keys=..,expires=..``
  and the like (what an operator reads as "the cluster's");
  their ``*_human`` forms are recomputed from the sums;
* everything else (``redis_version``, ``redis_mode``, ``role``, ratios,
  settings) is the first primary's value;
* ``cluster_primaries:N`` is added to the ``# Cluster`` section.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["merge_info"]

_SUMMED_PREFIXES = (
    "total_",
    "keyspace_",
    "expired_",
    "evicted_",
    "used_memory",
    "connected_clients",
    "blocked_clients",
    "tracking_clients",
    "clients_in_timeout_table",
    "instantaneous_ops_per_sec",
    "instantaneous_input_kbps",
    "instantaneous_output_kbps",
    "rejected_connections",
    "pubsub_",
    "tracking_total_",
    "stat_",
    "acl_access_denied_",
)
_NOT_SUMMED_SUFFIXES = ("_human", "_perc", "_ratio", "_policy", "_startup")


def _text(reply: Any) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


def _summed(field: str, value: str) -> bool:
    return field.startswith(_SUMMED_PREFIXES) and not field.endswith(_NOT_SUMMED_SUFFIXES) and _is_int(value)


def _is_int(value: str) -> bool:
    try:
        int(value)
    except ValueError:
        return False
    return True


def _human(size: int) -> str:
    """Bytes the way Redis prints them (``1.50M``)."""
    value = float(size)
    for unit in ("B", "K", "M", "G", "T"):
        if value < 1024 or unit == "T":
            return f"{int(value)}B" if unit == "B" else f"{value:.2f}{unit}"
        value /= 1024
    return f"{size}B"  # pragma: no cover


def _keyspace(values: list[str]) -> str:
    """``keys=3,expires=1,avg_ttl=0`` lines of several nodes: keys and expires summed, the rest the first's."""
    merged: dict[str, int | str] = {}
    for value in values:
        for item in value.split(","):
            name, _, number = item.partition("=")
            if name in ("keys", "expires") and _is_int(number):
                merged[name] = int(merged.get(name, 0)) + int(number)
            else:
                merged.setdefault(name, number)
    return ",".join(f"{k}={v}" for k, v in merged.items())


def merge_info(replies: Sequence[Any]) -> bytes:
    """One ``INFO`` text for several nodes' replies (see the module docstring)."""
    sections: dict[str, dict[str, list[str]]] = {}
    for reply in replies:
        section = ""
        for line in _text(reply).splitlines():
            if line.startswith("#"):
                section = line[1:].strip()
                sections.setdefault(section, {})
                continue
            field, sep, value = line.partition(":")
            if not sep:
                continue
            sections.setdefault(section, {}).setdefault(field, []).append(value)
    lines: list[str] = []
    for section, fields in sections.items():
        if section:
            lines.append(f"# {section}")
        for field, values in fields.items():
            if section == "Keyspace":
                value = _keyspace(values)
            elif _summed(field, values[0]):
                value = str(sum(int(v) for v in values if _is_int(v)))
            elif field.endswith("_human") and field[: -len("_human")] in fields:
                base = fields[field[: -len("_human")]]
                value = _human(sum(int(v) for v in base if _is_int(v))) if _is_int(base[0]) else values[0]
            else:
                value = values[0]
            lines.append(f"{field}:{value}")
        if section == "Cluster":
            lines.append(f"cluster_primaries:{len(replies)}")
        lines.append("")
    return "\r\n".join(lines).encode()
