"""The ``demo`` command: the framework page's Mario's Pizzeria services, end to end.

``python -m neuroglia.data.redis demo [--url URL]`` runs every example
service of the Redis Cache Repository page against ``memory://`` (the
embedded backend, the default) or a real server, checks what each step
does, and prints a report: the menu cache, customer sessions, the kitchen
queue, order processing and inventory under distributed locks with several
service instances racing, kitchen stations pulling from one queue, fencing
tokens refusing a stale holder's write, analytics, segmentation, custom
serialization, the resilient menu service through a simulated outage (the
circuit breaker opening, failing fast, the fallbacks, recovery), and a
metrics summary with the page's performance monitor.

Every key the demo writes lives under a fresh prefix (``demo:<random>:``),
and the clean-up at the end deletes that prefix only: the demo never flushes
a database and never touches keys it did not write. The outage is simulated
inside the process (the testing kit's fault-injecting transport): the server
is never stopped.

The modules:

* :mod:`.pizzeria`: the page's services, written once, as the page writes
  them (the tests that prove the page works import them from there too);
* :mod:`.context`: what the sections share: the run's repositories and
  outage, a section's context, the capture of what the services print;
* :mod:`.sections`: one module per topic (data structures, locks,
  resilience, serialization, metrics) and :data:`SECTIONS`, their order;
* :mod:`.report`: tables, results, header and summary;
* :mod:`.run`: :func:`run_demo`, one run from connection to clean-up.
"""

from .context import DemoCheckFailed, DemoContext, DemoRun, Section, ServiceProvider, provider
from .report import DemoResult, format_table
from .run import ServerRefused, ServerUnreachable, run_demo
from .sections import SECTIONS

__all__ = [
    "SECTIONS",
    "DemoCheckFailed",
    "DemoContext",
    "DemoResult",
    "DemoRun",
    "Section",
    "ServerRefused",
    "ServerUnreachable",
    "ServiceProvider",
    "format_table",
    "provider",
    "run_demo",
]
