"""heicconv next to an application's own pyvips, pillow-heif and Wand, each scenario in a fresh process.

Import order and ImageMagick's policy are process-wide state, so every scenario runs in a
subprocess of its own: the application's imports first (or heicconv's), then heicconv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from heicconv.testing import fixtures
from heicconv.testing.plugin import require_backend

BACKENDS = ["pillow", "vips", "wand"]


def run(script: str, *args: object, env: dict[str, str] | None = None) -> tuple[Any, str]:
    """Run ``script`` in a fresh Python; return what it printed last (JSON) and its stderr."""
    environment = {k: v for k, v in os.environ.items() if k != "MAGICK_CONFIGURE_PATH"}
    environment.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=900,
        env=environment,
    )
    # A native crash (two libheif builds mixed up) shows here as a negative exit status.
    assert proc.returncode == 0, f"exit status {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


# -- 4. pyvips, pillow-heif and heicconv, whatever the import order ---------------------------------------

ORDERS = {
    "heicconv first": "import heicconv; heicconv.select('pillow'); import pyvips",
    "pyvips first": "import pyvips",
    "pyvips used first": "import pyvips; pyvips.Image.heifload(sys.argv[1]).avg()",
    "wand used first": "from wand.image import Image\nwith Image(filename=sys.argv[1]) as i: i.size",
}

CONVERT_ALL = """
    import hashlib, json, sys, warnings
    warnings.simplefilter("always")
    {prelude}
    import heicconv
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = {{"selected": list(heicconv.selected_backend())}}
        for backend in ("pillow", "vips", "wand"):
            for path in sys.argv[1:]:
                data = open(path, "rb").read()
                for fmt, opts in (("png", {{}}), ("webp", {{"lossless": True}}), ("jpeg", {{"quality": 80}})):
                    key = f"{{backend}} {{path.rsplit('/', 1)[-1]}} {{fmt}}"
                    try:
                        res = heicconv.convert(data, fmt, heicconv.Options(**opts), backend=backend)
                        out[key] = hashlib.sha256(res).hexdigest()
                    except heicconv.HeicconvError as exc:
                        out[key] = f"{{type(exc).__name__}}: {{exc}}"
    out["warnings"] = [str(w.message) for w in caught if w.category.__name__ == "BackendConflictWarning"]
    print(json.dumps(out))
"""


def _inputs(tmp_path: Path) -> list[Path]:
    """HEIC at 8 and 10 bits, with alpha, grayscale; JPEG, PNG, WebP, TIFF; and corpus files when there."""
    made = {
        "rgb8.heic": fixtures.make_heic((64, 48)),
        "rgb10.heic": fixtures.make_heic((64, 48), bit_depth=10),
        "rgba8.heic": fixtures.make_heic((64, 48), "RGBA"),
        "rgba10.heic": fixtures.make_heic((64, 48), "RGBA", bit_depth=10),
        "gray.heic": fixtures.make_heic((64, 48), "L"),
        "in.jpeg": fixtures.make_image("jpeg"),
        "in.png": fixtures.make_image("png", mode="RGBA"),
        "in.webp": fixtures.make_image("webp", lossless=True),
        "in.tiff": fixtures.make_image("tiff", compression="tiff_lzw"),
    }
    paths = []
    for name, data in made.items():
        (tmp_path / name).write_bytes(data)
        paths.append(tmp_path / name)
    corpus = os.environ.get("HEICCONV_CORPUS")
    if corpus:
        for name in (
            "real/pug.heic",
            "real/cat.hif",
            "real/nokia_alpha.heic",
            "synthetic/RGBA_10__29x100.heif",
            "synthetic/RGB_12__29x100.heif",
            "synthetic/LA_8__29x100.heif",
        ):
            paths.append(Path(corpus) / name)
    return paths


def test_every_backend_gives_the_same_bytes_whatever_was_imported_first(tmp_path: Path) -> None:
    """pyvips loads the system libheif (and libwebp, libtiff ...) globally; heicconv's backends still use their own."""
    for backend in BACKENDS:
        require_backend(backend)
    inputs = _inputs(tmp_path)
    results = {}
    for order, prelude in ORDERS.items():
        results[order], _ = run(CONVERT_ALL.format(prelude=prelude.replace("\n", "\n    ")), *inputs)
    reference = results["heicconv first"]
    failures = {k: v for k, v in reference.items() if k not in ("selected", "warnings") and len(v) != 64}
    assert not failures, failures
    for order, got in results.items():
        assert got["selected"] == ["pillow", "default (auto)"], order
        assert got["warnings"] == [], order
        different = sorted(k for k in reference if got.get(k) != reference[k])
        assert not different, (order, {k: got.get(k) for k in different[:6]})


def test_pillow_heif_bound_to_the_wrong_libheif_is_refused_loudly(tmp_path: Path) -> None:
    """An application that imported pillow_heif after pyvips: heicconv says so, and 'auto' says what it does."""
    for backend in BACKENDS:
        require_backend(backend)
    heic = tmp_path / "in.heic"
    heic.write_bytes(fixtures.make_heic((64, 48), "RGBA"))
    script = """
        import json, sys, warnings, contextlib, io
        from pathlib import Path
        import pyvips, pillow_heif  # pillow_heif now runs the system libheif: calling it would crash
        import heicconv
        from heicconv.cli import main
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = {"selected": list(heicconv.selected_backend())}
            statuses = {s.name: [s.available, s.reason] for s in heicconv.list_backends()}
            data = Path(sys.argv[1]).read_bytes()
            try:
                heicconv.convert(data, "png", backend="pillow")
            except heicconv.BackendUnavailableError as exc:
                out["explicit"] = [type(exc).__name__, str(exc)]
            result = heicconv.convert_with_report(data, "png")
            listing = io.StringIO()
            with contextlib.redirect_stdout(listing):
                main(["backends"])
        caught = [w for w in caught if "heicconv" in str(w.message)]  # not ResourceWarnings and the like
        out.update(
            statuses=statuses,
            auto=[result.backend, result.width, result.height],
            warnings=[[w.category.__name__, str(w.message), w.filename] for w in caught],
            listing=listing.getvalue(),
        )
        print(json.dumps(out))
    """
    out, _ = run(script, heic)
    assert out["statuses"]["vips"] == [True, ""]
    assert out["statuses"]["wand"] == [True, ""]
    available, reason = out["statuses"]["pillow"]
    assert not available
    assert "pillow-heif is bound to libheif" in reason and "instead of its own" in reason
    assert out["explicit"][0] == "BackendConflictError"
    assert out["auto"] == ["vips", 64, 48]
    assert out["selected"][0] == "vips"
    # One warning, naming the application's line, saying what 'auto' does about it.
    assert len(out["warnings"]) == 1, out["warnings"]
    category, message, filename = out["warnings"][0]
    assert category == "BackendConflictWarning"
    assert "'pillow' is installed but cannot run in this process" in message
    assert "'auto' skips it" in message
    assert filename == "<string>"
    assert "pillow: not available" in out["listing"]
    assert "why       pillow-heif is bound to libheif" in out["listing"]
