"""httpcore's network backend on the event loop's own transports, without anyio's streams.

httpcore runs its sockets through anyio under asyncio, and each socket operation there pays for
a cancel scope with a timer, an exception-mapping context manager, a checkpoint on every send
and, for every connection of a pool on every request it assigns, a ``poll()`` behind a
``get_extra_info`` that rebuilds a dictionary of attributes (encode/httpx#3215,
encode/httpcore#930). An apply's writes are bound by the client's CPU per request, so that is
where it goes.

:class:`AsyncioBackend` is httpcore's documented backend interface (``connect_tcp``,
``connect_unix_socket``, ``sleep``; streams with ``read``, ``write``, ``aclose``,
``start_tls`` and ``get_extra_info``) over ``loop.create_connection`` and one
:class:`asyncio.Protocol` per connection:

- a read returns what is buffered at once, else waits on one future, with a timer only when
  there is a timeout; a chunk larger than asked is sliced;
- a write hands the bytes to the transport and waits only while it pushes back;
- the protocol keeps reading while a connection is idle, up to a high-water mark, so
  ``is_readable`` (which the pool asks of every idle connection) answers from state: a
  server's close of an idle connection is known without a system call;
- a host of several addresses is connected as anyio connects it, with Happy Eyeballs (RFC
  8305: the next address is tried 0.25 s after the last without an answer; uvloop's
  ``create_connection`` has no such option, so aiohappyeyeballs connects the socket);
- TLS is ``loop.start_tls`` with the handshake bounded by the connect timeout;
- errors map to httpcore's own (``ConnectError``, ``ConnectTimeout``, ``ReadError``,
  ``ReadTimeout``, ``WriteError``, ``WriteTimeout``) with the system's error as the cause, as
  anyio's backend maps them, so httpx raises the same exceptions as before.

:func:`use_asyncio_backend` puts it under an httpx client's pools.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import ssl
from collections.abc import Iterable
from typing import Any, cast

import aiohappyeyeballs
import httpcore
import httpx

__all__ = ["AsyncioBackend", "use_asyncio_backend"]

#: bytes buffered unread before the protocol stops reading (and resumes below the low mark)
_HIGH = 256 * 1024
_LOW = 64 * 1024
#: as anyio's connect_tcp: the next address is tried after this long without an answer
_HAPPY_EYEBALLS = 0.25

SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


class _Protocol(asyncio.Protocol):
    """The bytes of one connection, buffered for :class:`_Stream` to read."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._eof = False
        #: why the connection was lost (None: closed cleanly, or still open)
        self.error: BaseException | None = None
        self.lost = False
        self._reading_paused = False
        self._writing_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None

    # -- asyncio's calls ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        if self._size > _HIGH and not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False  # close the transport: httpcore never writes after the server's EOF

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._eof = True
        self.error = exc
        self._wake()
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    # -- the stream's calls -------------------------------------------------------------------

    def readable(self) -> bool:
        """Data or an end is there to read now."""
        return bool(self._chunks) or self._eof

    def take(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` of what is buffered (``b""`` at the end)."""
        if not self._chunks:
            return b""
        chunk = self._chunks.popleft()
        if len(chunk) > max_bytes:
            self._chunks.appendleft(chunk[max_bytes:])
            chunk = chunk[:max_bytes]
        self._size -= len(chunk)
        if self._reading_paused and self._size < _LOW and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
        return chunk

    def waiter(self) -> asyncio.Future[None]:
        self._waiter = asyncio.get_running_loop().create_future()
        return self._waiter

    def drained(self) -> asyncio.Future[None] | None:
        """A future done when the transport takes more, or None when it takes it now."""
        if not self._writing_paused or self.lost:
            return None
        self._drain = asyncio.get_running_loop().create_future()
        return self._drain

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


async def _within(future: asyncio.Future[None], timeout: float | None) -> None:
    """Wait for ``future``; TimeoutError when ``timeout`` seconds pass first."""
    if timeout is None:
        await future
        return
    timer = asyncio.get_running_loop().call_later(timeout, _expire, future)
    try:
        await future
    finally:
        timer.cancel()


def _expire(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        if not protocol.readable():
            if protocol.lost and protocol.error is not None:
                raise httpcore.ReadError(str(protocol.error)) from protocol.error
            try:
                await _within(protocol.waiter(), timeout)
            except TimeoutError:
                raise httpcore.ReadTimeout("timed out reading") from None
        data = protocol.take(max_bytes)
        if not data and protocol.error is not None:
            raise httpcore.ReadError(str(protocol.error)) from protocol.error
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        protocol = self._protocol
        if protocol.lost or self._transport.is_closing():
            error = protocol.error
            raise httpcore.WriteError(
                str(error) if error else "the connection is closed"
            ) from error
        self._transport.write(buffer)
        drained = protocol.drained()
        if drained is not None:
            try:
                await _within(drained, timeout)
            except TimeoutError:
                raise httpcore.WriteTimeout("timed out writing") from None
            if protocol.lost and protocol.error is not None:
                raise httpcore.WriteError(str(protocol.error)) from protocol.error

    async def aclose(self) -> None:
        self._transport.close()
        # one turn of the loop: a plain socket is closed (its connection_lost run) on return
        await asyncio.sleep(0)

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(
                    self._transport,
                    self._protocol,
                    ssl_context,
                    server_hostname=server_hostname,
                    ssl_handshake_timeout=timeout,
                )
        except TimeoutError:
            self._transport.abort()
            raise httpcore.ConnectTimeout("timed out in the TLS handshake") from None
        except OSError as exc:  # ssl.SSLError among them
            self._transport.abort()
            raise httpcore.ConnectError(str(exc)) from exc
        if transport is None:  # the connection closed during the handshake
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        # the protocol now reads through TLS: its flow control pauses the TLS transport
        self._protocol.transport = transport
        return _Stream(transport, self._protocol)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return self._protocol.readable()
        if info == "ssl_object":
            return self._transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info == "socket":
            return self._transport.get_extra_info("socket")
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend on the running asyncio loop (see the module's text)."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
                sock = await aiohappyeyeballs.start_connection(
                    infos,
                    local_addr_infos=(
                        aiohappyeyeballs.addr_to_addr_infos((local_address, 0))
                        if local_address
                        else None
                    ),
                    happy_eyeballs_delay=_HAPPY_EYEBALLS,
                    interleave=1,
                )
                transport, protocol = await loop.create_connection(_Protocol, sock=sock)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"timed out connecting to {host}:{port}") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        _set_options(transport, socket_options)
        return _Stream(transport, protocol)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_unix_connection(_Protocol, path)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"timed out connecting to {path}") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        _set_options(transport, socket_options)
        return _Stream(transport, protocol)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _set_options(transport: asyncio.Transport, options: Iterable[SocketOption] | None) -> None:
    sock: socket.socket | None = transport.get_extra_info("socket")
    if sock is None:
        return
    for option in options or ():
        sock.setsockopt(*option)


def use_asyncio_backend(client: httpx.AsyncClient) -> bool:
    """Put :class:`AsyncioBackend` under the connection pools of ``client`` (its transport and
    any proxy mounts an environment gave it). True when the client's own transport took it;
    False for a transport that is not httpx's (a test's mock), left as it is.

    httpx does not pass httpcore's ``network_backend`` option through, so this sets the
    backend of the pools httpx made, which keeps every other choice httpx made for the client
    (TLS, limits, the proxies of the environment)."""
    backend = AsyncioBackend()
    took = False
    transports: list[object] = [client._transport, *client._mounts.values()]
    for index, transport in enumerate(transports):
        pool = (
            getattr(transport, "_pool", None)
            if isinstance(transport, httpx.AsyncHTTPTransport)
            else None
        )
        if isinstance(pool, httpcore.AsyncConnectionPool) and hasattr(pool, "_network_backend"):
            pool._network_backend = backend
            took = took or index == 0
    return took
