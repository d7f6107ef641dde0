"""Requests per second of the sandbox: ``python -m benchmarks.sandbox_rps [--seconds 5]``.

The sandbox runs in its own process (``Sandbox(subprocess=True)``); several client processes
drive it over keep-alive HTTP/1.1 connections with a minimal socket client (so the figure
measures the server, not the client library), alternating ``GET /epsilon/v1/customers/{id}``
and ``POST /epsilon/v1/customers/manage-segments``. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import socket
import tempfile
import time
from pathlib import Path

from reconciler.sandbox import (
    EPSILON_API_KEY,
    EPSILON_RETAILER_TEAM_ID,
    Sandbox,
    seed_state,
)

CUSTOMERS = 2000
SEGMENTS = [f"bench-segment-{i}" for i in range(10)]


def _request(method: str, path: str, body: bytes = b"") -> bytes:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Basic {EPSILON_API_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _read_response(sock: socket.socket, buf: bytearray) -> tuple[int, bytearray]:
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk
    end = buf.index(b"\r\n\r\n") + 4
    head = bytes(buf[:end]).decode("latin-1")
    status = int(head.split(" ", 2)[1])
    length = 0
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value)
    while len(buf) < end + length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk
    return status, buf[end + length :]


def _worker(port: int, seconds: float, seed: int, out: mp.Queue[tuple[int, int]]) -> None:
    rng = random.Random(seed)
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray()
    ok = errors = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        cid = f"bench-{rng.randrange(CUSTOMERS):05d}"
        if ok % 2:
            body = json.dumps(
                {
                    "customerId": cid,
                    "teamId": EPSILON_RETAILER_TEAM_ID,
                    "segments": {"segmentIds": rng.sample(SEGMENTS, 3)},
                }
            ).encode()
            sock.sendall(_request("POST", "/epsilon/v1/customers/manage-segments", body))
        else:
            sock.sendall(_request("GET", f"/epsilon/v1/customers/{cid}"))
        status, buf = _read_response(sock, buf)
        if status == 200:
            ok += 1
        else:
            errors += 1
    sock.close()
    out.put((ok, errors))


def run(seconds: float, clients: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        seed_state(
            db,
            {
                "epsilon": {
                    "segments": [{"segmentId": s, "name": s, "description": ""} for s in SEGMENTS],
                    "customers": [
                        {"id": f"bench-{i:05d}", "segmentIds": SEGMENTS[:2]}
                        for i in range(CUSTOMERS)
                    ],
                }
            },
        )
        with Sandbox(db, subprocess=True, talonone_rate_limit=0) as sb:
            queue: mp.Queue[tuple[int, int]] = mp.Queue()
            procs = [
                mp.Process(target=_worker, args=(sb.port, seconds, i, queue))
                for i in range(clients)
            ]
            started = time.perf_counter()
            for p in procs:
                p.start()
            results = [queue.get() for _ in procs]
            elapsed = time.perf_counter() - started
            for p in procs:
                p.join()
            logged = len(sb.requests())
    ok = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    rps = ok / elapsed
    print(
        f"sandbox: {ok} ok + {errors} errors in {elapsed:.2f} s with {clients} client "
        f"processes -> {rps:,.0f} req/s (request log holds {logged})"
    )
    return rps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=3)
    args = parser.parse_args()
    run(args.seconds, args.clients)


if __name__ == "__main__":
    main()
