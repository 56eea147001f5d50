"""The demo's section context: what the page's services print is kept per call, never mixed into the report."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator

import pytest

from neuroglia.data.redis.demo import DemoContext, DemoRun
from neuroglia.data.redis.demo.context import capturing_prints, gathered


async def speak(words: str, pause: float) -> str:
    print(f"{words}: before")
    await asyncio.sleep(pause)
    print(f"{words}: after")
    return words


@pytest.fixture
async def ctx() -> AsyncIterator[DemoContext]:
    run = DemoRun(f"memory://test-demo-{uuid.uuid4().hex}", "demo:test:", 5.0)
    try:
        yield DemoContext(run.repository(), run.repository(decode_responses=False), io.StringIO(), run=run)
    finally:
        await run.close()


async def test_concurrent_calls_keep_their_own_lines(ctx: DemoContext, capsys: pytest.CaptureFixture[str]) -> None:
    with capturing_prints():
        outer = await ctx.call(gathered(ctx.call(speak("one", 0.02)), ctx.call(speak("two", 0.01))))
        print("outside any call")
    one, two = outer.result
    assert (one.result, one.printed) == ("one", ["one: before", "one: after"])
    assert (two.result, two.printed) == ("two", ["two: before", "two: after"])
    assert outer.printed == []  # each inner call kept its own lines
    assert one.seconds >= 0.02 > two.seconds >= 0.01
    assert capsys.readouterr().out == ""  # dropped: neither on stdout nor in the report
    assert ctx.out.getvalue() == ""  # type: ignore[attr-defined]


async def test_tasks_started_inside_a_call_print_into_it(ctx: DemoContext) -> None:
    with capturing_prints():
        done = await ctx.call(gathered(speak("a", 0.01), speak("b", 0)))
    assert done.result == ["a", "b"]
    assert done.printed == ["a: before", "b: before", "b: after", "a: after"]  # in the order printed
