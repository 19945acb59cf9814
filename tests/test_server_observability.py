"""What an operator sees of a real ``heicconv serve``: ``GET /metrics``, the request id, one JSON log line per request.

The conversions run in the default process pool: the figures are counted by the service process,
which sends each conversion to a worker and sees its answer (or its worker stopped).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_server import Server, _json, slow_backend_env, start_server, stop_server
from test_server_pool import wait_for

import heicconv
from heicconv.config.logs import REQUEST_ID, JsonFormatter, TextFormatter
from heicconv.testing.fixtures import make_heic
from heicconv.testing.plugin import require_module

require_module("uvicorn", "server")
require_module("prometheus_client", "server")

PHOTO = make_heic(size=(64, 48))


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text ``text``; 0 if there is none."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


@pytest.fixture(scope="module")
def srv() -> Iterator[Server]:
    srv = start_server({"HEICCONV_BACKEND": "pillow"}, "--workers", "1")
    yield srv
    stop_server(srv)


def scrape(server: Server) -> str:
    status, headers, body = server.request("GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=")
    return body.decode()


def test_conversions_are_counted_by_formats_and_outcome(srv: Server) -> None:
    before = scrape(srv)
    ok = srv.post("/convert?format=png", PHOTO)
    bad = srv.post("/convert?format=png", PHOTO[:250])
    after = scrape(srv)
    assert ok[0] == 200 and bad[0] == 422
    ok_labels = {"backend": "pillow", "input_format": "heic", "output_format": "png"}
    for outcome in ("ok", "DecodeError"):
        sample = metric(after, "heicconv_conversions_total", outcome=outcome, **ok_labels)
        assert sample - metric(before, "heicconv_conversions_total", outcome=outcome, **ok_labels) == 1, outcome
    assert (
        metric(after, "heicconv_input_bytes_total") - metric(before, "heicconv_input_bytes_total") == len(PHOTO) + 250
    )
    assert metric(after, "heicconv_output_bytes_total") - metric(before, "heicconv_output_bytes_total") == len(ok[2])
    count = metric(after, "heicconv_conversion_seconds_count", backend="pillow", output_format="png")
    assert count - metric(before, "heicconv_conversion_seconds_count", backend="pillow", output_format="png") == 2
    assert metric(after, "heicconv_http_requests_total", route="/convert", status="422") >= 1
    assert metric(after, "heicconv_build_info", version=heicconv.__version__, backend="pillow") == 1
    assert "pillow-heif" in after.split("heicconv_build_info{", 1)[1].split("}", 1)[0]
    for gauge, value in (("heicconv_conversion_slots", 9), ("heicconv_upload_slots", 16)):
        assert metric(after, gauge) == value
    assert metric(after, "heicconv_conversions_running") == metric(after, "heicconv_uploads_in_use") == 0


def test_every_answer_carries_a_request_id(srv: Server) -> None:
    given = srv.post("/convert?format=png", PHOTO, {"X-Request-Id": "checkout-7f3a"})[1]["x-request-id"]
    made = srv.request("GET", "/nowhere")[1]["x-request-id"]
    replaced = srv.request("GET", "/ready", None, {"X-Request-Id": "two words"})[1]["x-request-id"]
    assert given == "checkout-7f3a"
    assert re.fullmatch("[0-9a-f]{32}", made) and re.fullmatch("[0-9a-f]{32}", replaced)


def test_one_json_line_per_request_and_the_http_backend_names_its_id(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"HEICCONV_BACKEND": "pillow", "HEICCONV_MAX_PIXELS": "1000"}
    logged = start_server(env, "--workers", "1", "--log-level", "info", "--log-format", "json")
    try:
        logged.post("/convert?format=png", make_heic(size=(30, 30)), {"X-Request-Id": "log-line-1"})
        logged.request("GET", "/health", None, {"X-Request-Id": "probe-1"})
        monkeypatch.setenv("HEICCONV_HTTP_URL", f"http://{logged.host}:{logged.port}")
        with pytest.raises(heicconv.LimitExceededError, match=r"413 too_large, request id [0-9a-f]{32}") as caught:
            heicconv.convert(make_heic(size=(40, 30)), "png", backend="http")  # over the service's own limit
        application_id = REQUEST_ID.set("caller-42")  # an application's own request id travels with the call
        try:
            with pytest.raises(heicconv.LimitExceededError, match="request id caller-42"):
                heicconv.convert(make_heic(size=(40, 30)), "png", backend="http")
        finally:
            REQUEST_ID.reset(application_id)
    finally:
        output = stop_server(logged).splitlines()
    lines = [json.loads(line) for line in output if line.startswith("{")]
    assert lines and len(lines) == len([line for line in output if line.strip()]), output[:5]  # nothing but JSON
    by_id = {line.get("request_id"): line for line in lines}
    converted = by_id["log-line-1"]
    assert converted["level"] == "info" and converted["logger"] == "heicconv.server"
    assert converted["message"] == "POST /convert 200" and converted["status"] == 200
    expected = {"backend": "pillow", "input_format": "heic", "output_format": "png", "outcome": "ok"}
    assert {k: converted[k] for k in expected} == expected
    assert converted["bytes_out"] > 0 and converted["duration_ms"] > 0 and converted["client"] == "127.0.0.1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", converted["time"])
    assert "probe-1" not in by_id  # probes are logged at debug
    (rid,) = re.findall(r"request id ([0-9a-f]{32})", str(caught.value))
    refused = by_id[rid]  # the id the caller's error names is the service's log line
    assert (refused["status"], refused["error"], refused["outcome"]) == (
        413,
        "LimitExceededError",
        "LimitExceededError",
    )
    assert by_id["caller-42"]["status"] == 413


def test_a_stopped_worker_is_counted_by_cause(tmp_path: Path) -> None:
    flags = ("--workers", "1", "--queue", "0", "--timeout", "1", "--log-level", "info", "--log-format", "json")
    srv = start_server(slow_backend_env(tmp_path, 120), *flags)
    try:
        payload = _json(*srv.post("/convert?format=png", make_heic(size=(1200, 900)), {"X-Request-Id": "slow-1"}), 504)
        # The answer goes at the deadline; the thread that watches the worker stops it at the same moment.
        wait_for(lambda: metric(scrape(srv), "heicconv_worker_restarts_total", cause="timeout") > 0, "the count")
        text = scrape(srv)
    finally:
        output = stop_server(srv).splitlines()
    assert payload["error"] == "timeout"
    # Lines logged while the request is handled carry its id, those of the thread that watched the worker too.
    failed = [json.loads(line) for line in output if '"conversion failed' in line]
    assert len(failed) == 2 and all(line["request_id"] == "slow-1" for line in failed), failed
    assert metric(text, "heicconv_worker_restarts_total", cause="timeout") == 1
    assert metric(text, "heicconv_conversions_total", outcome="TimeoutError") == 1


def test_metrics_can_be_switched_off() -> None:
    srv = start_server({"HEICCONV_BACKEND": "pillow"}, "--pool", "thread", "--metrics", "off")
    try:
        status = srv.request("GET", "/metrics")[0]
    finally:
        stop_server(srv)
    assert status == 404


def _record(**fields: Any) -> logging.LogRecord:
    record = logging.LogRecord("heicconv.server", logging.INFO, __file__, 1, "POST /convert %d", (200,), None)
    record.fields = fields
    return record


def test_text_lines_for_a_terminal_and_json_lines_otherwise() -> None:
    fields = {"request_id": "r1", "status": 200, "error": None}
    text = TextFormatter().format(_record(**fields))
    assert text.endswith("INFO heicconv.server: POST /convert 200 request_id=r1 status=200")
    line = json.loads(JsonFormatter().format(_record(**fields)))
    assert (line["message"], line["request_id"], line["error"]) == ("POST /convert 200", "r1", None)
