"""A separate OS process with a near cache, driven line by line: ``python near_worker.py URL``.

It prints ``READY`` once connected, then answers each JSON request on stdin
with one JSON line on stdout:

``{"op": "get", "key": K}``                  ``get_async`` -> ``{"value": ...}``
``{"op": "hgetall", "key": K}``              ``hgetall_async``
``{"op": "get_many", "keys": [...]}``        ``get_many_async``
``{"op": "cache_get", "key": K}``            ``RedisCache(repo, "menu").get_async``
``{"op": "wait", "read": OP, "key": K, "value": V, "within": S}``
    repeat the read OP until it answers V (at most S seconds, 1 ms apart):
    ``{"seen": bool, "elapsed": seconds, "reads": n}``
``{"op": "stats"}``                          the near cache's and the cache's figures
``{"op": "quit"}``
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import asdict
from typing import Any

from neuroglia.data.redis import RedisCache, RedisConfig, RedisRepository


async def _line() -> str:
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def serve(url: str) -> None:
    repo = RedisRepository(RedisConfig(url=url, key_prefix="proc:", near_cache={"heartbeat_interval": 0.5}))
    await repo.connect()
    cache = RedisCache(repo, "menu", default_expiration=600)
    near = repo.near_cache
    assert near is not None

    async def read(op: str, request: dict[str, Any]) -> Any:
        if op == "get":
            return await repo.get_async(request["key"])
        if op == "hgetall":
            return await repo.hgetall_async(request["key"])
        if op == "get_many":
            return await repo.get_many_async(request["keys"])
        if op == "cache_get":
            return await cache.get_async(request["key"])
        raise ValueError(op)

    print("READY", flush=True)
    try:
        while True:
            line = await _line()
            if not line:
                return
            request = json.loads(line)
            op = request["op"]
            if op == "quit":
                return
            if op == "stats":
                reply: dict[str, Any] = {"near": asdict(near.statistics()), "cache": asdict(cache.statistics())}
            elif op == "wait":
                started = time.monotonic()
                reads = 0
                seen = False
                while time.monotonic() - started < request["within"]:
                    reads += 1
                    if await read(request["read"], request) == request["value"]:
                        seen = True
                        break
                    await asyncio.sleep(0.001)
                reply = {"seen": seen, "elapsed": time.monotonic() - started, "reads": reads}
            else:
                reply = {"value": await read(op, request)}
            print(json.dumps(reply), flush=True)
    finally:
        await cache.close()
        await repo.disconnect()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1]))
