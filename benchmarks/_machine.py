"""What every benchmark report records about the machine it ran on."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from typing import Any

import redis

from neuroglia.data.redis.testing import redis_server_binary


def describe_machine() -> dict[str, Any]:
    """Date, CPU, Python, redis-server, redis-py and hiredis versions, load average at start."""
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        binary = redis_server_binary() or "redis-server"
        server = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        server = "?"
    try:
        import hiredis

        hiredis_version: str | None = hiredis.__version__
    except ImportError:
        hiredis_version = None
    try:
        load: Any = os.getloadavg()
    except OSError:
        load = None
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "redis_server": server,
        "redis_py": redis.__version__,
        "hiredis": hiredis_version,
        "loadavg_at_start": load,
    }


def publish(result: dict[str, Any], text: str, json_path: str | None, machine: dict[str, Any] | None = None) -> None:
    """Print the report and the machine it ran on; write every figure to ``json_path`` when given."""
    print(text)
    print(json.dumps(machine if machine is not None else result["machine"], indent=2))
    if json_path:
        with open(json_path, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
