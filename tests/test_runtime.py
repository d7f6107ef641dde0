"""The event loop the commands run in: uvloop's where it is installed, asyncio's otherwise,
with the awaitable's result (or exception) handed back as ``asyncio.run`` does."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from reconciler import runtime


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_run_is_on_uvloop_where_it_is_installed() -> None:
    expected = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    assert runtime.run(_loop_module()).split(".")[0] == expected


def test_run_falls_back_to_asyncios_loop_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "_loop_factory", lambda: None)
    assert runtime.run(_loop_module()).startswith("asyncio")


def test_run_hands_back_the_result_and_raises_what_the_awaitable_raises() -> None:
    async def fails() -> None:
        raise ValueError("no")

    assert runtime.run(asyncio.sleep(0, result=42)) == 42
    with pytest.raises(ValueError, match="no"):
        runtime.run(fails())
