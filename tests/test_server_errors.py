"""One table maps each heicconv error class to an HTTP status, on the service and on the Lambda handler.

Every case is an input that really raises the class (checked by converting it here), sent to a real
``heicconv serve`` and to the Lambda handler as a Function URL request; both must answer the status
and error code of ``heicconv.api.web.ERRORS``. docs/errors.md must show the same table.
"""

from __future__ import annotations

import base64
import json
import re
import struct
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from test_server import Server, slow_backend_env, start_server, stop_server

import heicconv
from heicconv import errors
from heicconv.api.web import ERRORS
from heicconv.testing.fixtures import make_heic, make_image, set_ispe
from heicconv.testing.plugin import require_module

require_module("uvicorn", "server")

DOCS = Path(__file__).resolve().parent.parent / "docs"


def big_png(width: int, height: int, rgb: bool = False) -> bytes:
    """A valid black PNG of ``width`` x ``height`` (1-bit grey, or 8-bit RGB) of a few hundred KB at most: a bomb."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    packer = zlib.compressobj(9)
    row = bytes(1 + (width * 3 if rgb else (width + 7) // 8))
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8 if rgb else 1, 2 if rgb else 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@dataclass
class Case:
    kind: type[errors.HeicconvError]
    body: Callable[[], bytes]
    query: dict[str, str] = field(default_factory=dict)
    message: str = ""  # a word the message must contain

    def convert_here(self) -> None:
        """Convert as the endpoints do (their defaults: 50 MP), in this process."""
        from heicconv.api.web import endpoint_settings

        options, limits = endpoint_settings()
        fields = {k: heicconv.options.field_from_text(k, v) for k, v in self.query.items() if k != "format"}
        heicconv.convert(self.body(), self.query.get("format", "jpeg"), options.replace(**fields), limits=limits)


def _cut(data: bytes) -> bytes:
    return data[: len(data) // 2]


CASES = {
    "bad option": Case(errors.ConfigError, make_heic, {"quality": "101"}, "quality"),
    "image_index out of range": Case(errors.ConfigError, make_heic, {"image_index": "3"}, "image_index"),
    "16000x16000 PNG": Case(errors.LimitExceededError, lambda: big_png(16000, 16000), {}, "pixels"),
    "GIF": Case(errors.UnsupportedFormatError, lambda: b"GIF89a" + bytes(100)),
    "truncated HEIC": Case(errors.DecodeError, lambda: _cut(make_heic(size=(640, 480))), {}, "truncated"),
    "header understates the size": Case(errors.DecodeError, lambda: set_ispe(make_heic(size=(640, 480)), 64, 48)),
    "20000 px wide to WebP": Case(
        errors.EncodeError, lambda: make_image("png", size=(20000, 1)), {"format": "webp"}, "webp"
    ),
}


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    srv = start_server({"HEICCONV_BACKEND": "pillow"})
    yield srv
    stop_server(srv)


def function_url(body: bytes, query: dict[str, str]) -> dict[str, Any]:
    from heicconv.aws_lambda import handler

    event = {
        "version": "2.0",
        "rawPath": "/convert",
        "rawQueryString": "&".join(f"{k}={v}" for k, v in query.items()),
        "queryStringParameters": query or None,
        "headers": {"content-type": "application/octet-stream"},
        "requestContext": {"http": {"method": "POST", "path": "/convert"}},
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }
    answer: dict[str, Any] = handler(event, None)
    return answer


def expect(kind: type[errors.HeicconvError], status: int, payload: dict[str, Any], message: str = "") -> None:
    assert (status, payload["error"]) == ERRORS[kind], payload
    assert payload["status"] == status and message in payload["message"]


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_each_error_class_gets_its_status_on_both_routes(
    case: Case, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(case.kind):
        case.convert_here()
    query = "&".join(f"{k}={v}" for k, v in case.query.items())
    status, _, body = server.post(f"/convert?{query}", case.body())
    expect(case.kind, status, json.loads(body), case.message)
    monkeypatch.setenv("HEICCONV_BACKEND", "pillow")
    answer = function_url(case.body(), case.query)
    expect(case.kind, answer["statusCode"], json.loads(answer["body"]), case.message)


BLOCK_PYVIPS = "import sys; sys.modules['pyvips'] = None; from heicconv.server.__main__ import main; sys.exit(main())"


def test_a_backend_that_cannot_load_is_503_on_both_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    from heicconv.backends import registry

    # As if pyvips were not installed, in this process and in a service started the same way.
    monkeypatch.setitem(sys.modules, "pyvips", None)
    monkeypatch.setattr(registry, "_instances", {})
    monkeypatch.setenv("HEICCONV_BACKEND", "vips")
    with pytest.raises(errors.BackendUnavailableError):
        heicconv.convert(make_heic(), "jpeg")
    answer = function_url(make_heic(), {})
    expect(errors.BackendUnavailableError, answer["statusCode"], json.loads(answer["body"]), "pip install")
    srv = start_server({"HEICCONV_BACKEND": "vips"}, "--pool", "thread", launcher=("-c", BLOCK_PYVIPS))
    try:
        status, _, body = srv.post("/convert", make_heic())
        health_status, _, health = srv.request("GET", "/health")
    finally:
        stop_server(srv)
    expect(errors.BackendUnavailableError, status, json.loads(body), "pip install")
    assert health_status == 503 and json.loads(health)["error"] == "backend_unavailable"


def test_a_conversion_past_the_timeout_is_504(tmp_path: Path) -> None:
    srv = start_server(slow_backend_env(tmp_path, 120), "--timeout", "0.5")
    try:
        status, _, body = srv.post("/convert?format=png", make_heic(size=(1200, 900)))
    finally:
        stop_server(srv)
    expect(errors.TimeoutError, status, json.loads(body), "longer than 0.5 s")


def test_a_bad_configuration_is_500_not_the_callers_400(monkeypatch: pytest.MonkeyPatch) -> None:
    # The same class as a bad ?quality=, but the operator's mistake: it says so, with the key.
    monkeypatch.setenv("HEICCONV_QUALITY", "best")
    answer = function_url(make_heic(), {})
    payload = json.loads(answer["body"])
    assert (
        answer["statusCode"] == 500 and payload["error"] == "misconfigured" and "HEICCONV_QUALITY" in payload["message"]
    )


def test_every_error_class_has_a_status() -> None:
    named = [getattr(errors, name) for name in errors.__all__]
    classes = {kind for kind in named if isinstance(kind, type)} - {errors.BackendConflictWarning}
    assert classes == set(ERRORS)


def test_the_docs_table_is_the_code_table() -> None:
    text = (DOCS / "errors.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)` \|.*\| (\d{3}) `(\w+)` \|", text, re.M)
    documented = {name: (int(status), code) for name, status, code in rows}
    assert documented == {kind.__name__: status for kind, status in ERRORS.items()}
    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    assert "docs/errors.md" in readme
