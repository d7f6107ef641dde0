"""The network backend under httpx (reconciler/_netio.py): requests, keep-alive, a server's close
of an idle connection, large bodies both ways, timeouts, refused connects and TLS, on asyncio's
loop and on uvloop's, against servers on 127.0.0.1 started by each test."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import httpcore
import httpx
import pytest
import trustme

from reconciler._http import Http, RetryPolicy
from reconciler._netio import AsyncioBackend, use_asyncio_backend

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

LOOPS = [
    "asyncio",
    pytest.param(
        "uvloop",
        marks=pytest.mark.skipif(
            __import__("importlib").util.find_spec("uvloop") is None,
            reason="uvloop is not installed",
        ),
    ),
]


def run(loop: str, coroutine: Coroutine[Any, Any, Any]) -> Any:
    if loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coroutine)
    return asyncio.run(coroutine)


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One request's head and body (by its Content-Length)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head, await reader.readexactly(length)


def answer(body: bytes, status: str = "200 OK") -> bytes:
    return b"HTTP/1.1 %s\r\nContent-Length: %d\r\n\r\n%s" % (status.encode(), len(body), body)


@asynccontextmanager
async def serve(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """A server on 127.0.0.1 running ``handler`` per connection; yields its port."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=tls)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _contexts(ca: trustme.CA) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server's context with a certificate for localhost, and a client's that trusts it."""
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


def one_attempt(base_url: str) -> Http:
    """The client as a target has it, giving up on an unreachable host after one attempt."""
    return Http(
        base_url,
        label="target 'eps'",
        retry=RetryPolicy(connect_attempts=1, sleep=lambda s: asyncio.sleep(0)),
    )


def pool(**options: Any) -> httpcore.AsyncConnectionPool:
    return httpcore.AsyncConnectionPool(network_backend=AsyncioBackend(), **options)


@pytest.mark.parametrize("loop", LOOPS)
def test_the_http_client_sends_through_the_backend_and_keeps_the_connection(loop: str) -> None:
    connections: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        while not reader.at_eof():
            try:
                head, body = await read_request(reader)
            except asyncio.IncompleteReadError:
                break
            path = head.split(b" ")[1]
            writer.write(answer(b'{"path": "%s", "got": %d}' % (path, len(body))))
            await writer.drain()
        writer.close()

    async def main() -> list[Any]:
        async with serve(handler) as port:
            http = Http(f"http://127.0.0.1:{port}", max_connections=1)
            try:
                replies = [
                    (await http.request("POST", f"/c/{i}", json={"n": i})).json() for i in range(3)
                ]
                client = http._client
                assert isinstance(client._transport, httpx.AsyncHTTPTransport)
                backend = client._transport._pool._network_backend
                assert isinstance(backend, AsyncioBackend)
                return replies
            finally:
                await http.aclose()

    replies = run(loop, main())
    assert [r["path"] for r in replies] == ["/c/0", "/c/1", "/c/2"]
    assert all(r["got"] > 0 for r in replies)
    assert len(connections) == 1  # one connection, kept alive


@pytest.mark.parametrize("loop", LOOPS)
def test_an_idle_connection_the_server_closed_is_known_and_replaced(loop: str) -> None:
    """The server closes after each answer without saying so: the idle connection reads as
    readable (its end is there), the pool drops it and the next request opens another."""
    connections: list[int] = []
    close = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        await read_request(reader)
        writer.write(answer(b"ok"))
        await writer.drain()
        await close.wait()
        writer.close()

    def readable(connection: Any) -> bool:
        return bool(connection._connection._network_stream.get_extra_info("is_readable"))

    async def main() -> list[int]:
        async with serve(handler) as port, pool() as http:
            url = f"http://127.0.0.1:{port}/"
            statuses = [(await http.request("GET", url)).status]
            [connection] = http.connections
            assert not readable(connection)  # idle, open: nothing to read
            close.set()
            for _ in range(200):  # until the server's close has arrived
                if readable(connection):
                    break
                await asyncio.sleep(0.005)
            else:
                raise AssertionError("the server's close was never seen")
            statuses.append((await http.request("GET", url)).status)
            return statuses

    assert run(loop, main()) == [200, 200]
    assert len(connections) == 2


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
@pytest.mark.parametrize("loop", LOOPS)
def test_large_bodies_arrive_whole_both_ways(loop: str, tls: bool, ca: trustme.CA) -> None:
    """8 MiB down (the protocol stops and resumes reading past its high-water mark) and 8 MiB
    up to a server that reads slowly (the write waits while the transport pushes back), in
    plain TCP and through TLS."""
    big = bytes(range(256)) * (32 * 1024)
    server_tls, client_tls = _contexts(ca) if tls else (None, None)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, body = await read_request(reader)
        if head.startswith(b"GET"):
            writer.write(answer(big))
        else:
            writer.write(answer(b"%d %d" % (len(body), body == big)))
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")  # the upload, read slowly
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        received = bytearray()
        while len(received) < length:
            received += await reader.read(256 * 1024)
            await asyncio.sleep(0.001)
        writer.write(answer(b"%d %d" % (len(received), bytes(received) == big)))
        await writer.drain()

    async def main() -> tuple[bytes, bytes]:
        async with serve(handler, server_tls) as port, pool(ssl_context=client_tls) as http:
            url = f"{'https' if tls else 'http'}://localhost:{port}/"
            down = await http.request("GET", url)
            up = await http.request("POST", url, content=big)
            return down.content, up.content

    down, up = run(loop, main())
    assert down == big
    assert up == b"%d 1" % len(big)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_silent_server_is_a_read_timeout(loop: str) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async def main() -> None:
        async with serve(handler) as port, pool() as http:
            await http.request(
                "GET", f"http://127.0.0.1:{port}/", extensions={"timeout": {"read": 0.1}}
            )

    with pytest.raises(httpcore.ReadTimeout):
        run(loop, main())


@pytest.mark.parametrize("loop", LOOPS)
def test_a_server_that_never_reads_is_a_write_timeout(loop: str) -> None:
    """64 MiB to a server that reads nothing: the socket buffers fill, the write waits on the
    transport and its timeout ends it."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    async def main() -> None:
        async with serve(handler) as port, pool() as http:
            await http.request(
                "POST",
                f"http://127.0.0.1:{port}/",
                content=b"x" * (64 * 1024 * 1024),
                extensions={"timeout": {"write": 0.2}},
            )

    with pytest.raises(httpcore.WriteTimeout):
        run(loop, main())


@pytest.mark.parametrize("loop", LOOPS)
def test_a_body_cut_short_is_an_error_not_a_short_answer(loop: str) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")
        await writer.drain()
        writer.close()

    async def main() -> None:
        async with serve(handler) as port, pool() as http:
            await http.request("GET", f"http://127.0.0.1:{port}/")

    with pytest.raises((httpcore.RemoteProtocolError, httpcore.ReadError)):
        run(loop, main())


@pytest.mark.parametrize("loop", LOOPS)
def test_a_refused_connect_keeps_the_systems_reason(loop: str) -> None:
    """The refused connect is httpcore's ConnectError with the OSError as its cause (the Http
    client names the reason from it), and through the client the message says so."""

    async def free_port() -> int:
        async with serve(lambda r, w: asyncio.sleep(0)) as port:
            return port

    async def main() -> tuple[BaseException, str]:
        port = await free_port()
        async with pool() as http:
            try:
                await http.request("GET", f"http://127.0.0.1:{port}/")
            except httpcore.ConnectError as exc:
                error: BaseException = exc
        client = one_attempt(f"http://127.0.0.1:{port}")
        try:
            await client.request("GET", "/x")
        except Exception as exc:
            message = str(exc)
        finally:
            await client.aclose()
        return error, message

    error, message = run(loop, main())
    # httpcore's pool re-raises it ``from None``: the OSError stays as its context
    reason = error.__cause__ or error.__context__
    assert isinstance(reason, OSError)
    assert reason.errno == errno.ECONNREFUSED
    assert "cannot connect to 127.0.0.1" in message
    assert "Connection refused" in message


@pytest.mark.parametrize("loop", LOOPS)
def test_tls_to_a_trusted_server_and_not_to_an_untrusted_one(loop: str, ca: trustme.CA) -> None:
    server_context, trusting = _contexts(ca)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await read_request(reader)
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            return
        writer.write(answer(b"secret"))
        await writer.drain()

    async def main() -> tuple[bytes, bool, BaseException]:
        async with serve(handler, tls=server_context) as port:
            url = f"https://localhost:{port}/"
            async with pool(ssl_context=trusting) as http:
                reply = await http.request("GET", url)
                stream = http.connections[0]._connection._network_stream  # type: ignore[attr-defined]
                has_tls = stream.get_extra_info("ssl_object") is not None
            async with pool(ssl_context=ssl.create_default_context()) as http:
                try:
                    await http.request("GET", url)
                except httpcore.ConnectError as exc:
                    refused: BaseException = exc
            return reply.content, has_tls, refused

    content, has_tls, refused = run(loop, main())
    assert content == b"secret"
    assert has_tls
    assert "CERTIFICATE_VERIFY_FAILED" in str(refused)


def test_a_transport_that_is_not_httpxs_is_left_alone() -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    assert use_asyncio_backend(client) is False


def test_a_name_that_does_not_resolve_is_named_with_the_resolvers_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The resolver's error (a gaierror, its errno negative) reaches the client's message as
    the system's reason, with the host and port."""

    async def getaddrinfo(self: Any, host: str, *args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "getaddrinfo", getaddrinfo)

    async def main() -> str:
        client = one_attempt("http://platform.example:8443")
        try:
            await client.request("GET", "/x")
        except Exception as exc:
            return str(exc)
        finally:
            await client.aclose()
        raise AssertionError("the request went through")

    message = run("asyncio", main())
    assert "cannot connect to platform.example:8443 (Name or service not known)" in message
