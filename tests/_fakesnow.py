"""fakesnow for the tests: the real ``snowflake.connector`` protocol served on 127.0.0.1 over
DuckDB, with the one emulation gap the product's SQL meets closed.

fakesnow 0.12.1 translates ``REGEXP_INSTR(col, ?)`` to DuckDB by repeating its pattern argument
five times (sqlglot's ``REGEXP_INSTR`` expansion), so a bound pattern leaves four markers
without a value and the server answers 500. Real Snowflake binds it once. Here the bound values
of such a statement are written into it as Snowflake literals before fakesnow translates it;
every other statement is run with its bindings as sent.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest


def inline(sql: str, params: Sequence[Any]) -> str:
    """``sql`` with its ``?`` markers replaced by ``params`` as Snowflake literals."""
    from sqlglot import TokenType, exp
    from sqlglot.dialects.snowflake import Snowflake

    tokens = [t for t in Snowflake().tokenize(sql) if t.token_type == TokenType.PLACEHOLDER]
    assert len(tokens) == len(params), (len(tokens), len(params))
    out, at = [], 0
    for token, value in zip(tokens, params, strict=True):
        out += [sql[at : token.start], exp.convert(value).sql(dialect="snowflake")]
        at = token.end + 1
    return "".join([*out, sql[at:]])


_SERVED: dict[str, Any] = {}


def _start() -> dict[str, Any]:
    """fakesnow's ASGI app on a free loopback port, in a daemon thread (``fakesnow.server()``
    can start once per process: its module then shadows the function of the same name)."""
    import atexit
    import importlib
    import shutil
    import threading
    import time

    import uvicorn

    app = importlib.import_module("fakesnow.server").app
    # fakesnow makes its stages' folder when imported and leaves it behind: gone with the process
    bucket = importlib.import_module("fakesnow.transforms.stage").LOCAL_BUCKET_PATH
    atexit.register(shutil.rmtree, bucket, ignore_errors=True)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, name="fakesnow", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60  # only catches a server that never starts
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "fakesnow did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    return {
        "user": "fake",
        "password": "snow",
        "account": "fakesnow",
        "host": "127.0.0.1",
        "port": port,
        "protocol": "http",
        "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
        "network_timeout": 30,
    }


@contextmanager
def serve() -> Iterator[dict[str, Any]]:
    """The process's fakesnow server (one database shared by every session and test file:
    each file uses tables of its own), with the gap above closed while in use."""
    from fakesnow.cursor import FakeSnowflakeCursor

    real = FakeSnowflakeCursor.execute

    def execute(self: Any, command: str, params: Any = None, *args: Any, **kw: Any) -> Any:
        bound = kw.get("binding_params")
        if "REGEXP_INSTR" in command.upper() and isinstance(bound, tuple) and bound:
            command, kw = inline(command, bound), {**kw, "binding_params": None}
        return real(self, command, params, *args, **kw)

    if not _SERVED:
        _SERVED.update(_start())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(FakeSnowflakeCursor, "execute", execute)
        yield dict(_SERVED)
