"""Hostile uploads: anything that is not an image heicconv reads is refused before a backend sees it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import heicconv
from heicconv.backends.base import PipelineBackend
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


BACKENDS = ["pillow", "vips", "wand"]


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


def test_imagemagick_policy_refuses_script_coders_even_if_reached(tmp_path: Path) -> None:
    """Belt and braces: were a payload to reach ImageMagick, heicconv's policy refuses the coder."""
    require_backend("wand")
    heicconv.select("wand")  # loads MagickWand under heicconv's policy
    from wand.image import Image

    target = tmp_path / "pwned.png"
    for coder, name in (("msl", "msl"), ("mvg", "mvg"), ("svg", "svg"), ("ps", "postscript"), ("txt", "text")):
        data = payloads(target)[name]
        with pytest.raises(Exception, match=r"(?i)policy|not authorized|no decode delegate"):
            Image(blob=data, format=coder)
        assert not target.exists(), coder
