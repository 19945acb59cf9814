"""Tokens for ``heicconv serve``, checked against a real service and the ``http`` backend that calls it.

``[server] token`` (several during a rotation) and ``token_file`` (re-read when it changes) are
accepted as ``Authorization: Bearer`` or in ``auth_header``; without one, ``/convert`` and
``/backends`` answer 401 with ``WWW-Authenticate``; ``/health`` and ``/ready`` stay open, and
``/metrics`` too unless ``metrics = "token"``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_server import Server, start_server, stop_server

import heicconv
from heicconv.config.logs import LOGGERS
from heicconv.server.settings import ServerSettings, load
from heicconv.testing.fixtures import make_heic
from heicconv.testing.plugin import require_module

require_module("uvicorn", "server")
require_module("starlette", "server")

NEW = "new-token-5f0c2a9e1b7d4c3a"
OLD = "old-token-9a8b7c6d5e4f3a2b"
PHOTO = make_heic(size=(64, 48))


@pytest.fixture(scope="module")
def guarded() -> Iterator[Server]:
    """Two tokens (a rotation under way), and X-Api-Key as a second place for them."""
    env = {"HEICCONV_BACKEND": "pillow", "HEICCONV_SERVER_TOKEN": f"{NEW},{OLD}"}
    srv = start_server(env, "--workers", "1", "--pool", "thread", "--auth-header", "X-Api-Key")
    yield srv
    stop_server(srv)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_without_a_token_convert_and_backends_answer_401(guarded: Server) -> None:
    for method, path in (("POST", "/convert"), ("GET", "/backends")):
        status, headers, body = guarded.request(method, path, PHOTO if method == "POST" else None)
        payload = json.loads(body)
        assert status == 401 and payload["error"] == "unauthorized", body
        assert headers["www-authenticate"] == 'Bearer realm="heicconv"'
        assert "Authorization: Bearer <token> or X-Api-Key: <token>" in payload["message"]


def test_a_wrong_token_is_told_it_is_invalid(guarded: Server) -> None:
    for headers in (bearer("x" * 26), {"X-Api-Key": NEW[:-1]}, {"Authorization": NEW}):
        status, got, _ = guarded.post("/convert", PHOTO, headers)
        assert status == 401 and got["www-authenticate"] == 'Bearer realm="heicconv", error="invalid_token"', headers


def test_every_token_of_a_rotation_is_accepted_in_either_header(guarded: Server) -> None:
    for headers in (bearer(NEW), bearer(OLD), {"X-Api-Key": OLD}, {"authorization": f"bearer {NEW}"}):
        status, got, _ = guarded.post("/convert?format=png", PHOTO, headers)
        assert status == 200 and got["content-type"] == "image/png", headers
    assert guarded.request("GET", "/backends", None, {"X-Api-Key": NEW})[0] == 200


def test_probes_and_metrics_stay_open(guarded: Server) -> None:
    assert guarded.request("GET", "/health")[0] == 200
    assert guarded.request("GET", "/ready")[0] == 200
    assert guarded.request("GET", "/backends")[0] == 401  # so the refusal is counted whichever test ran first
    status, _, body = guarded.request("GET", "/metrics")
    assert status == 200 and b'heicconv_uploads_refused_total{reason="unauthorized"}' in body


def test_metrics_can_ask_for_the_token() -> None:
    env = {"HEICCONV_BACKEND": "pillow", "HEICCONV_SERVER_TOKEN": NEW, "HEICCONV_SERVER_METRICS": "token"}
    srv = start_server(env, "--workers", "1", "--pool", "thread")
    try:
        refused = srv.request("GET", "/metrics")[0]
        allowed = srv.request("GET", "/metrics", None, bearer(NEW))[0]
        ready = srv.request("GET", "/ready")[0]
    finally:
        stop_server(srv)
    assert (refused, allowed, ready) == (401, 200, 200)


@pytest.fixture
def http_to(guarded: Server, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("HEICCONV_HTTP_URL", f"http://{guarded.host}:{guarded.port}")
    return monkeypatch


def test_the_http_backend_sends_its_token(http_to: pytest.MonkeyPatch) -> None:
    http_to.setenv("HEICCONV_HTTP_TOKEN", OLD)
    assert heicconv.convert(PHOTO, "png", backend="http")[:4] == b"\x89PNG"
    http_to.setenv("HEICCONV_HTTP_TOKEN", NEW)
    http_to.setenv("HEICCONV_HTTP_AUTH_HEADER", "X-Api-Key")
    assert heicconv.convert(PHOTO, "png", backend="http")[:4] == b"\x89PNG"


@pytest.mark.parametrize("token", [None, "wrong-token-0000000000000"])
def test_the_http_backend_without_the_token_raises_a_config_error(
    http_to: pytest.MonkeyPatch, token: str | None
) -> None:
    if token:
        http_to.setenv("HEICCONV_HTTP_TOKEN", token)
    expected = "token is not valid" if token else "a token is required"
    with pytest.raises(heicconv.ConfigError, match=rf"{expected}.*answered 401 unauthorized"):
        heicconv.convert(PHOTO, "png", backend="http")


def test_the_http_backend_and_a_service_without_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    srv = start_server({"HEICCONV_BACKEND": "pillow"}, "--workers", "1", "--pool", "thread")
    try:
        monkeypatch.setenv("HEICCONV_HTTP_URL", f"http://{srv.host}:{srv.port}")
        plain = heicconv.convert(PHOTO, "png", backend="http")
        monkeypatch.setenv("HEICCONV_HTTP_TOKEN", NEW)  # a token the service does not ask for is ignored
        with_token = heicconv.convert(PHOTO, "png", backend="http")
    finally:
        stop_server(srv)
    assert plain[:4] == with_token[:4] == b"\x89PNG"


def test_a_token_file_is_reread_when_it_changes(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text(f"# mounted from the secret store\n{OLD}\n", encoding="utf-8")
    srv = start_server(
        {"HEICCONV_BACKEND": "pillow"}, "--workers", "1", "--pool", "thread", "--token-file", str(secret)
    )
    try:
        before = (srv.post("/convert", PHOTO, bearer(OLD))[0], srv.post("/convert", PHOTO, bearer(NEW))[0])
        replacement = tmp_path / "token.new"
        replacement.write_text(f"{NEW}\n", encoding="utf-8")
        os.replace(replacement, secret)  # as a secret store swaps the file, at once
        for _ in range(300):
            if srv.post("/convert", PHOTO, bearer(NEW))[0] == 200:
                break
            time.sleep(0.1)
        after = (srv.post("/convert", PHOTO, bearer(OLD))[0], srv.post("/convert", PHOTO, bearer(NEW))[0])
        secret.unlink()  # a secret missing for a moment keeps the tokens read last
        time.sleep(1.2)
        missing = srv.post("/convert", PHOTO, bearer(NEW))[0]
    finally:
        out = stop_server(srv)
    assert before == (200, 401) and after == (401, 200) and missing == 200
    assert OLD not in out and NEW not in out  # no token in the log


def _load(monkeypatch: pytest.MonkeyPatch, **env: str) -> ServerSettings:
    for name in [n for n in os.environ if n.startswith("HEICCONV_SERVER_")]:
        monkeypatch.delenv(name)
    for key, value in env.items():
        monkeypatch.setenv(f"HEICCONV_SERVER_{key.upper()}", value)
    return load()


def test_settings_refuse_a_guessable_token_without_showing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(heicconv.ConfigError, match=r"too easy to guess.*HEICCONV_SERVER_TOKEN") as caught:
        _load(monkeypatch, token=f"{NEW},hunter2")
    assert "hunter2" not in str(caught.value)
    with pytest.raises(heicconv.ConfigError, match="visible ASCII"):
        _load(monkeypatch, token="a token with spaces in it")
    assert NEW not in repr(_load(monkeypatch, token=NEW))  # settings may be logged


def test_settings_refuse_a_metrics_token_without_a_token_and_a_bad_header(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(heicconv.ConfigError, match=r"server\.metrics: 'token' needs server\.token"):
        _load(monkeypatch, metrics="token")
    with pytest.raises(heicconv.ConfigError, match=r"server\.auth_header: must be an HTTP header name"):
        _load(monkeypatch, auth_header="X Api Key")
    with pytest.raises(heicconv.ConfigError, match=r"server\.token_file: cannot read"):
        from heicconv.server.app import create_app

        create_app(_load(monkeypatch, token_file="/nonexistent/token", pool="thread"))


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """serve() routes the heicconv and uvicorn loggers to stderr; put them back for the other tests."""
    import logging

    saved = [(lg, lg.handlers[:], lg.level, lg.propagate) for lg in map(logging.getLogger, LOGGERS)]
    yield
    for lg, handlers, level, propagate in saved:
        lg.handlers[:], lg.level, lg.propagate = handlers, level, propagate


@pytest.mark.usefixtures("logging_restored")
def test_a_service_open_to_the_network_without_a_token_warns_on_every_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import uvicorn

    from heicconv.server import serve

    started: list[str] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.append(kw["host"]))
    monkeypatch.setenv("HEICCONV_BACKEND", "pillow")
    for host, token in (("0.0.0.0", ""), ("127.0.0.1", ""), ("0.0.0.0", NEW), ("::1", "")):
        monkeypatch.setenv("HEICCONV_SERVER_TOKEN", token)
        serve(host=host, pool="thread", workers=1, log_format="text")
    warned = [line for line in capsys.readouterr().err.splitlines() if "asks for no token" in line]
    assert started == ["0.0.0.0", "127.0.0.1", "0.0.0.0", "::1"]
    assert len(warned) == 1 and "WARNING" in warned[0] and "listens on 0.0.0.0" in warned[0]
