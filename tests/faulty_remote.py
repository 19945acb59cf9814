"""A loopback remote that answers ``GET /health`` as heicconv does, then fails the conversion in one way.

For the ``http`` backend it is a heicconv service; for the ``lambda`` backend, a Lambda Invoke endpoint
(the health check and the conversion are both Invokes; the event's ``rawPath`` tells them apart). What the
conversion meets is the fault:

- ``silent``: the request is read and never answered (the connection stays open);
- ``slow_head``: the status line and headers, their last ``trickle`` bytes one every ``interval`` seconds;
- ``slow_body``: the headers at once, then the body, its last ``trickle`` bytes one every ``interval`` seconds;
- ``reset``: the headers and part of the body, then a TCP reset;
- ``short_body``: the headers, then fewer bytes than ``Content-Length`` says, then a normal close;
- ``cut_image``: a 200 whose image (a JPEG) is cut short, with a ``Content-Length`` that matches it;
- ``busy``: a 503 ``busy`` answer with ``Retry-After: 1``, every time.

With ``tls`` (a server-side ``ssl.SSLContext``) it speaks https; with ``tls_stall`` it accepts connections
and never answers the TLS handshake. Without either, a TLS handshake is answered ``400`` in plain HTTP, as
an HTTP server answers an https URL pointed at it. ``close()`` stops listening (a later connection is refused) and ends
the connections it holds.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import ssl
import struct
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from heicconv.backends import registry
from heicconv.testing import fixtures

FAULTS = ("silent", "slow_head", "slow_body", "reset", "short_body", "cut_image", "busy")


def _health() -> dict[str, Any]:
    described = registry.status("pillow").to_dict()
    return {
        "status": "ok",
        "backend": "pillow",
        "versions": {"heicconv": "test"},
        "capabilities": {key: described[key] for key in ("inputs", "outputs", "features")},
    }


def _http(status: int, headers: dict[str, str], body: bytes) -> tuple[bytes, bytes]:
    """The head and body of an HTTP/1.1 answer."""
    reason = {200: "OK", 503: "Service Unavailable"}.get(status, "Status")
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers.items()), "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), body


class FaultyRemote:
    """The server, listening on 127.0.0.1 in threads of its own from construction until :meth:`close`."""

    def __init__(
        self,
        kind: str,
        fault: str,
        *,
        interval: float = 0.2,
        trickle: int = 40,
        tls: ssl.SSLContext | None = None,
        tls_stall: bool = False,
    ) -> None:
        assert kind in ("http", "lambda") and fault in FAULTS
        self.kind, self.fault, self.tls, self.tls_stall = kind, fault, tls, tls_stall
        self.interval, self.trickle = interval, trickle
        self.conversions = 0  # conversion requests received
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls or self.tls_stall else 'http'}://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread: nothing listens from here on
        self._listener.close()
        with self._lock:
            for conn in self._held:
                conn.close()

    # -- serving ---------------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._held.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.tls_stall:
                self._stop.wait(30)
                return
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            elif conn.recv(1, socket.MSG_PEEK) == b"\x16":  # a TLS handshake: answered as a plain HTTP server does
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            path, body = _read_request(conn)
            if self._is_health(path, body):
                head, payload = self._answer(200, {"content-type": "application/json"}, json.dumps(_health()).encode())
                conn.sendall(head + payload)
                return
            self.conversions += 1
            self._fail(conn)
        except OSError:  # the client went away, or the server is closing: nothing more to do
            pass
        finally:
            conn.close()

    def _is_health(self, path: str, body: bytes) -> bool:
        if self.kind == "http":
            return path.partition("?")[0].endswith("/health")
        return bool(json.loads(body).get("rawPath") == "/health")

    def _answer(self, status: int, headers: dict[str, str], body: bytes) -> tuple[bytes, bytes]:
        """What the remote answers: as it is over HTTP; inside a 200 Invoke answer for Lambda."""
        if self.kind == "http":
            return _http(status, {**headers, "Content-Length": str(len(body))}, body)
        proxy = {
            "statusCode": status,
            "headers": headers,
            "body": base64.b64encode(body).decode(),
            "isBase64Encoded": True,
        }
        payload = json.dumps(proxy).encode()
        return _http(200, {"Content-Type": "application/json", "Content-Length": str(len(payload))}, payload)

    def _fail(self, conn: socket.socket) -> None:
        image = fixtures.make_image("jpeg")
        head, body = self._answer(200, {"content-type": "image/jpeg", "x-image-size": "64x48"}, image)
        if self.fault == "silent":
            self._stop.wait(30)
        elif self.fault == "slow_head":
            self._trickle(conn, head, body)
        elif self.fault == "slow_body":
            self._trickle(conn, head + body, b"")
        elif self.fault == "reset":
            conn.sendall(head + body[: len(body) // 2])
            time.sleep(0.05)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close sends RST
        elif self.fault == "short_body":
            conn.sendall(head + body[: len(body) // 2])
        elif self.fault == "cut_image":
            cut = image[: len(image) * 2 // 3]
            head, body = self._answer(200, {"content-type": "image/jpeg", "x-image-size": "64x48"}, cut)
            conn.sendall(head + body)
        elif self.fault == "busy":
            busy = {"error": "busy", "message": "all workers are busy", "status": 503}
            headers = {"content-type": "application/json", "retry-after": "1"}
            head, body = self._answer(503, headers, json.dumps(busy).encode())
            conn.sendall(head + body)

    def _trickle(self, conn: socket.socket, data: bytes, rest: bytes) -> None:
        """``data`` with its last ``trickle`` bytes one at a time, then ``rest`` at once."""
        slow = max(0, len(data) - self.trickle)
        conn.sendall(data[:slow])
        for i in range(slow, len(data)):
            if self._stop.wait(self.interval):
                return
            conn.sendall(data[i : i + 1])
        conn.sendall(rest)


def _read_request(conn: socket.socket) -> tuple[str, bytes]:
    """The request's target and body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("the client closed before its request ended")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("the client closed before its request ended")
        body += chunk
    return lines[0].split(" ")[1], body


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that nobody trusts, and its key (P-256: made in milliseconds)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    key_type = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    subject = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        ["openssl", "req", "-x509", *key_type, "-days", "1", *subject, "-keyout", str(key), "-out", str(cert)],
        capture_output=True,
        check=True,
    )
    return cert, key
