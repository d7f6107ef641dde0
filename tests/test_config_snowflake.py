"""The ``snowflake`` section and ``engine: snowflake`` sources: credentials only as references,
and every failure to reach the account located, in bounded time: an account that does not
answer, bad credentials, an unset password variable, a missing table or column."""

from __future__ import annotations

import http.server
import importlib.util
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _fakesnow import serve
from _scenario import cli

from reconciler.config import load
from reconciler.exceptions import ConfigError

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("fakesnow") is None
    or importlib.util.find_spec("snowflake.connector") is None,
    reason="fakesnow and snowflake-connector-python (the warehouse extra) not installed",
)

PASSWORD = "SNOWFLAKE_CONFIG_PASSWORD"


def _write(folder: Path, url: str, *, table: str = "CONFIG_SHOPPERS", password: str = "") -> Path:
    path = folder / "audiences.yaml"
    path.write_text(
        "\n".join(
            [
                "version: 1",
                "targets:",
                "  feed: {type: epsilon-feed, directory: out}",
                "customer_sources:",
                f"  shoppers: {{engine: snowflake, table: {table}, id_column: id}}",
                "segments:",
                "  - id: high",
                "    name: High",
                "    members:",
                "      rule: {attribute: score, gte: 50}",
                "snowflake:",
                "  account: acme-test",
                "  user: reconciler",
                f"  password: {password or '${' + PASSWORD + '}'}",
                "  database: CRM",
                "  schema: SHOP",
                f"  url: {url}",
                "  timeout: 3",
            ]
        )
        + "\n"
    )
    return path


def _problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(path)
    prefix = f"{path}:"
    assert all(str(p).startswith(prefix) for p in info.value.problems)
    return [str(p)[len(prefix) :] for p in info.value.problems]


@pytest.fixture(scope="module")
def server() -> Iterator[dict[str, Any]]:
    import snowflake.connector

    with serve() as kwargs:
        con = snowflake.connector.connect(**kwargs, database="CRM", schema="SHOP")
        con.cursor().execute(
            "CREATE OR REPLACE TABLE CONFIG_SHOPPERS (id VARCHAR, score NUMBER(38,0))"
        )
        con.close()
        yield kwargs


@pytest.fixture
def url(server: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(PASSWORD, server["password"])
    return f"http://{server['host']}:{server['port']}"


def test_a_source_read_in_snowflake(url: str, tmp_path: Path) -> None:
    config = load(_write(tmp_path, url))
    assert config.snowflake is not None
    assert config.snowflake.snapshot_schema == "RECONCILER"
    assert dict(config.customer_sources["shoppers"].columns) == {
        "id": "VARCHAR",
        "score": "BIGINT",
    }
    # the password is read from its variable when a session opens, never kept in the config
    assert config.snowflake.password == "${" + PASSWORD + "}"


def test_a_missing_table_and_column(url: str, tmp_path: Path) -> None:
    assert _problems(_write(tmp_path, url, table="CRM.SHOP.NOPE")) == [
        "5:40: customer_sources.shoppers.table: cannot read table 'CRM.SHOP.NOPE' on "
        "Snowflake: Catalog Error: Table with name NOPE does not exist!",
    ]
    path = _write(tmp_path, url)
    path.write_text(path.read_text().replace("id_column: id", "id_column: ident"))
    assert _problems(path) == [
        "5:68: customer_sources.shoppers.id_column: column 'ident' not found in table "
        "'CONFIG_SHOPPERS'",
    ]


def test_the_password_is_a_reference(url: str, tmp_path: Path) -> None:
    assert _problems(_write(tmp_path, url, password="hunter2")) == [
        "14:13: snowflake.password: credentials must be an ${ENV_VAR} or ${file:PATH} "
        "reference, not a literal value",
    ]


def test_the_password_may_be_a_mounted_secret_file(
    url: str, server: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``${file:PATH}`` (relative to the config's folder) is read when a session opens."""
    monkeypatch.delenv(PASSWORD)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "snowflake").write_text(server["password"] + "\n")
    path = _write(tmp_path, url, password="${file:secrets/snowflake}")
    config = load(path)
    assert config.snowflake is not None
    assert config.snowflake.password.startswith("${file:")  # the reference, not the value
    assert config.snowflake.connect_args()["password"] == server["password"]
    (tmp_path / "secrets" / "snowflake").unlink()
    (missing,) = _problems(path)
    assert missing.startswith("14:13: snowflake.password: cannot read the secret file")
    assert missing.endswith("secrets/snowflake: No such file or directory")


def test_an_unset_password_variable(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PASSWORD)
    assert _problems(_write(tmp_path, url)) == [
        f"14:13: snowflake.password: environment variable {PASSWORD} "
        "is not set (snowflake.password)",
    ]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_an_account_that_does_not_answer_is_one_located_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``reconcile validate`` as a user runs it: one line, no traceback, exit 1 (the
    subprocess's own timeout only catches a hang)."""
    monkeypatch.setenv(PASSWORD, "secret-not-shown")
    port = _closed_port()
    path = _write(tmp_path, f"http://127.0.0.1:{port}")
    done = cli("validate", str(path), cwd=tmp_path)
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    # a refused connection is said at once (the connector would retry it for minutes)
    assert lines[0] == (
        f"{path}:12:12: snowflake.account: cannot reach Snowflake account acme-test: "
        f"127.0.0.1:{port}: Connection refused"
    ), done.stderr
    assert "Traceback" not in done.stderr
    assert "secret-not-shown" not in done.stderr + done.stdout


class _Refusing(http.server.BaseHTTPRequestHandler):
    """Snowflake's answer to a login with a wrong password."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps(
            {
                "data": {"nextAction": None, "authnMethod": "USERNAME_PASSWORD"},
                "code": "390100",
                "message": "Incorrect username or password was specified.",
                "success": False,
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_bad_credentials_are_located_at_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD, "wrong")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        problems = _problems(_write(tmp_path, f"http://127.0.0.1:{httpd.server_address[1]}"))
    finally:
        httpd.shutdown()
        httpd.server_close()
    (problem,) = problems
    assert problem.startswith(
        "14:13: snowflake.password: Snowflake account acme-test: cannot log in: "
    )
    assert problem.endswith("Incorrect username or password was specified.")
    assert "wrong" not in problems[0]
