"""Slow clients against a real ``heicconv serve``: they must not starve the clients that behave.

Loopback only: Linux routes all of 127.0.0.0/8 to this machine, so a client bound to 127.0.0.2 is
another client address to the service. Every wait is bounded; nothing asserts a duration, only
what each client was answered.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from test_server import Server, start_server, stop_server
from test_server_uploads import answer, health, wait_for_uploads

from heicconv.server.uploads import EVICT_AFTER_S, Admission, Upload, Uploads
from heicconv.testing.fixtures import make_heic
from heicconv.testing.plugin import require_module

require_module("uvicorn", "server")

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="clients bound to 127.0.0.x addresses")

PHOTO = make_heic(size=(64, 48))


def slow_upload(server: Server, source: str, sent: bytes = bytes(100), length: int = 100_000) -> socket.socket:
    """From ``source``: the headers and the first ``sent`` bytes of a ``length``-byte body, then nothing."""
    sock = socket.create_connection((server.host, server.port), timeout=60, source_address=(source, 0))
    head = (
        "POST /convert?format=jpeg HTTP/1.1\r\nHost: heicconv.test\r\nContent-Type: image/heic\r\n"
        f"Content-Length: {length}\r\n\r\n"
    )
    sock.sendall(head.encode() + sent)
    return sock


def raw_answer(sock: socket.socket) -> tuple[int, dict[str, Any], bytes]:
    """The status and JSON body of one answer; after a 408, what followed it (b"" once the server closed)."""
    code, headers, payload = answer(sock.dup())
    rest = b"(open)"
    if code == 408:  # a refused body is drained instead, so only a dropped one is closed
        sock.settimeout(30)
        try:
            rest = sock.recv(1)
        except ConnectionResetError:
            rest = b""
    sock.close()
    return code, {**headers, **payload}, rest


@pytest.fixture
def service() -> Iterator[Server]:
    """The defaults (16 uploads, 8 per client, 8 KiB/s after the grace period), the grace shortened to 2 s."""
    srv = start_server({"HEICCONV_BACKEND": "pillow"}, "--workers", "1", "--pool", "thread", "--upload-grace", "2")
    yield srv
    stop_server(srv)


def test_sixteen_slow_connections_from_one_address_leave_the_service_to_the_others(service: Server) -> None:
    slow = [slow_upload(service, "127.0.0.2") for _ in range(16)]
    wait_for_uploads(service, 8)  # the client's share; its other eight are refused at once
    status, headers, body = service.post("/convert?format=png", PHOTO)  # from 127.0.0.1
    assert status == 200 and headers["content-type"] == "image/png", body[:200]
    answers = [raw_answer(sock) for sock in slow]
    refused = [a for a in answers if a[0] == 429]
    dropped = [a for a in answers if a[0] == 408]
    assert len(refused) == len(dropped) == 8, [a[:2] for a in answers]
    assert all("this client already sends 8 request bodies" in a[1]["message"] for a in refused)
    # Past the grace period, 100 bytes is far below 8 KiB/s: dropped, and the connection closed.
    assert all("slower than 8 KiB/s" in a[1]["message"] and a[2] == b"" for a in dropped)
    assert health(service)[1]["uploading"] == 0


def test_slow_connections_from_many_addresses_give_their_slots_up_to_a_new_client(service: Server) -> None:
    slow = [slow_upload(service, f"127.0.0.{n}") for n in range(2, 18)]
    wait_for_uploads(service, 16)  # every upload slot is taken
    time.sleep(EVICT_AFTER_S + 0.1)  # each has been arriving long enough to be judged slow
    served = service.post("/convert?format=png", PHOTO)
    answers = [raw_answer(sock) for sock in slow]
    metrics = service.request("GET", "/metrics")[2].decode()
    assert served[0] == 200
    assert [a[0] for a in answers] == [408] * 16
    evicted = [a for a in answers if "another request needed its slot" in a[1]["message"]]
    assert len(evicted) == 1 and evicted[0][2] == b""
    assert 'heicconv_uploads_refused_total{reason="evicted"} 1.0' in metrics


def test_a_body_that_keeps_up_keeps_its_slot() -> None:
    rule = Admission(body_timeout=60, min_rate=8192, grace=5)
    uploads = Uploads(limit=2, per_client=0, admission=rule)
    steady, stalled = uploads.admit("127.0.0.2"), uploads.admit("127.0.0.3")
    assert isinstance(steady, Upload) and isinstance(stalled, Upload)
    for upload, received in ((steady, 30_000), (stalled, 100)):
        upload.started -= 3  # 3 s in: 30 KB keeps up with 8 KiB/s, 100 bytes does not
        upload.received = received
    newcomer = uploads.admit("127.0.0.4")
    assert isinstance(newcomer, Upload) and stalled.evicted.is_set() and not steady.evicted.is_set()
    busy = ("uploads_full", "2 request bodies are being received; retry shortly")
    assert uploads.admit("127.0.0.5") == busy  # none is behind now
    assert [u.client for u in uploads.active] == ["127.0.0.2", "127.0.0.4"]


def test_a_trickling_body_is_dropped_at_the_minimum_rate_not_at_the_body_timeout() -> None:
    srv = start_server(
        {"HEICCONV_BACKEND": "pillow"},
        "--pool",
        "thread",
        "--workers",
        "1",
        "--upload-grace",
        "1",
        "--body-timeout",
        "600",
    )
    stop = threading.Event()
    try:
        sock = slow_upload(srv, "127.0.0.2", sent=b"")

        def trickle() -> None:  # 10 bytes a second: it never stalls, it is only slow
            while not stop.wait(0.1):
                try:
                    sock.sendall(b"\0")
                except OSError:
                    return

        threading.Thread(target=trickle, daemon=True).start()
        code, payload, rest = raw_answer(sock)
    finally:
        stop.set()
        stop_server(srv)
    assert code == 408 and payload["error"] == "body_timeout" and rest == b""
    assert "slower than 8 KiB/s" in payload["message"], payload


def test_a_fast_body_passes_a_high_minimum_rate() -> None:
    srv = start_server(
        {"HEICCONV_BACKEND": "pillow"}, "--pool", "thread", "--min-upload-rate", "1024", "--upload-grace", "0.5"
    )
    try:
        status = srv.post("/convert?format=png", make_heic(size=(640, 480)))[0]
    finally:
        stop_server(srv)
    assert status == 200


def test_per_client_limit_counts_each_address_alone() -> None:
    srv = start_server(
        {"HEICCONV_BACKEND": "pillow"}, "--pool", "thread", "--uploads-per-client", "2", "--body-timeout", "2"
    )
    try:
        held = [slow_upload(srv, "127.0.0.2") for _ in range(2)]
        wait_for_uploads(srv, 2)
        third = raw_answer(slow_upload(srv, "127.0.0.2"))
        other = slow_upload(srv, "127.0.0.3")
        wait_for_uploads(srv, 3)  # another address is admitted
        for sock in [*held, other]:
            sock.close()
        wait_for_uploads(srv, 0)
        metrics = srv.request("GET", "/metrics")[2].decode()
    finally:
        stop_server(srv)
    assert third[0] == 429 and "this client already sends 2 request bodies" in third[1]["message"]
    assert 'heicconv_uploads_refused_total{reason="per_client"} 1.0' in metrics


def read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    sock.settimeout(30)
    with sock:
        while chunk := sock.recv(65536):
            data += chunk
    return data


@pytest.mark.parametrize("sent", [b"", b"POST /convert HTTP/1.1\r\nHost: heicconv.test\r\nX-Slow: "])
def test_headers_that_do_not_arrive_are_answered_408_and_closed(sent: bytes) -> None:
    srv = start_server({"HEICCONV_BACKEND": "pillow"}, "--pool", "thread", "--header-timeout", "1")
    try:
        sock = socket.create_connection((srv.host, srv.port), timeout=30)
        sock.sendall(sent)
        data = read_until_closed(sock)
        served = srv.post("/convert?format=png", PHOTO)[0]
        metrics = srv.request("GET", "/metrics")[2].decode()
    finally:
        stop_server(srv)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ") and b"Connection: close" in head
    assert json.loads(body)["error"] == "header_timeout"
    assert served == 200 and 'heicconv_uploads_refused_total{reason="header_timeout"} 1.0' in metrics


def test_the_header_deadline_applies_to_each_request_of_a_kept_alive_connection() -> None:
    srv = start_server({"HEICCONV_BACKEND": "pillow"}, "--pool", "thread", "--header-timeout", "1")
    try:
        sock = socket.create_connection((srv.host, srv.port), timeout=30)
        sock.sendall(b"GET /ready HTTP/1.1\r\nHost: heicconv.test\r\n\r\n")
        first = b""
        while b'"status": "ready"' not in first:
            first += sock.recv(65536)
        sock.sendall(b"GET /ready HTTP/1.1\r\n")  # the next request's headers stop half-way
        second = read_until_closed(sock)
    finally:
        stop_server(srv)
    assert first.startswith(b"HTTP/1.1 200 ")
    assert second.startswith(b"HTTP/1.1 408 ") and b"header_timeout" in second  # and closed: recv returned b""
