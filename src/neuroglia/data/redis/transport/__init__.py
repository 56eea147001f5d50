"""Transports: how commands reach Redis (the contract and its implementations)."""

from .contract import Args, PoolStats, Transport

__all__ = ["Args", "PoolStats", "Transport"]
