"""Running the sandbox: :class:`Sandbox` (background thread or subprocess) and :func:`serve`."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess as _subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import uvicorn

from reconciler.exceptions import SandboxError
from reconciler.sandbox._app import Credentials, SandboxApp
from reconciler.sandbox._epsilon import EPSILON_RETAILER_TEAM_ID
from reconciler.sandbox._faults import FaultRule, format_fault_spec, parse_fault_spec
from reconciler.sandbox._store import Store

__all__ = [
    "HOST",
    "RATE_LIMIT_VAR",
    "TALONONE_RATE_LIMIT",
    "Sandbox",
    "build_app",
    "rate_limit_from_env",
    "seed_state",
    "serve",
]

#: The sandbox only ever listens on loopback.
HOST = "127.0.0.1"
#: Talon.One's documented Management API limit (requests a second): a sandbox's default, and
#: the pace assumed for a sandbox whose own cannot be read
TALONONE_RATE_LIMIT = 3.0
#: the variable that sets it instead, for ``--sandbox`` and ``reconcile sandbox serve``
RATE_LIMIT_VAR = "RECONCILE_SANDBOX_TALONONE_RATE_LIMIT"


def rate_limit_from_env() -> float:
    """The Management API rate the local sandbox enforces: :data:`RATE_LIMIT_VAR` when set
    (requests per second, 0 for none), else the platform's :data:`TALONONE_RATE_LIMIT`."""
    text = os.environ.get(RATE_LIMIT_VAR, "").strip()
    if not text:
        return TALONONE_RATE_LIMIT
    try:
        rate = float(text)
    except ValueError:
        rate = -1.0
    if not rate >= 0 or rate == float("inf"):
        raise SandboxError(
            f"{RATE_LIMIT_VAR}={text!r}: not a number of requests per second (0 for no limit)"
        )
    return rate


#: seconds to wait for a sandbox given by URL to say its rate limit
_CONFIG_TIMEOUT = 5.0

Faults = str | Sequence[FaultRule] | None


def _rules(faults: Faults) -> tuple[FaultRule, ...]:
    if faults is None:
        return ()
    if isinstance(faults, str):
        return parse_fault_spec(faults)
    return tuple(faults)


def build_app(
    db_path: str | Path,
    *,
    faults: Faults = None,
    talonone_rate_limit: float = TALONONE_RATE_LIMIT,
    credentials: Credentials | None = None,
) -> SandboxApp:
    return SandboxApp(Store(db_path), credentials, _rules(faults), talonone_rate_limit)


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise SandboxError(f"cannot listen on {HOST}:{port}: {exc}") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _config(app: SandboxApp) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        proxy_headers=False,
        server_header=False,
        date_header=False,
        backlog=2048,
        timeout_keep_alive=30,
    )


def serve(app: SandboxApp, port: int = 8765, sock: socket.socket | None = None) -> None:
    """Serve ``app`` on 127.0.0.1 in this thread until interrupted (Ctrl-C)."""
    sock = sock or _bind(port)
    uvicorn.Server(_config(app)).run(sockets=[sock])


def _wait_for_port(port: int, deadline: float, alive: Any = None) -> None:
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise SandboxError("the sandbox server stopped while starting")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return
        time.sleep(0.02)
    raise SandboxError(f"the sandbox did not accept connections on {HOST}:{port} in time")


class Endpoints:
    """Where a sandbox's platforms answer: one base URL, one prefix per route group."""

    @property
    def url(self) -> str:
        raise NotImplementedError

    @property
    def epsilon_url(self) -> str:
        return f"{self.url}/epsilon"

    @property
    def talonone_url(self) -> str:
        return f"{self.url}/talonone"

    @property
    def talonone_management_url(self) -> str:
        return f"{self.url}/talonone-mgmt"

    @property
    def talonone_rate_limit(self) -> float:
        """The Talon.One Management API requests a second this sandbox allows, per endpoint
        (0: no limit); a client talking to it paces itself at this rate."""
        raise NotImplementedError


def _rate_of(answer: Any) -> float | None:
    """The rate in a ``GET /_sandbox/config`` answer (``None``: none, or not a rate)."""
    rate = answer.get("talonone_rate_limit") if isinstance(answer, dict) else None
    if isinstance(rate, bool) or not isinstance(rate, int | float):
        return None
    return float(rate) if 0 <= rate < float("inf") else None


class SandboxEndpoints(Endpoints):
    """A sandbox already running elsewhere (``reconcile sandbox serve``), by its URL; it
    accepts the default credentials."""

    def __init__(self, url: str) -> None:
        self._url = url.rstrip("/")
        self._rate: float | None = None

    @property
    def url(self) -> str:
        return self._url

    @property
    def talonone_rate_limit(self) -> float:
        """Asked of the sandbox once (``GET /_sandbox/config``). A sandbox that cannot be
        reached, or gives no rate, is taken at Talon.One's own limit: the run then meets
        it, or fails reaching it as it would have anyway."""
        if self._rate is None:
            self._rate = TALONONE_RATE_LIMIT
            try:
                answer = httpx.get(
                    f"{self._url}/_sandbox/config",
                    timeout=_CONFIG_TIMEOUT,
                    trust_env=False,
                    verify=self._url.startswith("https:"),
                )
                found = _rate_of(answer.json()) if answer.status_code == 200 else None
                if found is not None:
                    self._rate = found
            except (httpx.HTTPError, ValueError):
                pass
        return self._rate

    @property
    def credentials(self) -> dict[str, str]:
        return Credentials().as_dict()


class Sandbox(Endpoints):
    """Both simulated platforms on one loopback port, for tests and local runs.

    ``with Sandbox(tmp / "sb.db") as sb: httpx.get(sb.epsilon_url + "/v1/customers/x", ...)``.
    By default uvicorn runs in a background thread of this process; ``subprocess=True`` runs it
    in a child Python process instead (its own GIL; default credentials only).
    """

    def __init__(
        self,
        db_path: str | Path,
        port: int = 0,
        faults: Faults = None,
        talonone_rate_limit: float = TALONONE_RATE_LIMIT,
        *,
        credentials: Credentials | None = None,
        subprocess: bool = False,
        start_timeout: float = 15.0,
    ) -> None:
        self.db_path = Path(db_path)
        self._requested_port = port
        self._faults = _rules(faults)
        self._rate = talonone_rate_limit
        self._credentials = credentials or Credentials()
        self._subprocess = subprocess
        self._start_timeout = start_timeout
        if subprocess and credentials is not None and credentials != Credentials():
            raise SandboxError("a subprocess sandbox uses the default credentials only")
        self.port = 0
        self.app: SandboxApp | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._proc: _subprocess.Popen[bytes] | None = None
        self._client: httpx.Client | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Sandbox:
        if self._client is not None:
            raise SandboxError("the sandbox is already running")
        deadline = time.monotonic() + self._start_timeout
        if self._subprocess:
            self._start_subprocess(deadline)
        else:
            self._start_thread(deadline)
        # plain HTTP on 127.0.0.1: no TLS context (loading the CA bundle: ~25 ms a start)
        self._client = httpx.Client(
            base_url=self.url, timeout=30.0, trust_env=False, verify=self.url.startswith("https:")
        )
        return self

    def _start_thread(self, deadline: float) -> None:
        sock = _bind(self._requested_port)
        self.port = sock.getsockname()[1]
        self.app = build_app(
            self.db_path,
            faults=self._faults,
            talonone_rate_limit=self._rate,
            credentials=self._credentials,
        )
        server = uvicorn.Server(_config(self.app))
        self._server = server
        errors: list[BaseException] = []

        def run() -> None:
            try:
                server.run(sockets=[sock])
            except BaseException as exc:  # reported by start()
                errors.append(exc)
            finally:
                sock.close()

        self._thread = threading.Thread(target=run, name=f"sandbox-{self.port}", daemon=True)
        self._thread.start()
        while not server.started:
            if errors or not self._thread.is_alive():
                raise SandboxError(f"the sandbox failed to start: {errors[:1]}")
            if time.monotonic() > deadline:
                raise SandboxError("the sandbox did not start in time")
            time.sleep(0.005)
        _wait_for_port(self.port, deadline)

    def _start_subprocess(self, deadline: float) -> None:
        if self._requested_port:
            self.port = self._requested_port
        else:
            probe = _bind(0)
            self.port = probe.getsockname()[1]
            probe.close()
        cmd = [
            sys.executable,
            "-m",
            "reconciler.sandbox",
            "serve",
            "--port",
            str(self.port),
            "--db",
            str(self.db_path),
            "--talonone-rate-limit",
            str(self._rate),
            "--quiet",
        ]
        if self._faults:
            cmd += ["--faults", format_fault_spec(self._faults)]
        self._proc = _subprocess.Popen(cmd, stdout=_subprocess.DEVNULL)
        proc = self._proc
        _wait_for_port(self.port, deadline, alive=lambda: proc.poll() is None)

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._server = None
        if self.app is not None:
            self.app.store.close()
            self.app = None
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except _subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ addresses
    @property
    def url(self) -> str:
        if not self.port:
            raise SandboxError("the sandbox is not running")
        return f"http://{HOST}:{self.port}"

    @property
    def credentials(self) -> dict[str, str]:
        return self._credentials.as_dict()

    @property
    def epsilon_team_id(self) -> str:
        return EPSILON_RETAILER_TEAM_ID

    @property
    def talonone_rate_limit(self) -> float:
        """The rate the sandbox enforces now (:meth:`set_rate_limit` changes it, :meth:`reset`
        restores the one it was started with)."""
        if self.app is not None:
            return self.app.rate_limiter.rate
        if self._client is not None:  # a subprocess: ask it
            found = _rate_of(self._call("GET", "/_sandbox/config").json())
            return self._rate if found is None else found
        return self._rate

    # ------------------------------------------------------------------ inspection
    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self._client is None:
            raise SandboxError("the sandbox is not running")
        resp = self._client.request(method, path, **kwargs)
        if resp.status_code >= 400:
            raise SandboxError(f"{method} {path}: {resp.status_code} {resp.text}")
        return resp

    def requests(
        self, since: int = 0, method: str | None = None, group: str | None = None
    ) -> list[dict[str, Any]]:
        """The request log (oldest first): id, time, method, path, query, status, latency_ms,
        group, route (template), fault."""
        params: dict[str, str | int] = {"since": since}
        if method:
            params["method"] = method
        if group:
            params["group"] = group
        data: list[dict[str, Any]] = self._call("GET", "/_sandbox/requests", params=params).json()[
            "requests"
        ]
        return data

    def clear_requests(self) -> None:
        self._call("DELETE", "/_sandbox/requests")

    def state(self) -> dict[str, Any]:
        data: dict[str, Any] = self._call("GET", "/_sandbox/state").json()
        return data

    def set_faults(self, faults: Faults) -> None:
        rules = _rules(faults)
        self._call("PUT", "/_sandbox/faults", json={"rules": [r.as_dict() for r in rules]})

    def set_rate_limit(self, rate: float) -> None:
        self._call("PUT", "/_sandbox/config", json={"talonone_rate_limit": rate})

    def reset(self) -> None:
        """Empty the state and the request log, clear faults, restore the rate limit."""
        self._call("POST", "/_sandbox/reset")

    def seed(self, data: dict[str, Any]) -> None:
        self._call("POST", "/_sandbox/seed", json=data)


def seed_state(target: str | Path | Sandbox, data: dict[str, Any]) -> None:
    """Load a starting remote state into a database file or a running :class:`Sandbox`.

    ``data`` has the shape of :meth:`Sandbox.state` (timestamps and numeric ids optional)::

        {"epsilon": {"segments": [{"segmentId", "name", "description", "retailerTeamId"?,
                                   "sourceId"?, "accessTeamIds"?}],
                     "customers": [{"id", "teamId"?, "segmentIds"?}]},
         "talonone": {"audiences": [{"integrationId", "name", "id"?, "integration"?,
                                     "members"?: [profile integration id, ...]}],
                      "profiles": [{"integrationId", "attributes"?}]}}

    Entities are upserted; a list given for an entity (access, segmentIds, members) replaces it.
    """
    if isinstance(target, Sandbox):
        target.seed(data)
        return
    store = Store(target)
    try:
        store.seed(data, EPSILON_RETAILER_TEAM_ID)
    except (KeyError, TypeError, ValueError) as exc:
        raise SandboxError(f"invalid seed data: {exc}") from exc
    finally:
        store.close()
