"""The HTTP service as a real process on a loopback port, driven by a real HTTP client."""

from __future__ import annotations

import base64
import http.client
import io
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageStat
from plugin_backends import faulty_backend_env

import heicconv
from heicconv.testing.fixtures import make_heic
from heicconv.testing.plugin import require_backend, require_module

require_module("uvicorn", "server")
require_module("starlette", "server")


@dataclass
class Server:
    host: str
    port: int
    proc: subprocess.Popen[bytes]

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        return self.request("POST", path, body, {"Content-Type": "image/heic", **(headers or {})})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(
    env: dict[str, str] | None = None, *args: str, launcher: tuple[str, ...] = ("-m", "heicconv", "serve")
) -> Server:
    """``python -m heicconv serve`` on a free loopback port; returns once /health answers (200, or 503 if the
    backend cannot load)."""
    port = _free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HEICCONV_") or k == "HEICCONV_CORPUS"}
    full_env.update(env or {})
    cmd = [sys.executable, *launcher, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", *args]
    # A session of its own, so a stuck server and its pool workers can be killed together.
    proc = subprocess.Popen(cmd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server("127.0.0.1", port, proc)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.communicate()[0].decode('utf-8', 'replace')}")
        try:
            if server.request("GET", "/health")[0] in (200, 503):
                return server
        except OSError:
            time.sleep(0.05)
    stop_server(server)
    raise RuntimeError("server did not answer /health within 30 s")


def slow_backend_env(directory: Path, seconds: float) -> dict[str, str]:
    """Server environment whose backend sleeps ``seconds`` before converting a photo 1000 pixels wide or more.

    A real 27 MP photo took 0.9 s here but beat a 1 s timeout on a faster machine (in CI), so the timeout
    tests use a backend that sleeps, installed through an entry point so the server's workers find it too.
    """
    return faulty_backend_env(directory, f"{seconds:g}")


def stop_server(server: Server) -> str:
    """SIGTERM (a graceful uvicorn shutdown); the server's own process group is killed if it lingers."""
    server.proc.terminate()
    try:
        out = server.proc.communicate(timeout=15)[0]
    except subprocess.TimeoutExpired:
        os.killpg(server.proc.pid, signal.SIGKILL)
        out = server.proc.communicate(timeout=15)[0]
    return out.decode("utf-8", "replace")


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    srv = start_server(
        {"HEICCONV_BACKEND": "pillow", "HEICCONV_MAX_PIXELS": "200000", "HEICCONV_SERVER_MAX_BODY_BYTES": "1000000"},
        "--workers",
        "2",
        "--queue",
        "8",
    )
    yield srv
    stop_server(srv)


def _json(status: int, headers: dict[str, str], body: bytes, expected: int) -> dict[str, Any]:
    assert status == expected, body[:300]
    assert headers["content-type"] == "application/json"
    assert b"Traceback" not in body
    payload: dict[str, Any] = json.loads(body)
    assert payload["status"] == expected
    return payload


def _open(body: bytes) -> Any:
    return Image.open(io.BytesIO(body))


def test_health_and_backends(server: Server) -> None:
    status, _, body = server.request("GET", "/health")
    health = json.loads(body)
    assert status == 200 and health["backend"] == "pillow" and health["capacity"] == 10
    status, _, body = server.request("GET", "/backends")
    assert status == 200 and {b["name"] for b in json.loads(body)["backends"]} >= {"pillow"}


def test_convert_raw_body(server: Server) -> None:
    status, headers, body = server.post("/convert?format=png", make_heic(size=(64, 48)))
    assert status == 200, body
    assert headers["content-type"] == "image/png" and headers["x-heicconv-backend"] == "pillow"
    with _open(body) as img:
        assert (img.format, img.size) == ("PNG", (64, 48))


def test_convert_options_from_the_query(server: Server) -> None:
    status, headers, body = server.post("/convert?format=webp&quality=70&max_size=32x32", make_heic(size=(64, 48)))
    assert status == 200 and headers["content-type"] == "image/webp"
    with _open(body) as img:
        assert (img.format, img.size) == ("WEBP", (32, 24))


# What Chrome and Firefox send with a form submission or a navigation (both list AVIF).
BROWSER_ACCEPT = {
    "chrome": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,"
    "application/signed-exchange;v=b3;q=0.7",
    "firefox": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/png,image/svg+xml,"
    "*/*;q=0.8",
}


def _form(image: bytes, boundary: str = "----WebKitFormBoundary7MA4YWxkTrZu0gW") -> tuple[bytes, str]:
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="IMG_0001.HEIC"\r\n'
    body = (head + "Content-Type: image/heic\r\n\r\n").encode() + image + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("browser", BROWSER_ACCEPT)
def test_a_browser_form_upload_gets_the_configured_format_not_avif(server: Server, browser: str) -> None:
    body, content_type = _form(make_heic(size=(64, 48)))
    headers = {"Content-Type": content_type, "Accept": BROWSER_ACCEPT[browser]}
    status, got, out = server.request("POST", "/convert", body, headers)
    assert status == 200 and got["content-type"] == "image/jpeg" and "vary" not in got
    with _open(out) as img:
        assert img.format == "JPEG"


def test_format_auto_negotiates_from_accept(server: Server) -> None:
    body, content_type = _form(make_heic(size=(64, 48)))
    chrome = {"Content-Type": content_type, "Accept": BROWSER_ACCEPT["chrome"]}
    status, got, _ = server.request("POST", "/convert?format=auto", body, chrome)
    assert status == 200 and got["content-type"] == "image/avif" and got["vary"] == "Accept"
    webp_first = {"Content-Type": content_type, "Accept": "image/avif;q=0.5,image/webp"}
    assert server.request("POST", "/convert?format=auto", body, webp_first)[1]["content-type"] == "image/webp"
    anything = {"Content-Type": content_type, "Accept": "*/*"}  # names no image type: the configured format
    assert server.request("POST", "/convert?format=auto", body, anything)[1]["content-type"] == "image/jpeg"


def test_convert_multipart_field_file(server: Server) -> None:
    boundary = "----heicconv-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="IMG 0001 (2).HEIC"\r\n'
            "Content-Type: image/heic\r\n\r\n"
        ).encode()
        + make_heic(size=(40, 20))
        + f"\r\n--{boundary}--\r\n".encode()
    )
    status, headers, out = server.request(
        "POST", "/convert?format=jpeg", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert status == 200 and headers["content-type"] == "image/jpeg"
    with _open(out) as img:
        assert img.size == (40, 20)


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/convert", b"", 400, "bad_request"),
        ("/convert?format=gif", b"x", 400, "bad_request"),
        ("/convert?quality=high", b"x", 400, "bad_request"),
        ("/convert?colour=purple", b"x", 400, "bad_request"),
        ("/convert", b"GIF89a" + bytes(100), 415, "unsupported_format"),
        ("/convert", b"CUT", 422, "undecodable"),
        ("/convert", b"BIG", 413, "too_large"),
        ("/convert", b"HUGE", 413, "too_large"),
    ],
)
def test_errors_are_json_with_status(server: Server, path: str, body: bytes, status: int, code: str) -> None:
    if body == b"CUT":
        body = make_heic()[:250]
    elif body == b"BIG":
        body = make_heic(size=(600, 400))  # 240,000 pixels > HEICCONV_MAX_PIXELS
    elif body == b"HUGE":
        body = bytes(1_000_001)  # > HEICCONV_SERVER_MAX_BODY_BYTES
    payload = _json(*server.post(path, body), status)
    assert payload["error"] == code


def test_unknown_route_and_method_are_json(server: Server) -> None:
    assert _json(*server.request("GET", "/nowhere"), 404)["error"] == "not_found"
    assert _json(*server.request("GET", "/convert"), 405)["error"] == "method_not_allowed"


@pytest.fixture(scope="module")
def big_heic() -> bytes:
    return make_heic(size=(1600, 1200))


def test_burst_beyond_the_queue_answers_429_and_never_blocks_health(big_heic: bytes) -> None:
    srv = start_server({"HEICCONV_BACKEND": "pillow"}, "--workers", "1", "--queue", "1")
    try:
        results: list[tuple[int, dict[str, str], bytes]] = []
        start = threading.Barrier(9)
        health: list[dict[str, Any]] = []

        def convert() -> None:
            start.wait()
            results.append(srv.post("/convert?format=png", big_heic))

        threads = [threading.Thread(target=convert) for _ in range(8)]
        for t in threads:
            t.start()
        start.wait()
        # While conversions run, the event loop still answers (CPU work is in the pool).
        for _ in range(50):
            status, _, body = srv.request("GET", "/health")
            health.append(json.loads(body))
            if health[-1]["inflight"] > 0:
                break
            time.sleep(0.01)
        for t in threads:
            t.join(60)
        metrics = srv.request("GET", "/metrics")[2].decode()
    finally:
        stop_server(srv)
    statuses = sorted(r[0] for r in results)
    assert set(statuses) <= {200, 429} and statuses.count(200) >= 1 and 429 in statuses, statuses
    refused = f'heicconv_uploads_refused_total{{reason="workers_busy"}} {statuses.count(429)}.0'
    assert refused in metrics and 'heicconv_conversions_total{backend="pillow"' in metrics
    for status, headers, body in results:
        if status == 429:
            assert headers["retry-after"] == "1" and json.loads(body)["error"] == "busy"
    assert any(h["inflight"] > 0 for h in health)


def test_process_pool_converts(big_heic: bytes) -> None:
    srv = start_server({"HEICCONV_BACKEND": "pillow"}, "--workers", "1", "--pool", "process")
    try:
        status, _, body = srv.post("/convert?format=jpeg&max_size=300", big_heic)
        health = json.loads(srv.request("GET", "/health")[2])
    finally:
        stop_server(srv)
    assert status == 200 and health["pool"] == "process"
    with _open(body) as img:
        assert img.size == (300, 225)


def test_a_conversion_past_the_timeout_answers_504_and_frees_its_slot(big_heic: bytes) -> None:
    srv = start_server({"HEICCONV_BACKEND": "pillow"}, "--workers", "1", "--queue", "0", "--timeout", "0.001")
    try:
        payload = _json(*srv.post("/convert?format=png", big_heic), 504)
        # The worker finishes in the background; then the single slot is free again.
        for _ in range(500):
            if json.loads(srv.request("GET", "/health")[2])["inflight"] == 0:
                break
            time.sleep(0.01)
        health = json.loads(srv.request("GET", "/health")[2])
    finally:
        stop_server(srv)
    assert payload["error"] == "timeout"
    assert health["inflight"] == 0 and health["capacity"] == 1


def test_bad_server_setting_fails_at_start_naming_the_key() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEICCONV_")}
    env["HEICCONV_SERVER_QUEUE"] = "lots"
    out = subprocess.run(
        [sys.executable, "-m", "heicconv", "serve", "--port", "0"], env=env, capture_output=True, text=True, timeout=30
    )
    assert out.returncode != 0
    assert "server.queue" in out.stdout + out.stderr and "HEICCONV_SERVER_QUEUE" in out.stdout + out.stderr


# --- the same application code on both routes ---------------------------------------------------------------


def psnr(a: Any, b: Any) -> float:
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB"))
    mse = sum(v * v for v in ImageStat.Stat(diff).rms) / 3
    return math.inf if mse == 0 else 10 * math.log10(255 * 255 / mse)


Post = Callable[[str, bytes], tuple[int, dict[str, str], bytes]]


def photo_as_png(post: Post, photo: bytes) -> bytes:
    """The application snippet: it only knows how to POST, not where the service runs."""
    status, headers, body = post("/convert?format=png&max_size=512", photo)
    assert status == 200 and headers["content-type"] == "image/png", body[:200]
    return body


def _via_lambda(path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    from heicconv.aws_lambda import handler

    route, _, query = path.partition("?")
    params = dict(p.split("=", 1) for p in query.split("&") if p)
    event = {
        "version": "2.0",
        "rawPath": route,
        "rawQueryString": query,
        "queryStringParameters": params,
        "headers": {"content-type": "image/heic"},
        "requestContext": {"http": {"method": "POST"}},
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }
    answer = handler(event, None)
    return answer["statusCode"], {k.lower(): v for k, v in answer["headers"].items()}, base64.b64decode(answer["body"])


def _photos() -> list[tuple[str, bytes]]:
    """Real phone photos from the corpus when ``HEICCONV_CORPUS`` is set, else a synthetic one."""
    photos = [("synthetic 800x600", make_heic(size=(800, 600)))]
    corpus = os.environ.get("HEICCONV_CORPUS")
    if corpus:
        for name in ("real/xiaomi.heic", "real/arrow.heic"):  # an Android photo (no ICC), an iPhone one (ICC)
            path = os.path.join(corpus, name)
            if os.path.isfile(path):
                with open(path, "rb") as fh:
                    photos.append((name, fh.read()))
    return photos


@pytest.mark.parametrize("server_backend", ["vips", "wand"])
def test_same_snippet_same_picture_on_lambda_and_server(server_backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    require_backend(server_backend)
    for key in [k for k in os.environ if k.startswith("HEICCONV_") and k != "HEICCONV_CORPUS"]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HEICCONV_BACKEND", "pillow")
    heicconv.config.reset()
    srv = start_server({"HEICCONV_BACKEND": server_backend}, "--workers", "1")
    try:
        assert json.loads(srv.request("GET", "/health")[2])["backend"] == server_backend
        for name, photo in _photos():
            from_lambda = photo_as_png(_via_lambda, photo)
            from_server = photo_as_png(srv.post, photo)
            with _open(from_lambda) as a, _open(from_server) as b:
                assert a.size == b.size, name
                quality = psnr(a, b)
                print(f"\n{name}: pillow on Lambda vs {server_backend} in the service: PSNR {quality:.1f} dB")
                assert quality >= 35, (name, quality)
    finally:
        stop_server(srv)
