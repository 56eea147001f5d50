"""The demo's sections, one module per topic, and :data:`SECTIONS`, the order they run in.

A section is ``async def my_section(ctx: DemoContext) -> None`` (see
:mod:`..context`) that runs the page's services of :mod:`..pizzeria` and
reports with ``ctx.table``, ``ctx.note`` and ``ctx.check``. To add one,
write it in the module of its topic (or a new one) and insert
``Section("Title", "ServiceName", my_section)`` into :data:`SECTIONS`,
before the metrics section, which reports on everything run before it.
"""

from ..context import Section
from .caching import caching_section
from .data_structures import (
    analytics_section,
    kitchen_queue_section,
    menu_cache_section,
    segmentation_section,
    sessions_section,
)
from .locks import fencing_section, kitchen_stations_section, locks_section
from .metrics import metrics_section
from .resilience import resilience_section
from .serialization import serialization_section

__all__ = ["SECTIONS"]

SECTIONS: tuple[Section, ...] = (
    Section("Menu cache", "MenuCacheService", menu_cache_section),
    Section("Customer sessions", "CustomerSessionService", sessions_section),
    Section("Kitchen queue", "KitchenQueueService", kitchen_queue_section),
    Section("Distributed locking", "OrderProcessingService", locks_section),
    Section("Kitchen stations", "KitchenQueueService", kitchen_stations_section),
    Section("Fencing tokens", "DistributedLock", fencing_section),
    Section("Real-time analytics", "PizzaAnalyticsService", analytics_section),
    Section("Customer segmentation", "CustomerSegmentationService", segmentation_section),
    Section("Custom serialization", "CustomSerializationService", serialization_section),
    Section("Resilience", "ResilientMenuService", resilience_section),
    Section("Cache layer", "RedisCache", caching_section),
    Section("Metrics", "CachePerformanceMonitor", metrics_section),
)
"""The demo's parts, in order. Metrics comes last: it reports on everything before it."""
