"""Every way a remote can fail reaches the caller as heicconv's documented error, within the backend's timeout.

Each test points the ``http`` or the ``lambda`` backend at a loopback server that answers ``/health``
as heicconv does and then fails the conversion in one way (tests/faulty_remote.py), and converts
blocking and under asyncio. Time is ``TimeoutError``; everything else the transport can do (refuse,
reset, break off, bad TLS, an image cut short) is ``BackendUnavailableError``; each with its cause
chained, and each within the timeout, with a margin no loaded machine needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from faulty_remote import FaultyRemote, self_signed

import heicconv
from heicconv.backends.wire import Answer, BrokenAnswer, Endpoint, _Reading, _request_bytes
from heicconv.testing import fixtures
from heicconv.testing.plugin import require_module

TIMEOUT = 0.5  # the backends' timeout here, seconds
MARGIN = 5.0  # what a test allows past it: generous, so that a busy machine cannot fail it

KINDS = ["http", "lambda"]
MODES = ["sync", "async"]


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    if request.param == "lambda":
        require_module("boto3", "lambda")
    return str(request.param)


def _use(kind: str, url: str, monkeypatch: pytest.MonkeyPatch, **more: str) -> None:
    """Point the ``kind`` backend at ``url``, with ``TIMEOUT`` and the ``more`` settings of its table."""
    if kind == "lambda":
        monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("HEICCONV_LAMBDA_FUNCTION", "heicconv")
    else:
        monkeypatch.setenv("HEICCONV_HTTP_URL", url)
    for key, value in {"timeout": str(TIMEOUT), **more}.items():
        monkeypatch.setenv(f"HEICCONV_{kind.upper()}_{key.upper()}", value)


def _convert(kind: str, mode: str) -> tuple[BaseException | None, float]:
    """What one conversion raised (``None`` if it returned an image), and the seconds it took."""
    photo = fixtures.make_heic((64, 48))
    start = time.monotonic()
    try:
        if mode == "sync":
            heicconv.convert(photo, "jpeg", backend=kind)
        else:
            asyncio.run(heicconv.convert_async(photo, "jpeg", backend=kind))
    except BaseException as exc:  # whatever escapes, a test says what it should have been
        return exc, time.monotonic() - start
    return None, time.monotonic() - start


@contextlib.contextmanager
def _failing(kind: str, fault: str, monkeypatch: pytest.MonkeyPatch, **more: str) -> Iterator[FaultyRemote]:
    """A server failing the conversion with ``fault``, the ``kind`` backend pointed at it and its /health known."""
    server = FaultyRemote(kind, fault)
    try:
        _pointed_at(kind, server, monkeypatch, **more)
        yield server
    finally:
        server.close()


def _pointed_at(kind: str, server: FaultyRemote, monkeypatch: pytest.MonkeyPatch, **more: str) -> None:
    _use(kind, server.url, monkeypatch, **more)
    assert heicconv.backends.registry.get(
        kind
    ).capabilities  # /health answered: from here on, only the conversion is timed


def _assert_raised(
    raised: BaseException | None, seconds: float, error: type[Exception], said: str, *, cause: bool = True
) -> None:
    assert type(raised) is error, f"{type(raised).__name__}: {raised}"
    assert raised.__cause__ is not None or not cause  # what the transport said, for the log
    assert said in str(raised), str(raised)
    assert seconds < TIMEOUT + MARGIN


# --- the conversion fails ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("fault", "error", "said"),
    [
        pytest.param("silent", heicconv.TimeoutError, f"did not answer within {TIMEOUT:g} s", id="never-answers"),
        pytest.param("slow_head", heicconv.TimeoutError, f"did not answer within {TIMEOUT:g} s", id="slow-head"),
        pytest.param("slow_body", heicconv.TimeoutError, f"did not answer within {TIMEOUT:g} s", id="slow-body"),
        pytest.param("reset", heicconv.BackendUnavailableError, "ConnectionResetError", id="reset"),
        pytest.param(
            "short_body", heicconv.BackendUnavailableError, "sent an incomplete or malformed answer", id="short-body"
        ),
    ],
)
def test_a_failing_exchange_raises_the_documented_error_in_time(
    kind: str, mode: str, fault: str, error: type[Exception], said: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _failing(kind, fault, monkeypatch):
        raised, seconds = _convert(kind, mode)
        _assert_raised(raised, seconds, error, said)


@pytest.mark.parametrize("mode", MODES)
def test_a_remote_that_went_away_cannot_be_reached(kind: str, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with _failing(kind, "silent", monkeypatch) as server:
        server.close()  # it answered /health, and listens no more: the conversion's connection is refused
        raised, seconds = _convert(kind, mode)
        _assert_raised(raised, seconds, heicconv.BackendUnavailableError, "cannot reach")
        assert isinstance(raised.__cause__, ConnectionRefusedError)


@pytest.mark.parametrize("mode", MODES)
def test_an_image_cut_short_is_not_a_result(kind: str, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The answer is whole (its Content-Length matches it); the JPEG inside it is not."""
    with _failing(kind, "cut_image", monkeypatch):
        raised, seconds = _convert(kind, mode)
        _assert_raised(raised, seconds, heicconv.BackendUnavailableError, "the image it answered is damaged")
        assert "JPEG file is truncated" in str(raised) and isinstance(raised.__cause__, heicconv.DecodeError)


@pytest.mark.parametrize("mode", MODES)
def test_retries_end_with_the_timeout(kind: str, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A remote that is busy and asks for a second before each retry: ten retries would take ten seconds, and
    the timeout has room for none."""
    with _failing(kind, "busy", monkeypatch, retries="10") as server:
        raised, seconds = _convert(kind, mode)
        _assert_raised(raised, seconds, heicconv.BackendUnavailableError, "answered 503 busy after 1 try", cause=False)
        assert server.conversions == 1


# --- TLS ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_plain_http_behind_an_https_url(kind: str, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    server = FaultyRemote(kind, "silent")
    try:
        _use(kind, server.url.replace("http://", "https://"), monkeypatch)
        raised, seconds = _convert(kind, mode)
    finally:
        server.close()
    _assert_raised(raised, seconds, heicconv.BackendUnavailableError, "TLS with")
    assert isinstance(raised.__cause__, ssl.SSLError)


@pytest.mark.parametrize("mode", MODES)
def test_a_certificate_nobody_trusts(kind: str, mode: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = FaultyRemote(kind, "silent", tls=context)
    try:
        _use(kind, server.url, monkeypatch)
        raised, seconds = _convert(kind, mode)
    finally:
        server.close()
    _assert_raised(raised, seconds, heicconv.BackendUnavailableError, "certificate verify failed")
    assert isinstance(raised.__cause__, ssl.SSLCertVerificationError)


@pytest.mark.parametrize("mode", MODES)
def test_a_tls_handshake_that_never_ends(kind: str, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    server = FaultyRemote(kind, "silent", tls_stall=True)
    try:
        _use(kind, server.url, monkeypatch)
        raised, seconds = _convert(kind, mode)
    finally:
        server.close()
    _assert_raised(raised, seconds, heicconv.TimeoutError, f"did not answer within {TIMEOUT:g} s")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fault", ["silent", "slow_body"])
def test_an_https_remote_that_does_not_answer_in_time(
    kind: str, mode: str, fault: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Trusted through the backend's CA setting, then silent or slow: giving up must not wait for TLS's goodbye."""
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = FaultyRemote(kind, fault, tls=context)
    try:
        monkeypatch.setenv("AWS_CA_BUNDLE" if kind == "lambda" else "HEICCONV_HTTP_CA_FILE", str(cert))
        _pointed_at(kind, server, monkeypatch)
        raised, seconds = _convert(kind, mode)
    finally:
        server.close()
    _assert_raised(raised, seconds, heicconv.TimeoutError, f"did not answer within {TIMEOUT:g} s")


# --- the answer reader, fed as a slow network would feed it ---------------------------------------------------------


def _read(method: str, raw: bytes, piece: int) -> Answer:
    reading = _Reading(method)
    for start in range(0, len(raw), piece):
        answer = reading.feed(raw[start : start + piece])
        if answer is not None:
            return answer
    answer = reading.feed(b"")  # the connection closes
    assert answer is not None
    return answer


@pytest.mark.parametrize("piece", [1, 7, 4096])
@pytest.mark.parametrize(
    ("raw", "body"),
    [
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", b"hello", id="length"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA", b"hello", id="length-then-more"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nhel\r\n2\r\nlo\r\n0\r\nT: 1\r\n\r\n",
            b"hello",
            id="chunked",
        ),
        pytest.param(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nhello", b"hello", id="interim-then-close"),
        pytest.param(b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n", b"", id="no-content"),
    ],
)
def test_the_answer_reader_reads_each_framing(raw: bytes, body: bytes, piece: int) -> None:
    answer = _read("GET", raw, piece)
    assert answer.status in (200, 204) and answer.body == body


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        pytest.param(b"", "closed the connection without answering", id="nothing"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Le", "before its answer's head ended", id="head-cut"),
        pytest.param(b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "not HTTP/1.1", id="not-http"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nhello", "after 5 of the 9 bytes", id="body-cut"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length is '-1'", id="bad-length"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
            "before its last chunk",
            id="chunk-cut",
        ),
    ],
)
def test_the_answer_reader_refuses_a_broken_answer(raw: bytes, said: str) -> None:
    with pytest.raises(BrokenAnswer, match=re.escape(said)):
        _read("GET", raw, 3)


def test_an_ipv6_host_is_bracketed() -> None:
    request = _request_bytes(Endpoint("::1", 8000), "GET", "/health", None, {})
    assert b"\r\nHost: [::1]:8000\r\n" in request
