"""Defaults an endpoint open to the internet can keep, and one ``serve`` flag per ``[server]`` key.

Without any configuration the service (and the Lambda handler) strips the photo's location, refuses
pictures above 50 MP from their header, converts in worker processes with a memory cap, and caps
glibc's malloc arenas. Configuring a setting, or asking in the request, overrides each.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from test_server import Server, start_server, stop_server
from test_server_errors import big_png
from test_server_pool import worker_pids

import heicconv
from heicconv.server.settings import ServerSettings, load
from heicconv.testing.fixtures import exif_block, make_heic
from heicconv.testing.plugin import require_module

require_module("uvicorn", "server")

ROOT = Path(__file__).resolve().parent.parent
GPS_IFD = 0x8825


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    srv = start_server({"HEICCONV_BACKEND": "pillow"})
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module")
def photo_with_location() -> bytes:
    return make_heic(size=(64, 48), exif=exif_block(gps=True))


def exif_of(jpeg: bytes) -> Any:
    with Image.open(io.BytesIO(jpeg)) as img:
        assert img.format == "JPEG"
        return img.getexif()


def test_location_is_stripped_by_default_and_the_rest_of_exif_kept(server: Server, photo_with_location: bytes) -> None:
    assert exif_of(heicconv.convert(photo_with_location, "jpeg")).get_ifd(GPS_IFD)  # the library's default keeps it
    status, _, body = server.post("/convert?format=jpeg", photo_with_location)
    assert status == 200
    exif = exif_of(body)
    assert exif[0x010F] == "heicconv" and not exif.get_ifd(GPS_IFD)  # Make kept, GPS gone
    from heicconv.aws_lambda import handler

    event = {
        "version": "2.0",
        "rawPath": "/convert",
        "headers": {"content-type": "image/heic"},
        "requestContext": {"http": {"method": "POST"}},
        "body": base64.b64encode(photo_with_location).decode(),
        "isBase64Encoded": True,
    }
    assert not exif_of(base64.b64decode(handler(event)["body"])).get_ifd(GPS_IFD)


def test_location_is_kept_when_the_request_or_the_operator_asks(server: Server, photo_with_location: bytes) -> None:
    status, _, body = server.post("/convert?format=jpeg&metadata=keep", photo_with_location)
    assert status == 200 and exif_of(body).get_ifd(GPS_IFD)
    kept = start_server({"HEICCONV_BACKEND": "pillow", "HEICCONV_METADATA": "keep"})
    try:
        status, _, body = kept.post("/convert?format=jpeg", photo_with_location)
    finally:
        stop_server(kept)
    assert status == 200 and exif_of(body).get_ifd(GPS_IFD)


def test_a_picture_above_50_megapixels_is_refused(server: Server) -> None:
    bomb = big_png(16000, 16000)  # 256 MP in 31 KB
    status, _, body = server.post("/convert?format=jpeg", bomb)
    payload = json.loads(body)
    assert status == 413 and payload["error"] == "too_large" and "50000000" in payload["message"].replace(",", "")


def test_a_png_above_the_limit_is_refused_before_its_pixels_are_decoded() -> None:
    # 576 MP of 1-byte pixels once decoded: a worker capped at 300 MB is stopped if heicconv decodes it.
    srv = start_server({"HEICCONV_BACKEND": "pillow"}, "--workers", "1", "--memory-mb", "300")
    try:
        status, _, body = srv.post("/convert?format=jpeg", big_png(24000, 24000))
    finally:
        stop_server(srv)
    payload = json.loads(body)
    assert status == 413 and "max_pixels" in payload["message"], payload


def test_a_configured_limit_wins_over_the_endpoint_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from heicconv.api.web import endpoint_settings

    monkeypatch.setenv("HEICCONV_MAX_PIXELS", "300000000")
    monkeypatch.setenv("HEICCONV_METADATA", "strip")
    options, limits = endpoint_settings()
    assert (options.metadata, limits.max_pixels) == ("strip", 300_000_000)
    monkeypatch.delenv("HEICCONV_MAX_PIXELS")
    monkeypatch.delenv("HEICCONV_METADATA")
    heicconv.configure(options=heicconv.Options(metadata="keep"))
    options, limits = endpoint_settings()
    assert (options.metadata, limits.max_pixels) == ("keep", 50_000_000)


def test_process_workers_with_a_memory_cap_are_the_default() -> None:
    defaults = load()
    assert (defaults.pool, defaults.memory_mb) == ("process", 1536)
    srv = start_server({"HEICCONV_BACKEND": "pillow"}, "--workers", "1", "--memory-mb", "150")
    try:
        # 27 MP: well under 50 MP, but its pixels alone pass 150 MB; the worker is stopped, the service lives on.
        status, _, body = srv.post("/convert?format=png", make_heic(size=(6000, 4500), quality=10))
        after = srv.post("/convert?format=png", make_heic(size=(64, 48)))[0]
    finally:
        stop_server(srv)
    payload = json.loads(body)
    assert status == 413 and payload["error"] == "too_large" and "150 MB" in payload["message"]
    assert after == 200


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and /proc")
def test_malloc_arenas_are_capped_in_the_service_and_its_workers(server: Server) -> None:
    from heicconv.api.workers import cap_malloc_arenas

    for pid in worker_pids(server):
        with open(f"/proc/{pid}/environ", "rb") as fh:
            assert b"MALLOC_ARENA_MAX=2" in fh.read().split(b"\0")
    saved = os.environ.get("MALLOC_ARENA_MAX")
    try:
        assert cap_malloc_arenas() == 2
    finally:
        if saved is None:
            os.environ.pop("MALLOC_ARENA_MAX", None)


def test_every_server_key_has_a_serve_flag_and_a_docs_row() -> None:
    keys = {f.name for f in dataclasses.fields(ServerSettings)}
    out = subprocess.run(
        [sys.executable, "-m", "heicconv", "serve", "--help"], capture_output=True, text=True, check=True
    ).stdout
    flags = {flag[2:].replace("-", "_") for flag in re.findall(r"--[a-z][a-z-]+", out)} - {"help"}
    assert flags == keys
    deployment = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    table = deployment.split("### `[server]`", 1)[1].split("\n\n", 2)[1]
    rows = re.findall(r"^\| `(\w+)` \| `HEICCONV_SERVER_(\w+)` \| .* \| `--([a-z-]+)` \|", table, re.M)
    assert {r[0] for r in rows} == keys
    assert all(env.lower() == key == flag.replace("-", "_") for key, env, flag in rows)
