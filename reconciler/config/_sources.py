"""The engines behind ``engine: spark`` and ``engine: snowflake`` customer sources, as the
configuration names them: the process's Spark session for its settings, a Snowflake session for
the ``snowflake`` section, a source as the engine sees it, and bounded checks of a remote master
or account (a client that retries for minutes must not hold validation).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future, wait
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

if TYPE_CHECKING:  # the engines import pyarrow: import them on first use
    from ..engines import Engine, SnowflakeEngine, SourceRef, SparkEngine
    from ._model import Config, CustomerSource, SnowflakeSettings, SparkSettings

__all__ = [
    "bounded",
    "in_background",
    "reach",
    "snowflake_engine",
    "source_engine",
    "source_ref",
    "spark_engine",
]

_T = TypeVar("_T")

#: default ports of a master URL (or a Snowflake account's URL) without one
_PORTS = {"sc": 15002, "spark": 7077, "http": 80, "https": 443}


def reach(master: str, timeout: float) -> str | None:
    """Why the host:port of a remote master (``sc://``, ``spark://``) or an account's URL
    (``https://``) does not accept a TCP connection within ``timeout`` seconds; None when it
    does (or for a local master)."""
    parts = urlsplit(master)
    if parts.scheme not in _PORTS:
        return None
    try:
        host, port = parts.hostname, parts.port or _PORTS[parts.scheme]
    except ValueError as exc:
        return str(exc)
    if not host:
        return "no host in the master URL"
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except TimeoutError:
        return f"no answer from {host}:{port} within {timeout:g} s"
    except OSError as exc:
        return f"{host}:{port}: {exc.strerror or exc}"
    return None


def in_background(call: Callable[[], _T], name: str) -> Future[_T]:
    """``call()`` in a daemon thread named ``name`` (a process never waits for it to exit);
    its result or exception is the future's."""
    future: Future[_T] = Future()

    def run() -> None:
        try:
            future.set_result(call())
        except BaseException as exc:  # handed over to whoever waits
            future.set_exception(exc)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


def bounded(call: Callable[[], _T], timeout: float | None) -> _T:
    """``call()``, or :class:`TimeoutError` after ``timeout`` seconds (None: no bound).

    The call runs in a daemon thread, so a client that retries for minutes (Spark Connect's
    gRPC retry policy) cannot hold validation, nor the process's exit, past the bound.
    """
    if timeout is None:
        return call()
    future = in_background(call, "reconcile-bounded")
    done, _ = wait([future], timeout)
    if not done:
        raise TimeoutError(f"no answer within {timeout:g} s")
    return future.result()


def spark_engine(settings: SparkSettings) -> SparkEngine:
    """An engine on the process's Spark session for ``settings`` (started on first use).

    Spark keeps one session per process (``getOrCreate``): the engine does not own it and
    closing it does not stop the session, which lives as long as the process (or until its
    owner stops it). Raises :class:`~reconciler.exceptions.PlanError` when it cannot start.
    """
    from ..engines import SparkEngine

    conf = dict(settings.conf)
    session = SparkEngine(settings.master, conf=conf).session
    return SparkEngine(settings.master, conf=conf, session=session)


def snowflake_engine(settings: SnowflakeSettings) -> SnowflakeEngine:
    """An engine on a new Snowflake session for ``settings`` (logged in on first use; closing
    the engine ends the session). Raises :class:`~reconciler.exceptions.SecretError` when the
    password's reference cannot be read."""
    from ..engines import SnowflakeEngine

    return SnowflakeEngine(settings.connect_args(), timeout=settings.timeout)


def source_engine(config: Config, source: CustomerSource) -> Engine:
    """The engine that evaluates the rules over ``source`` (Spark's or Snowflake's)."""
    if source.engine == "snowflake":
        assert config.snowflake is not None
        return snowflake_engine(config.snowflake)
    assert config.spark is not None
    return spark_engine(config.spark)


def source_ref(source: CustomerSource) -> SourceRef:
    """The engine's view of a customer source."""
    from ..engines import SourceRef

    return SourceRef(
        source.name,
        source.id_column,
        source.columns,
        path=source.path,
        format=source.format,
        table=source.table,
        uri=source.uri,
    )
