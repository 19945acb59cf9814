"""The ``http`` and ``lambda`` backends against real components on loopback.

``http`` talks to a real ``heicconv serve`` process; ``lambda`` uses boto3 against a loopback Lambda
Invoke endpoint (tests/lambda_endpoint.py) that runs the real handler in its own process, with the
function's own settings. Both must meet the conformance suite, give the same picture as the local
backend, and raise the same error classes.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import lambda_endpoint
import numpy as np
import pytest
from PIL import Image
from plugin_backends import install_backend
from test_server import Server, start_server, stop_server

import heicconv
from heicconv.testing import fixtures
from heicconv.testing.conformance import ConformanceSuite
from heicconv.testing.plugin import require_module

require_module("uvicorn", "server")
require_module("starlette", "server")

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def service() -> Iterator[Server]:
    """A real service converting with pillow, two process workers."""
    srv = start_server({"HEICCONV_BACKEND": "pillow"}, "--workers", "2", "--queue", "16")
    yield srv
    stop_server(srv)


@pytest.fixture
def http(service: Server, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("HEICCONV_HTTP_URL", f"http://{service.host}:{service.port}")
    return "http"


@pytest.fixture(scope="module")
def invoke_endpoint() -> Iterator[str]:
    """tests/lambda_endpoint.py in its own process: the function's environment is not the caller's."""
    require_module("boto3", "lambda")
    proc, url = lambda_endpoint.start({"HEICCONV_BACKEND": "pillow"})
    yield url
    lambda_endpoint.stop(proc)


@pytest.fixture
def lam(invoke_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", invoke_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("HEICCONV_LAMBDA_FUNCTION", "heicconv")
    return "lambda"


class TestHttpConformance(ConformanceSuite):
    @pytest.fixture
    def backend_name(self, http: str) -> str:
        return http


class TestLambdaConformance(ConformanceSuite):
    @pytest.fixture
    def backend_name(self, lam: str) -> str:
        return lam


# --- the same picture as in process ---------------------------------------------------------------------------


def _pixels(data: bytes) -> Any:
    img = Image.open(io.BytesIO(data))
    return np.asarray(img.convert("RGBA" if "A" in img.mode else "RGB"), dtype=np.float64)


def _psnr(a: bytes, b: bytes) -> float:
    pa, pb = _pixels(a), _pixels(b)
    assert pa.shape == pb.shape
    mse = float(((pa - pb) ** 2).mean())
    return 100.0 if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def _photos() -> list[Any]:
    from heicconv.container.colour import profile_from_nclx

    photos = [
        pytest.param(fixtures.make_heic((120, 80), quality=95), id="rgb"),
        pytest.param(fixtures.make_heic((90, 70), "RGBA", quality=95), id="rgba"),
        pytest.param(fixtures.make_heic((64, 48), bit_depth=10, quality=95), id="10-bit"),
        pytest.param(fixtures.make_iphone_heic((96, 64)), id="ios18-layout"),
    ]
    p3 = profile_from_nclx(12, 13)
    photos.append(pytest.param(fixtures.make_heic((80, 60), icc=p3, quality=95), id="p3-icc"))
    corpus = os.environ.get("HEICCONV_CORPUS")
    for name in ("real/xiaomi.heic", "real/arrow.heic"):
        if corpus and (Path(corpus) / name).is_file():
            photos.append(pytest.param((Path(corpus) / name).read_bytes(), id=name))
    return photos


@pytest.mark.parametrize("remote", ["http", "lambda"])
@pytest.mark.parametrize("photo", _photos())
def test_the_same_picture_as_in_process(remote: str, photo: bytes, request: pytest.FixtureRequest) -> None:
    name = request.getfixturevalue("http" if remote == "http" else "lam")
    options = heicconv.Options(max_size=512)
    here = heicconv.convert_with_report(photo, "png", options, backend="pillow")
    there = heicconv.convert_with_report(photo, "png", options, backend=name)
    assert (there.width, there.height) == (here.width, here.height)
    assert _psnr(here.data, there.data) >= 40
    assert there.backend == name and there.source == here.source
    assert [n for n in there.notes if n.kind != "backend"] == [n for n in here.notes if n.kind != "backend"]
    said = there.notes[0]
    assert said.kind == "backend" and "pillow" in said and "libheif" in said  # the remote, and its versions


def test_the_remote_carries_the_gain_map_once(http: str) -> None:
    photo = fixtures.make_hdr_heic((128, 96))
    here = heicconv.convert_with_report(photo, "jpeg", backend="pillow")
    there = heicconv.convert_with_report(photo, "jpeg", backend=http)
    assert [n for n in there.notes if n.kind == "hdr"] == [n for n in here.notes if n.kind == "hdr"] != []
    assert there.data.count(b"hdrgm:Version") == here.data.count(b"hdrgm:Version") > 0
    assert len(there.data) == len(here.data)


def _corrupted() -> list[Any]:
    corpus = os.environ.get("HEICCONV_CORPUS")
    if not corpus:
        return [pytest.param(fixtures.make_heic((64, 64))[:-40], id="truncated-fixture")]
    with open(Path(corpus) / "manifest.json", encoding="utf-8") as fh:
        files = json.load(fh)["files"]
    return [pytest.param(Path(corpus) / f["path"], id=f["path"]) for f in files if f["expect"] != "ok"]


@pytest.mark.parametrize("remote", ["http", "lambda"])
@pytest.mark.parametrize("source", _corrupted())
def test_corrupted_inputs_raise_the_same_class(remote: str, source: Any, request: pytest.FixtureRequest) -> None:
    name = request.getfixturevalue("http" if remote == "http" else "lam")
    data = source.read_bytes() if isinstance(source, Path) else source
    outcomes = []
    for backend in ("pillow", name):
        try:
            heicconv.convert(data, "png", backend=backend)
            outcomes.append("converted")
        except heicconv.HeicconvError as exc:
            outcomes.append(type(exc).__name__)
    assert outcomes[0] == outcomes[1], outcomes


def test_an_error_raised_by_the_remote_comes_back_as_its_class(monkeypatch: pytest.MonkeyPatch) -> None:
    """heicconv finds damaged files from the header, here; the remote's own, stricter limits are found there."""
    strict = start_server({"HEICCONV_BACKEND": "pillow", "HEICCONV_MAX_PIXELS": "1000"}, "--workers", "1")
    try:
        monkeypatch.setenv("HEICCONV_HTTP_URL", f"http://{strict.host}:{strict.port}")
        heicconv.convert(fixtures.make_heic((30, 30)), "png", backend="http")
        with pytest.raises(heicconv.LimitExceededError, match=r"max_pixels.*\(http backend: .* answered 413 too_large"):
            heicconv.convert(fixtures.make_heic((40, 30)), "png", backend="http")
    finally:
        stop_server(strict)


def test_limits_are_checked_here_before_anything_is_sent(http: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEICCONV_HTTP_URL", "http://127.0.0.1:9")  # discard: nothing listens
    heicconv.config.reset()
    bomb = fixtures.set_ispe(fixtures.make_heic((64, 64)), 40000, 40000)
    with pytest.raises(heicconv.LimitExceededError, match="max_pixels"):
        heicconv.convert(bomb, "jpeg", heicconv.Options(), backend="pillow", limits=heicconv.Limits(max_pixels=10**6))
    # The remote's capabilities are needed to plan: an unreachable remote says so, as unavailable.
    with pytest.raises(heicconv.BackendUnavailableError, match=r"cannot reach http://127\.0\.0\.1:9"):
        heicconv.convert(fixtures.make_heic(), "jpeg", backend="http")


def test_the_callers_options_win_over_the_endpoint_defaults(http: str) -> None:
    """The service strips location by default; the caller's effective options (keep) travel with the job."""
    data = fixtures.make_heic((40, 30), exif=fixtures.exif_block(gps=True))
    kept = heicconv.convert(data, "jpeg", backend=http)
    assert Image.open(io.BytesIO(kept)).getexif().get_ifd(0x8825)
    stripped = heicconv.convert(data, "jpeg", heicconv.Options(metadata="strip-location"), backend=http)
    assert not Image.open(io.BytesIO(stripped)).getexif().get_ifd(0x8825)


def test_auto_never_picks_a_remote_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEICCONV_BACKENDS", "http,pillow")
    with pytest.raises(heicconv.ConfigError, match="'http' converts remotely"):
        heicconv.config.settings()


def test_backends_listing_says_whether_the_remote_answers(http: str, monkeypatch: pytest.MonkeyPatch) -> None:
    listed = {b.name: b for b in heicconv.list_backends()}
    assert listed["http"].available and listed["http"].versions["remote"].startswith("pillow at http://")
    monkeypatch.setenv("HEICCONV_HTTP_URL", "http://127.0.0.1:9")
    listed = {b.name: b for b in heicconv.list_backends()}
    assert not listed["http"].available and "cannot reach" in listed["http"].reason


def test_a_slow_remote_raises_heicconvs_timeout(http: str, monkeypatch: pytest.MonkeyPatch) -> None:
    heicconv.convert(fixtures.make_heic(), "png", backend=http)  # the remote's /health is known
    monkeypatch.setenv("HEICCONV_HTTP_TIMEOUT", "0.001")
    with pytest.raises(heicconv.TimeoutError, match=r"did not answer within 0.001 s"):
        heicconv.convert(fixtures.make_heic((1024, 768)), "png", backend=http)


class _Busy(BaseHTTPRequestHandler):
    """A service in front of the real one that is busy (429, then 503) for its first answers."""

    protocol_version = "HTTP/1.1"
    upstream = ""
    busy = 0
    seen: list[str] = []  # noqa: RUF012 - one per test, reset by the fixture

    def _relay(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.seen.append(self.command)
        if self.command == "POST" and type(self).busy > 0:
            type(self).busy -= 1
            status = 429 if type(self).busy % 2 else 503
            payload = json.dumps({"error": "busy", "message": "all workers are busy", "status": status}).encode()
            self.send_response(status)
            self.send_header("Retry-After", "0")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        import http.client

        host, _, port = self.upstream.rpartition(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request(self.command, self.path, body=body or None, headers=dict(self.headers))
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("content-length", "connection", "transfer-encoding", "date", "server"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        conn.close()

    do_GET = do_POST = _relay

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def busy_front(service: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_Busy]]:
    handler = type("Busy", (_Busy,), {"upstream": f"{service.host}:{service.port}", "busy": 0, "seen": []})
    front = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=front.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HEICCONV_HTTP_URL", f"http://127.0.0.1:{front.server_address[1]}")
    yield handler
    front.shutdown()
    front.server_close()


def test_busy_answers_are_retried_with_backoff(busy_front: type[_Busy], monkeypatch: pytest.MonkeyPatch) -> None:
    busy_front.busy = 2
    assert heicconv.convert(fixtures.make_heic(), "png", backend="http")[:4] == b"\x89PNG"
    assert busy_front.seen.count("POST") == 3
    monkeypatch.setenv("HEICCONV_HTTP_RETRIES", "1")
    busy_front.busy = 5
    with pytest.raises(heicconv.BackendUnavailableError, match=r"answered 429 busy after 2 tries"):
        heicconv.convert(fixtures.make_heic(), "png", backend="http")


# --- async ------------------------------------------------------------------------------------------------------


def test_async_gives_the_same_result_and_errors(http: str) -> None:
    photos = [fixtures.make_heic((64 + 8 * i, 48)) for i in range(6)]

    async def main() -> tuple[list[heicconv.Result], list[heicconv.Result], BaseException]:
        remote = await asyncio.gather(*(heicconv.convert_with_report_async(p, "png", backend=http) for p in photos))
        local = await asyncio.gather(*(heicconv.convert_with_report_async(p, "png", backend="pillow") for p in photos))
        try:
            await heicconv.convert_async(fixtures.set_ispe(fixtures.make_heic((64, 64)), 128, 128), "png", backend=http)
        except heicconv.HeicconvError as exc:
            return list(remote), list(local), exc
        raise AssertionError("no error")

    remote, local, error = asyncio.run(main())
    for p, r, lo in zip(photos, remote, local, strict=True):
        assert r.data == heicconv.convert(p, "png", backend=http)
        assert lo.data == heicconv.convert(p, "png", backend="pillow")
        assert (r.width, r.height) == (lo.width, lo.height) and r.backend == "http"
    assert isinstance(error, heicconv.DecodeError)


def test_lambda_refuses_an_input_over_the_synchronous_payload_early(lam: str) -> None:
    big = fixtures.make_heic((64, 64)) + b"\0" * (5 * 1024 * 1024)  # trailing bytes: still a readable HEIC
    with pytest.raises(heicconv.LimitExceededError, match="synchronous Lambda invocation") as raised:
        heicconv.convert(big, "jpeg", backend=lam)
    assert "HEICCONV_LAMBDA_STAGING_BUCKET" in str(raised.value)  # the setting that sends it through S3


# --- the example application, unchanged, on three backends -------------------------------------------------------


@pytest.mark.parametrize("backend", ["pillow", "http", "lambda"])
def test_the_example_app_runs_unchanged(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEICCONV_")}
    if backend == "http":
        service = request.getfixturevalue("service")
        env["HEICCONV_HTTP_URL"] = f"http://{service.host}:{service.port}"
    elif backend == "lambda":
        env["AWS_ENDPOINT_URL_LAMBDA"] = request.getfixturevalue("invoke_endpoint")
        env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
        env["HEICCONV_LAMBDA_FUNCTION"] = "heicconv"
    env["HEICCONV_BACKEND"] = backend
    examples = HERE.parent / "examples"
    out = tmp_path / "thumb.jpg"
    run = subprocess.run(
        [sys.executable, str(examples / "thumbnail_app.py"), str(examples / "sample.heic"), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(f"320x240 by {backend}: backend: {backend}")
    local = heicconv.convert(
        (examples / "sample.heic").read_bytes(),
        "jpeg",
        heicconv.Options(max_size=320, quality=80, metadata="strip-location"),
        backend="pillow",
    )
    assert _psnr(out.read_bytes(), local) >= 40
    broken = tmp_path / "broken.heic"
    broken.write_bytes((examples / "sample.heic").read_bytes()[:-100])
    run = subprocess.run(
        [sys.executable, str(examples / "thumbnail_app.py"), str(broken), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "not a photo we can read" in run.stderr


# --- heicconv bench: the round trip beside the local backend ------------------------------------------------------


def test_bench_measures_the_round_trip_beside_the_local_backend(
    service: Server, invoke_endpoint: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEICCONV_")}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    env.update(
        HEICCONV_HTTP_URL=f"http://{service.host}:{service.port}",
        HEICCONV_LAMBDA_FUNCTION="heicconv",
        AWS_ENDPOINT_URL_LAMBDA=invoke_endpoint,
    )
    photo = tmp_path / "photo.heic"
    photo.write_bytes(fixtures.make_heic((320, 240)))
    out = tmp_path / "report"
    cmd = [sys.executable, "-m", "heicconv", "bench", str(photo), "--backends", "pillow,http,lambda"]
    done = subprocess.run(
        [*cmd, "--runs", "2", "--out", str(out)], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    measured = {m["backend"]: m for m in json.loads((out / "bench.json").read_text())["measurements"]}
    assert set(measured) == {"pillow", "http", "lambda"} and not any(m["error"] for m in measured.values())
    assert measured["pillow"]["remote"] == ""
    assert measured["http"]["remote"] == env["HEICCONV_HTTP_URL"]
    assert measured["lambda"]["remote"] == "Lambda function heicconv"
    local = heicconv.convert(photo.read_bytes(), "jpeg", backend="pillow")
    for m in measured.values():  # the same job everywhere: the same JPEG, give or take the encoder's version
        assert abs(m["output_bytes"] - len(local)) <= len(local) // 20 and len(m["walls_s"]) == 2

    rows = {line.split()[3]: line.split() for line in done.stdout.splitlines() if line.startswith("photo.heic")}
    assert rows["pillow"][5] == "in" and rows["http"][5:7] == rows["lambda"][5:7] == ["round", "trip"]
    assert f"note: http ({env['HEICCONV_HTTP_URL']}): the time is the round trip as the application sees it" in (
        done.stdout
    )
    assert "note: lambda (Lambda function heicconv): the time is the round trip" in done.stdout
    assert "base64-encoded" in done.stdout and "No cost is projected from them" in done.stdout
    cost_header = done.stdout.split("Cost per 1,000,000 conversions (USD):\n", 1)[1].splitlines()[0]
    assert cost_header.split() == ["route", "pillow"]  # a round trip is not a workload to price
    report = (out / "report.md").read_text()
    assert "round trip" in report and "Lambda function heicconv" in report


# A backend that converts only once the test opens its gate, so that the test knows every request is
# waiting at the remote at once; installed through an entry point, as a third-party backend is, so that
# the service's workers and the Invoke endpoint find it. Left shut, it fails after a minute.
_GATED_BACKEND = """
import os
import time
import uuid
from pathlib import Path

from heicconv.backends.pillow import PillowBackend
from heicconv.errors import EncodeError


class GatedBackend(PillowBackend):
    name = "gated"

    def run(self, job):
        gate = Path(os.environ["HEICCONV_TEST_GATE"])
        (gate / f"started-{uuid.uuid4().hex}").touch()
        deadline = time.monotonic() + 60
        while not (gate / "open").exists():
            if time.monotonic() > deadline:
                raise EncodeError("the gate was never opened")
            time.sleep(0.01)
        return super().run(job)
"""


def _gated_env(directory: Path, gate: Path) -> dict[str, str]:
    return {**install_backend(directory, "gated", _GATED_BACKEND, "GatedBackend"), "HEICCONV_TEST_GATE": str(gate)}


@pytest.mark.parametrize("remote", ["http", "lambda"])
def test_waiting_for_the_remote_holds_neither_the_loop_nor_a_thread(
    remote: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three conversions wait at the remote together while the event loop goes on running this test's own
    coroutine, with one thread in the loop's executor and two in heicconv's: a wait that held a thread,
    or the loop, would let at most two requests reach the remote, and the gate would never open."""
    gate = tmp_path / "gate"
    gate.mkdir()
    env = _gated_env(tmp_path, gate)
    if remote == "http":
        srv = start_server(env, "--workers", "3", "--queue", "8")
        monkeypatch.setenv("HEICCONV_HTTP_URL", f"http://{srv.host}:{srv.port}")
        stop = lambda: stop_server(srv)  # noqa: E731
    else:
        require_module("boto3", "lambda")
        proc, url = lambda_endpoint.start(env)
        for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", url)
        monkeypatch.setenv("HEICCONV_LAMBDA_FUNCTION", "heicconv")
        stop = lambda: lambda_endpoint.stop(proc)  # noqa: E731
    photos = [fixtures.make_heic((64 + 8 * i, 48)) for i in range(3)]

    async def main() -> list[bytes]:
        import concurrent.futures

        asyncio.get_running_loop().set_default_executor(concurrent.futures.ThreadPoolExecutor(1))
        tasks = [asyncio.create_task(heicconv.convert_async(p, "png", backend=remote)) for p in photos]
        while len(list(gate.glob("started-*"))) < len(photos):
            for task in tasks:
                if task.done():
                    task.result()  # raises what went wrong
                    raise AssertionError("a conversion finished before the gate opened")
            await asyncio.sleep(0.01)
        (gate / "open").touch()
        return list(await asyncio.gather(*tasks))

    try:
        with monkeypatch.context() as m:
            m.setattr("heicconv.api.calls._pool", None)  # a pool of its own, of two threads, for this test
            m.setattr("os.cpu_count", lambda: 2)
            converted = asyncio.run(main())
    finally:
        stop()
    assert converted == [heicconv.convert(p, "png", backend="pillow") for p in photos]


@pytest.fixture
def tls_front(service: Server, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The real service behind a TLS relay with a self-signed certificate for 127.0.0.1: its URL and the CA file."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    request = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    made = subprocess.run(
        [*request, "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        capture_output=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"openssl cannot make a certificate: {made.stderr[-200:]!r}")
    import ssl

    handler = type("Relay", (_Busy,), {"upstream": f"{service.host}:{service.port}", "busy": 0, "seen": []})
    front = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    front.socket = context.wrap_socket(front.socket, server_side=True)
    thread = threading.Thread(target=front.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{front.server_address[1]}", cert
    front.shutdown()
    front.server_close()


def test_https_with_the_services_certificate(tls_front: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    url, cert = tls_front
    photo = fixtures.make_heic((64, 48))
    local = heicconv.convert(photo, "png", backend="pillow")
    monkeypatch.setenv("HEICCONV_HTTP_URL", url)
    with pytest.raises(heicconv.BackendUnavailableError, match=r"TLS with https://127\.0\.0\.1:\d+ failed"):
        heicconv.convert(photo, "png", backend="http")  # a self-signed certificate the system does not trust
    monkeypatch.setenv("HEICCONV_HTTP_CA_FILE", str(cert))
    assert heicconv.convert(photo, "png", backend="http") == local
    assert asyncio.run(heicconv.convert_async(photo, "png", backend="http")) == local
    monkeypatch.delenv("HEICCONV_HTTP_CA_FILE")
    monkeypatch.setenv("HEICCONV_HTTP_VERIFY", "false")
    assert asyncio.run(heicconv.convert_async(photo, "png", backend="http")) == local
