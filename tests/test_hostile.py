"""Hostile uploads: anything that is not an image heicconv reads is refused before a backend sees it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import heicconv
from heicconv.backends.contract import PipelineBackend
from heicconv.testing.plugin import require_backend


def payloads(target: Path) -> dict[str, bytes]:
    """Files that make a careless ImageMagick run a delegate or write ``target`` (ImageTragick and friends)."""
    t = str(target)
    return {
        "svg": f'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="8" height="8">'
        f'<image href="msl:{t}" width="8" height="8"/></svg>'.encode(),
        "mvg": f"push graphic-context\nviewbox 0 0 8 8\nimage over 0,0 0,0 'ephemeral:{t}'\n"
        f"image over 0,0 0,0 'url:https://example.invalid/x.jpg\"|touch \"{t}'\npop graphic-context\n".encode(),
        "postscript": f"%!PS-Adobe-3.0\n({t}) (w) file closefile\nshowpage\n".encode(),
        "msl": f'<?xml version="1.0" encoding="UTF-8"?><image><read filename="xc:red" />'
        f'<write filename="{t}" /></image>'.encode(),
        "ephemeral": f"ephemeral:{t}".encode(),
        "text": b"just some text, not an image\n" * 4,
    }


BACKENDS = ["ffmpeg", "pillow", "vips", "wand"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_rejected_before_any_backend_runs(backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_backend(backend)
    target = tmp_path / "pwned.png"

    def must_not_run(self: object, job: object) -> None:
        raise AssertionError("a hostile input reached the backend")

    monkeypatch.setattr(PipelineBackend, "load", must_not_run)
    for name, data in payloads(target).items():
        with pytest.raises(heicconv.UnsupportedFormatError, match="not an image heicconv reads"):
            heicconv.convert(data, "jpeg", backend=backend)
        with pytest.raises(heicconv.UnsupportedFormatError):
            heicconv.probe(data)
        assert not target.exists(), name


def test_renamed_heic_files_are_refused_by_the_command_line(tmp_path: Path) -> None:
    target = tmp_path / "pwned.png"
    for name, data in payloads(target).items():
        (tmp_path / f"{name}.heic").write_bytes(data)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "heicconv", "convert", str(tmp_path), "-o", str(out), "--backend", "pillow", "-j", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert not target.exists()
    assert not any(out.rglob("*.jpg")) if out.exists() else True


def test_imagemagick_script_coders_are_never_reached_through_heicconvs_reads(tmp_path: Path) -> None:
    """Belt and braces: were a payload to reach heicconv's ImageMagick reads, the explicit coder would refuse it.

    (ImageMagick's own policy is the application's: heicconv leaves it alone, see tests/test_coexistence.py.)
    """
    require_backend("wand")
    backend: Any = heicconv.select("wand")
    target = tmp_path / "pwned.png"
    for name, data in payloads(target).items():
        for coder in ("heic", "jpeg", "png", "webp", "tiff"):
            try:
                with backend._read(data, coder) as img:
                    assert (img.format, img.width, img.height) == (coder.upper(), 0, 0), (name, coder)
            except Exception as exc:
                assert "policy" not in str(exc).lower(), (name, coder, exc)
        assert not target.exists(), name
