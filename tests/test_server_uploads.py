"""Slow, stalled and interrupted uploads against a real ``heicconv serve``, with raw sockets.

A request's body is read before it takes a conversion slot, within ``body_timeout`` (else 408) and
``max_body_bytes`` (else 413); at most ``uploads`` bodies are read at once. ``GET /ready`` says
whether a new conversion would be refused.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from test_server import Server, start_server, stop_server

from heicconv.testing.fixtures import make_heic
from heicconv.testing.plugin import require_module

require_module("uvicorn", "server")


def stall(server: Server, sent: bytes = bytes(100), length: int = 100_000) -> socket.socket:
    """A client that sends the headers and part of the body, then nothing more."""
    sock = socket.create_connection((server.host, server.port), timeout=60)
    head = (
        "POST /convert?format=jpeg HTTP/1.1\r\nHost: heicconv.test\r\nContent-Type: image/heic\r\n"
        f"Content-Length: {length}\r\n\r\n"
    )
    sock.sendall(head.encode() + sent)
    return sock


def answer(sock: socket.socket) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Read one response (its headers, then Content-Length bytes of JSON)."""
    data = b""
    with sock:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"the connection closed without an answer: {data!r}"
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        while len(body) < int(headers["content-length"]):
            body += sock.recv(65536)
    return int(status_line.split()[1]), headers, json.loads(body)


def health(server: Server, path: str = "/health") -> tuple[int, dict[str, Any]]:
    status, _, body = server.request("GET", path)
    payload: dict[str, Any] = json.loads(body)
    return status, payload


def wait_for_uploads(server: Server, count: int) -> None:
    for _ in range(1000):
        if health(server)[1]["uploading"] == count:
            return
        time.sleep(0.02)
    raise AssertionError(f"the server never saw {count} uploads in progress: {health(server)[1]}")


@pytest.fixture
def tight() -> Iterator[Server]:
    """One worker, one waiting place: the configuration of the issue's report."""
    srv = start_server({"HEICCONV_BACKEND": "pillow"}, "--workers", "1", "--queue", "1", "--body-timeout", "2")
    yield srv
    stop_server(srv)


def test_stalled_uploads_hold_no_conversion_slot(tight: Server) -> None:
    stalled = [stall(tight) for _ in range(2)]
    wait_for_uploads(tight, 2)
    # Two clients stuck mid-body: the service is still ready, and other clients convert.
    status, ready = health(tight, "/ready")
    assert status == 200 and ready["inflight"] == 0 and not ready["saturated"]
    results = [tight.post("/convert?format=png", make_heic(size=(64, 48)))[0] for _ in range(3)]
    assert results == [200, 200, 200]
    # The stalled clients are answered 408 once body_timeout has passed, and the connection closed.
    for sock in stalled:
        with sock.dup() as still_open:
            code, headers, payload = answer(sock)
            assert code == 408 and payload["error"] == "body_timeout" and "2 s" in payload["message"]
            assert headers["connection"] == "close" and still_open.recv(1) == b""
    assert health(tight)[1]["uploading"] == 0


def test_an_interrupted_upload_frees_everything() -> None:
    srv = start_server({"HEICCONV_BACKEND": "pillow"}, "--workers", "1", "--queue", "0", "--log-level", "info")
    try:
        sock = stall(srv, sent=bytes(5000))
        wait_for_uploads(srv, 1)
        sock.close()  # the client goes away mid-body
        wait_for_uploads(srv, 0)
        status = srv.post("/convert?format=png", make_heic(size=(64, 48)))[0]
    finally:
        out = stop_server(srv)
    assert status == 200
    assert "Traceback" not in out and "internal" not in out, out


def test_a_body_past_the_limit_is_refused_while_it_arrives() -> None:
    srv = start_server({"HEICCONV_BACKEND": "pillow"}, "--max-body-bytes", "10000")
    try:
        # No Content-Length (chunked): the limit is applied to the bytes as they come.
        sock = socket.create_connection((srv.host, srv.port), timeout=60)
        head = b"POST /convert HTTP/1.1\r\nHost: heicconv.test\r\nTransfer-Encoding: chunked\r\n\r\n"
        sock.sendall(head + b"%x\r\n%s\r\n0\r\n\r\n" % (20000, bytes(20000)))
        code, _, payload = answer(sock)
    finally:
        stop_server(srv)
    assert code == 413 and payload["error"] == "too_large"


def test_uploads_beyond_the_limit_are_refused_and_readiness_says_so() -> None:
    # No minimum rate: the stalled bodies would otherwise give their slots up to the third (test_server_slow_clients).
    flags = ("--uploads", "2", "--body-timeout", "2", "--min-upload-rate", "0")
    srv = start_server({"HEICCONV_BACKEND": "pillow"}, *flags)
    try:
        stalled = [stall(srv) for _ in range(2)]
        wait_for_uploads(srv, 2)
        status, ready = health(srv, "/ready")
        refused = srv.post("/convert?format=png", make_heic(size=(64, 48)))
        for sock in stalled:
            answer(sock)
        after = health(srv, "/ready")[0]
    finally:
        stop_server(srv)
    assert status == 503 and ready["status"] == "busy" and ready["uploading"] == 2
    assert refused[0] == 429 and json.loads(refused[2])["error"] == "busy"
    assert after == 200


def test_readiness_reports_a_full_pool(tight: Server) -> None:
    big = make_heic(size=(6000, 4500), quality=10)
    done: list[int] = []
    running = [
        threading.Thread(target=lambda: done.append(tight.post("/convert?format=png", big)[0])) for _ in range(2)
    ]
    for t in running:
        t.start()
    seen = []
    while len(done) < 2 and not any(s == 503 for s, _ in seen):
        seen.append(health(tight, "/ready"))
    for t in running:
        t.join(120)
    ready = next(r for s, r in seen if s == 503)
    assert ready["saturated"] and ready["inflight"] == ready["capacity"] == 2
    assert health(tight, "/health")[0] == 200  # liveness is not readiness: a busy service is alive
    assert health(tight, "/ready")[0] == 200
