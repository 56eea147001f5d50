"""Mario's Pizzeria, the framework page's example, as a small Neuroglia service on Redis.

::

    python -m neuroglia.data.redis app                                   # memory://, http://127.0.0.1:8080
    python -m neuroglia.data.redis app --url redis://127.0.0.1:6379/0 --port 8081

or, with any ASGI server: ``uvicorn --factory neuroglia.data.redis.demo.app:create_app``
(``REDIS_URL`` names the server). It shows the library's framework adapters
working together:

* orders and pizzas are aggregates in
  :class:`~neuroglia.data.redis.integration.RedisEntityRepository`, their
  domain events published through the mediator after each write;
* ``GET /api/menu`` is ``GetMenuQuery``, answered from Redis by the
  :class:`~neuroglia.data.redis.integration.QueryCachingBehavior` and made
  stale by ``AddPizzaCommand`` and by the ``PizzaPriceChanged`` event;
* one instance leads the kitchen, elected through the
  :class:`~neuroglia.data.redis.integration.LeaseCoordinationBackend`: it
  cooks queued orders only while it holds the lease, fencing its writes;
* ``/health`` (the library's ``RedisHealthCheck``) and ``/metrics``
  (Prometheus).

Needs the ``neuroglia`` extra (the framework), as every adapter does.

Modules: :mod:`.domain` (aggregates and events), :mod:`.application`
(commands, queries, handlers), :mod:`.kitchen` (the queue and the leader),
:mod:`.api` (controllers), :mod:`.host` (:func:`create_app`, :func:`serve`).
"""

from .host import DEFAULT_URL, PizzeriaSettings, create_app, serve

__all__ = ["DEFAULT_URL", "PizzeriaSettings", "create_app", "serve"]
