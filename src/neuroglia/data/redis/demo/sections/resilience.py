"""The page's ResilientMenuService through a simulated outage: the repository's circuit breaker
opens, fails fast, the fallbacks answer, and the breaker closes again once Redis is back."""

from __future__ import annotations

import asyncio
from typing import Any

from ... import CacheUnavailableError, CircuitBreakerPolicy, CircuitState
from ..context import DemoContext
from ..pizzeria import MENU, ResilientMenuService
from ..report import ms

__all__ = ["resilience_section"]

# What the page's get_menu_with_fallback prints when it catches a CacheException.
UNAVAILABLE = "Redis unavailable, using fallback cache: "


def _breaker_text(breaker: CircuitBreakerPolicy) -> str:
    state = breaker.state
    if state is CircuitState.CLOSED and breaker.failure_count:
        return f"closed ({breaker.failure_count}/{breaker.failure_threshold} failures)"
    return state.value


async def resilience_section(ctx: DemoContext) -> None:
    """A simulated outage: the repository's breaker opens, fails fast, falls back, recovers."""
    repo = ctx.repo
    breaker = repo.circuit_breaker
    faults = ctx.run.faults
    ctx.check(breaker is not None, "the demo repository has its own circuit breaker")
    assert breaker is not None
    breaker.reset()
    ResilientMenuService.circuit_breaker.reset()  # the class-level breaker outlives a run
    service = ResilientMenuService(ctx.services)
    # A second repository of the same process, with the stale-read fallback on (off by default).
    board = ctx.run.repository(outage=True, fallback={"max_entries": 100, "max_staleness": 60}, breaker_name="board")
    board_key = "mario_pizzeria:menu:margherita"
    loop = asyncio.get_running_loop()
    events: list[tuple[float, CircuitState, CircuitState]] = []

    def on_change(old: CircuitState, new: CircuitState) -> None:
        events.append((loop.time(), old, new))

    breaker.add_listener(on_change)
    rows: list[list[Any]] = []
    caught: list[tuple[str, str]] = []  # (error type, message) of each CacheException the service caught

    async def call(label: str, menu_id: str) -> tuple[str | None, int, str]:
        """The page's call; the error it caught (its type from the repository's count), attempts, source."""
        in_fallback = menu_id in service.fallback_cache
        misses, errors, refused = ctx.misses(), ctx.errors(), faults.refused
        done = await ctx.call(service.get_menu_with_fallback(menu_id))
        messages = [line.removeprefix(UNAVAILABLE) for line in done.printed if line.startswith(UNAVAILABLE)]
        error = None
        if messages:
            error = "/".join(sorted(ctx.errors() - errors)) or "?"
            caught.append((error, messages[-1]))
            source = "the service's fallback_cache" if in_fallback else "database (last resort)"
        else:
            source = "database (miss), then Redis" if ctx.misses() > misses else "Redis"
        ctx.check(done.result == MENU[menu_id], f"{label} returns the menu")
        attempts = faults.refused - refused
        rows.append([label, source, error or "-", attempts, ms(done.seconds), _breaker_text(breaker)])
        return error, attempts, source

    def table(title: str) -> None:
        ctx.note(title)
        ctx.table(["call", "answered by", "error caught", "refused", "time", "repository breaker"], rows)
        rows.clear()

    try:
        # Healthy.
        misses = ctx.misses()
        await service.warm_fallback_cache()  # type: ignore[no-untyped-call]  # the page's code
        loaded = ctx.misses() - misses  # each miss goes to the database (the page's code)
        ctx.check(loaded == 3 and len(service.fallback_cache) == 3, "warm_fallback_cache() loads 3 menus")
        rows.append(["warm_fallback_cache()", "database x3, cached in Redis", "-", 0, "", _breaker_text(breaker)])
        await call("get_menu_with_fallback('margherita')", "margherita")
        seen = await board.get_async(board_key)
        ctx.check(seen is not None and not board.served_stale(), "the board reads the menu from Redis")
        rows.append(["board.get_async(menu:margherita)", "Redis", "-", 0, "", "-"])
        ctx.note("The service runs on the demo repository. 'board' is a second repository of this process,")
        ctx.note("a menu board with the stale-read fallback on (fallback=True; off by default).")
        ctx.out.write("\n")
        table("Redis up:")

        # The outage: every command of these repositories is refused, in this process only.
        faults.outage = True
        outage_started = loop.time()
        refused = faults.refused
        stale = await ctx.call(board.get_async(board_key))
        served_stale = board.served_stale()
        ctx.check(stale.result == seen and served_stale, "fallback=True: the board's read is served stale")
        rows.append(
            [
                "board.get_async(menu:margherita)",
                "the repository's stale fallback",
                "-",
                faults.refused - refused,
                ms(stale.seconds),
                f"served_stale() {served_stale}",
            ]
        )
        refused = faults.refused
        try:
            await board.set_async(board_key, "{}")
            write = "written"
        except CacheUnavailableError as exc:
            write = type(exc).__name__
        ctx.check(write == "CacheUnavailableError", "a write is never answered from the fallback")
        rows.append(["board.set_async(menu:margherita)", f"raises {write}", "-", faults.refused - refused, "", "-"])
        threshold = breaker.failure_threshold
        attempts_per_call = repo.config.retry.retries + 1
        for n in range(1, threshold + 3):
            error, attempts, _ = await call(f"get_menu_with_fallback('pepperoni') #{n}", "pepperoni")
            if n <= threshold:
                ctx.check(
                    error == "CacheUnavailableError" and attempts == attempts_per_call,
                    f"call #{n} fails after {attempts_per_call} attempts (retries) and is caught by the service",
                )
            else:
                ctx.check(error == "CircuitOpenError" and attempts == 0, f"call #{n} fails fast, nothing sent")
            expected = CircuitState.OPEN if n >= threshold else CircuitState.CLOSED
            ctx.check(breaker.state is expected, f"the breaker is {expected.value} after {n} failed operations")
        fail_fast = caught[-1]
        _, _, source = await call("get_menu_with_fallback('diavola')", "diavola")
        ctx.check(
            source == "database (last resort)",
            "a menu the service never read comes from the database, as a last resort",
        )
        ctx.check(
            ResilientMenuService.circuit_breaker.state is CircuitState.CLOSED,
            "the method's breaker stays closed: the page's method catches CacheException itself",
        )
        table("Redis down (simulated: the transport refuses every command; the server is not touched):")

        # Recovery.
        faults.outage = False
        opened_at = next(t for t, _, new in events if new is CircuitState.OPEN)
        if loop.time() - opened_at < breaker.recovery_timeout / 2:  # (always, unless the machine is very slow)
            await call("get_menu_with_fallback('margherita')", "margherita")
            ctx.check(breaker.state is CircuitState.OPEN, "right after the outage the breaker still fails fast")
        await asyncio.sleep(max(0.0, opened_at + breaker.recovery_timeout - loop.time()) + 0.01)
        ctx.check(breaker.state is CircuitState.HALF_OPEN, "after recovery_timeout the breaker is half-open")
        for n, menu_id in enumerate(["margherita", "pepperoni"], 1):
            error, _, _ = await call(f"get_menu_with_fallback('{menu_id}') (trial {n})", menu_id)
            ctx.check(error is None, f"trial {n} reaches Redis")
        ctx.check(breaker.state is CircuitState.CLOSED, f"{breaker.success_threshold} good trials close the breaker")
        fresh = await board.get_async(board_key)
        ctx.check(fresh == seen and not board.served_stale(), "the board reads from Redis again")
        rows.append(["board.get_async(menu:margherita)", "Redis", "-", 0, "", f"served_stale() {board.served_stale()}"])
        table(
            f"Redis back (recovery_timeout {breaker.recovery_timeout:g} s, success_threshold "
            f"{breaker.success_threshold}):"
        )
    finally:
        faults.outage = False
        breaker.remove_listener(on_change)

    transitions = [(old.value, new.value) for _, old, new in events]
    ctx.check(
        transitions == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")],
        "the breaker went closed -> open -> half_open -> closed",
    )
    why = {
        "open": f"{threshold} consecutive failed operations",
        "half_open": f"recovery_timeout ({breaker.recovery_timeout:g} s) elapsed",
        "closed": f"{breaker.success_threshold} successful trial calls",
    }
    ctx.table(
        ["t", "breaker event (listener)", "why"],
        [
            [f"{(t - outage_started) * 1000:.0f} ms", f"{old.value} -> {new.value}", why[new.value]]
            for t, old, new in events
        ],
    )
    first_type, first_message = caught[0]
    ctx.note(f"The service caught: {first_type}: {first_message}")
    ctx.note(f"             then: {fail_fast[0]}: {fail_fast[1]}")
    ctx.note(f"(it printed each as {UNAVAILABLE!r} + the error)")
    ctx.note(f"The outage refused {faults.refused} commands in this process; none reached the server.")
    ctx.note("The page's @circuit_breaker.apply names an instance attribute (a NameError); pizzeria.py")
    ctx.note("completes the class with a class-level breaker, the working form (docs/resilience.md).")
