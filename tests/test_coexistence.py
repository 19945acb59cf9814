"""heicconv next to an application's own pyvips, pillow-heif and Wand, each scenario in a fresh process.

Import order and ImageMagick's policy are process-wide state, so every scenario runs in a
subprocess of its own: the application's imports first (or heicconv's), then heicconv.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import heicconv
from heicconv.testing import fixtures
from heicconv.testing.plugin import require_backend

BACKENDS = ["pillow", "vips", "wand"]
POLICY_DIR = Path(__file__).resolve().parent.parent / "heicconv" / "backends" / "imagemagick"


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


def policy_file(folder: Path, *resources: tuple[str, str]) -> Path:
    """A policy.xml in ``folder`` setting these resource limits (what an administrator writes)."""
    lines = "".join(f'  <policy domain="resource" name="{k}" value="{v}"/>\n' for k, v in resources)
    (folder / "policy.xml").write_text(f"<policymap>\n{lines}</policymap>\n", encoding="utf-8")
    return folder / "policy.xml"


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
        assert got["selected"] == [heicconv.select().name, "default (auto)"], order
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
    # One warning per backend built on pillow-heif (pillow, and ffmpeg where installed), naming the
    # application's line, saying what 'auto' does about it.
    on_pillow_heif = {"pillow"} | ({"ffmpeg"} if importlib.util.find_spec("av") else set())
    assert len(out["warnings"]) == len(on_pillow_heif), out["warnings"]
    named = set()
    for category, message, filename in out["warnings"]:
        assert category == "BackendConflictWarning"
        assert "is installed but cannot run in this process" in message and "'auto' skips it" in message
        assert filename == "<string>"
        named |= {name for name in on_pillow_heif if f"'{name}' is installed" in message}
    assert named == on_pillow_heif
    assert "pillow: not available" in out["listing"]
    assert "why       pillow-heif is bound to libheif" in out["listing"]


def _noisy_alpha_heic() -> tuple[bytes, bytes]:
    """An RGBA HEIC with a detailed alpha plane, and a copy with 32 bytes inverted inside that plane's data."""
    from PIL import Image

    from heicconv.container import isobmff

    picture = Image.effect_noise((128, 96), 60).convert("RGB")
    picture.putalpha(Image.effect_noise((128, 96), 90))
    good = fixtures.encode_heic(picture, quality=90)
    container = isobmff.parse(good)
    alpha = container.alpha_of(container.primary_id)
    assert alpha is not None and len(alpha.extents) == 1
    at = alpha.base_offset + alpha.extents[0][0] + alpha.extents[0][1] // 2
    return good, good[:at] + bytes(b ^ 0xFF for b in good[at : at + 32]) + good[at + 32 :]


@pytest.mark.parametrize("first", ["pillow-heif's", "the system's"])
def test_the_damage_check_uses_the_libde265_copy_the_process_binds_to(tmp_path: Path, first: str) -> None:
    """libvips loads libheif and libde265 globally, so pillow-heif's own libde265 then calls into the system's copy.

    The damage check must use the copy those calls go to: calling pillow-heif's mixed two builds' structures
    and crashed, but only where the virtual environment's path sorted before /usr (as in CI).
    """
    require_backend("vips")
    good, bad = _noisy_alpha_heic()
    (tmp_path / "good.heic").write_bytes(good)
    (tmp_path / "bad.heic").write_bytes(bad)
    script = """
        import json, sys
        import pyvips
        pyvips.Image.heifload(sys.argv[1]).avg()  # libvips's HEIF module, with the system's libde265, now loaded
        import pillow_heif
        import heicconv
        from heicconv.backends import _de265
        found = sorted(_de265._candidates(), key=lambda p: ("pillow_heif" in p) != (sys.argv[3] == "pillow-heif's"))
        _de265._candidates = lambda: found  # the order paths sort in differs between machines
        out = {"copies": sorted({p.rsplit("/", 1)[-1] for p in found})}
        out["good"] = len(heicconv.convert(open(sys.argv[1], "rb").read(), "png", backend="vips"))
        try:
            heicconv.convert(open(sys.argv[2], "rb").read(), "png", backend="vips")
        except heicconv.DecodeError as exc:
            out["bad"] = str(exc)
        print(json.dumps(out))
    """
    out, _ = run(script, tmp_path / "good.heic", tmp_path / "bad.heic", first)
    assert out["good"] > 0
    assert "the alpha plane" in out.get("bad", ""), out
    if importlib.util.find_spec("pillow_heif"):
        assert len(out["copies"]) >= 2, out  # the system's and pillow-heif's: the case this is about


# -- 5. heicconv's ImageMagick work and the application's ----------------------------------------------------

POLICY_STATE = """
    def policy_state():
        import os
        from wand.resource import limits
        keys = ("width", "height", "area", "memory", "map", "disk")
        return {"configure_path": os.environ.get("MAGICK_CONFIGURE_PATH", ""), "limits": {k: limits[k] for k in keys}}
"""


@pytest.mark.parametrize("first", ["heicconv", "application"])
def test_the_applications_own_imagemagick_work_is_untouched(tmp_path: Path, first: str) -> None:
    """GIF, BMP and the application's own resource limits, whichever used ImageMagick first."""
    require_backend("wand")
    heic = tmp_path / "in.heic"
    heic.write_bytes(fixtures.make_heic((64, 48)))
    script = textwrap.dedent(POLICY_STATE) + textwrap.dedent(
        """
        import json, sys
        from pathlib import Path
        data = Path(sys.argv[1]).read_bytes()
        if sys.argv[2] == "heicconv":
            import heicconv
            heicconv.convert(data, "png", backend="wand")
        from wand.image import Image
        from wand.resource import limits
        limits["width"] = 5000  # the application's own choice
        before = policy_state()
        import heicconv
        png = heicconv.convert(data, "png", backend="wand")
        after = policy_state()
        app = {}
        for fmt in ("gif", "bmp"):
            try:
                with Image(width=8, height=8, background="red") as img:
                    img.format = fmt
                    blob = img.make_blob()
                with Image(blob=blob, format=fmt) as back:
                    app[fmt] = [back.format, back.width]
            except Exception as exc:
                app[fmt] = [type(exc).__name__, str(exc)]
        print(json.dumps({"before": before, "after": after, "app": app, "png": len(png)}))
        """
    )
    out, _ = run(script, heic, first)
    assert out["png"] > 0
    assert out["app"] == {"gif": ["GIF", 8], "bmp": ["BMP", 8]}
    assert out["after"] == out["before"]
    assert out["after"]["limits"]["width"] == 5000
    assert out["after"]["configure_path"] == ""


def test_a_picture_the_policy_refuses_gets_the_true_reason(tmp_path: Path) -> None:
    """A 200 MP photo under a distribution's limits: LimitExceededError naming the key, not "delegate is missing"."""
    require_backend("wand")
    big = tmp_path / "200mp.heic"  # 12240x16320 (a 200 MP phone photo); refused before any decode
    big.write_bytes(fixtures.make_large_grid(12240, 16320))
    small = tmp_path / "small.heic"
    small.write_bytes(fixtures.make_heic((640, 480)))
    admin = tmp_path / "admin"
    admin.mkdir()
    stock = policy_file(admin, ("width", "16KP"), ("height", "16KP"), ("area", "128MP"))
    script = """
        import json, sys
        from wand.image import Image
        with Image(width=4, height=4, background="blue") as used_first:  # the application used Wand first
            used_first.make_blob("png")
        import heicconv
        out = {}
        for path in sys.argv[1:]:
            try:
                heicconv.convert(open(path, "rb").read(), "jpeg", backend="wand")
                out[path] = "converted"
            except heicconv.HeicconvError as exc:
                out[path] = [type(exc).__name__, str(exc)]
        out["policy"] = heicconv.select("wand").versions()["policy"]
        print(json.dumps(out))
    """
    out, _ = run(script, big, env={"MAGICK_CONFIGURE_PATH": str(admin)})
    kind, message = out[str(big)]
    assert kind == "LimitExceededError"
    assert "refuse this 12240x16320 image: its height limit is 16000 pixels" in message
    assert f'{stock} sets <policy domain="resource" name="height" value="16KP"/>' in message
    assert f"MAGICK_CONFIGURE_PATH={POLICY_DIR}" in message
    assert "delegate" not in message
    assert out["policy"].startswith(str(stock)) and "height 16KP" in out["policy"]

    # The pixel cache: neither in memory nor on disk. The message names all three keys.
    tight = tmp_path / "tight"
    tight.mkdir()
    policy_file(tight, ("area", "100KP"), ("memory", "1MiB"), ("disk", "1MiB"))
    out, _ = run(script, small, env={"MAGICK_CONFIGURE_PATH": str(tight)})
    kind, message = out[str(small)]
    assert kind == "LimitExceededError"
    assert "pixel cache fits neither in memory (area limit 100000 pixels" in message
    assert 'name="disk" value="1MiB"' in message and "Raise disk, or area and memory," in message

    # heicconv's own policy, where the process opts in, admits what the stock one refuses (a side over 16K;
    # a small area, so the test stays quick).
    wide = tmp_path / "wide.heic"
    wide.write_bytes(fixtures.make_large_grid(16384, 512))
    out, _ = run(script, wide, env={"MAGICK_CONFIGURE_PATH": str(admin)})
    assert out[str(wide)][0] == "LimitExceededError" and "width limit is 16000 pixels" in out[str(wide)][1]
    out, _ = run(script, wide, env={"MAGICK_CONFIGURE_PATH": str(POLICY_DIR)})
    assert out[str(wide)] == "converted"


@pytest.mark.slow
def test_the_200mp_photo_converts_on_wand_under_heicconvs_policy() -> None:
    """Where the process opts in to heicconv's policy (its images do), the corpus's 200 MP photo converts."""
    require_backend("wand")
    corpus = os.environ.get("HEICCONV_CORPUS")
    if not corpus:
        pytest.skip("set HEICCONV_CORPUS to the shared corpus folder")
    script = """
        import json, sys
        from pathlib import Path
        import heicconv
        result = heicconv.convert_with_report(
            Path(sys.argv[1]).read_bytes(), "jpeg", heicconv.Options(max_size=2048), backend="wand"
        )
        print(json.dumps([result.width, result.height]))
    """
    out, _ = run(script, Path(corpus) / "real" / "200MP.heic", env={"MAGICK_CONFIGURE_PATH": str(POLICY_DIR)})
    assert out == [1536, 2048]


def test_a_limit_the_application_lowered_is_kept_and_named(tmp_path: Path) -> None:
    require_backend("wand")
    heic = tmp_path / "in.heic"
    heic.write_bytes(fixtures.make_heic((64, 48)))
    script = """
        import json, sys
        from wand.resource import limits
        limits["width"] = 32
        import heicconv
        try:
            heicconv.convert(open(sys.argv[1], "rb").read(), "png", backend="wand")
            result = "converted"
        except heicconv.HeicconvError as exc:
            result = [type(exc).__name__, str(exc)]
        print(json.dumps({"result": result, "width": limits["width"]}))
    """
    out, _ = run(script, heic)
    assert out["width"] == 32
    kind, message = out["result"]
    assert kind == "LimitExceededError"
    assert "its width limit is 32 pixels" in message
    assert "MAGICK_WIDTH_LIMIT or a call in this process lowered it further" in message


def test_script_payloads_do_nothing_through_heicconv_and_the_application_keeps_its_coders(tmp_path: Path) -> None:
    """heicconv's reads use one built-in coder each, so a script payload is never interpreted by them;
    and the application may still read SVG (or whatever its own policy allows)."""
    require_backend("wand")
    from test_hostile import payloads

    target = tmp_path / "pwned.png"
    for name, data in payloads(target).items():
        (tmp_path / f"{name}.payload").write_bytes(data)
    script = textwrap.dedent(POLICY_STATE) + textwrap.dedent(
        """
        import json, sys
        from pathlib import Path
        import heicconv
        folder, target = Path(sys.argv[1]), Path(sys.argv[2])
        wand = heicconv.select("wand")
        through_heicconv = {}
        for payload in sorted(folder.glob("*.payload")):
            for coder in ("heic", "jpeg", "png", "webp", "tiff"):
                key = f"{payload.stem} as {coder}"
                try:
                    with wand._read(payload.read_bytes(), coder) as img:
                        through_heicconv[key] = [img.format, img.width, img.height]
                except Exception as exc:
                    through_heicconv[key] = type(exc).__name__
        written_by_heicconv = target.exists()
        from wand.image import Image
        try:
            svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8"/></svg>'
            with Image(blob=svg, format="svg") as img:
                app = [img.format, img.width, img.height]
        except Exception as exc:
            app = f"{type(exc).__name__}: {exc}"
        print(json.dumps({"heicconv": through_heicconv, "written": written_by_heicconv, "app": app,
                          "state": policy_state()}))
        """
    )
    out, _ = run(script, tmp_path, target)
    assert out["written"] is False
    assert len(out["heicconv"]) == 30
    for key, got in out["heicconv"].items():  # refused, or read by that coder as nothing
        coder = key.rsplit(" ", 1)[-1]
        assert isinstance(got, str) or got == [coder.upper(), 0, 0], (key, got)
    if isinstance(out["app"], list):
        assert out["app"] == ["SVG", 8, 8]
    else:  # the machine's own policy forbids SVG: fine, as long as that policy is not heicconv's
        assert "security policy" in out["app"]
        assert out["state"]["configure_path"] == ""


def test_heicconv_reads_no_format_imagemagick_would_hand_to_a_delegate() -> None:
    """A coder without a built-in decoder (ImageMagick would run dwebp from delegates.xml) is not offered."""
    require_backend("wand")
    script = """
        import json
        from heicconv.backends import imagemagick, wand
        names = ["heic", "jpeg", "png", "webp", "tiff", "avif"]
        here = imagemagick.native_coders(names)
        real = imagemagick.native_coders
        imagemagick.native_coders = lambda names: {**real(names), "webp": (False, False)}
        caps = wand.WandBackend().capabilities
        print(json.dumps({"here": here, "inputs": sorted(caps.inputs), "outputs": sorted(caps.outputs)}))
    """
    out, _ = run(script)
    assert out["here"] == {name: [True, True] for name in ("heic", "jpeg", "png", "webp", "tiff", "avif")}
    assert out["inputs"] == ["avif", "heic", "jpeg", "png", "tiff"]
    assert "webp" not in out["outputs"] and "jpeg" in out["outputs"]


def test_a_coder_that_returns_nothing_is_a_decode_error_not_a_missing_delegate() -> None:
    require_backend("wand")
    script = """
        import json
        import heicconv
        try:
            heicconv.select("wand")._read(b"\\x00\\x00\\x00\\x18ftypheic" + b"\\x00" * 64, "heic")
            print(json.dumps("read"))
        except Exception as exc:
            print(json.dumps([type(exc).__name__, str(exc)]))
    """
    out, _ = run(script)
    assert out == ["DecodeError", "ImageMagick's HEIC coder returned no image and gave no reason"]


def layered_tiff() -> bytes:
    """A 4x4 TIFF whose ImageSourceData tag (37724) holds one Photoshop layer, as Photoshop saves layered TIFFs."""
    import io
    import struct

    from PIL import Image, TiffImagePlugin

    w, h, channels = 4, 4, (-1, 0, 1, 2)
    layer = struct.pack("<iiiiH", 0, 0, h, w, len(channels))
    layer += b"".join(struct.pack("<hI", c, 2 + w * h) for c in channels)
    extra = struct.pack("<II", 0, 0) + b"\x05layer\x00\x00"  # no mask, no blending ranges, the name
    # ImageMagick reads this block in the TIFF's byte order, signatures included.
    layer += b"MIB8" + b"mron" + bytes([255, 0, 0, 0]) + struct.pack("<I", len(extra)) + extra
    pixels = b"".join(struct.pack("<H", 0) + bytes([200]) * (w * h) for _ in channels)
    info = struct.pack("<h", 1) + layer + pixels
    block = b"Adobe Photoshop Document Data Block\0MIB8ryaL" + struct.pack("<I", len(info)) + info
    ifd = TiffImagePlugin.ImageFileDirectory_v2()
    ifd[37724] = block
    ifd.tagtype[37724] = 7  # UNDEFINED
    buf = io.BytesIO()
    Image.new("RGB", (w, h), "blue").save(buf, "TIFF", tiffinfo=ifd)
    return buf.getvalue()


def test_heicconvs_tiff_reads_never_reach_the_photoshop_layer_parser(tmp_path: Path) -> None:
    """ImageMagick parses a TIFF's Photoshop layers with its PSD code (a long CVE history); heicconv turns it off
    for its own reads only."""
    require_backend("wand")
    tiff = tmp_path / "layered.tiff"
    tiff.write_bytes(layered_tiff())
    script = """
        import json, sys
        from pathlib import Path
        import heicconv
        from wand.image import Image
        data = Path(sys.argv[1]).read_bytes()
        with Image(blob=data, format="tiff") as plain:
            app = len(plain.sequence)
        with heicconv.select("wand")._read(data, "tiff") as img:
            ours = len(img.sequence)
        png = heicconv.convert(data, "png", backend="wand")
        print(json.dumps({"app": app, "heicconv": ours, "width": heicconv.probe(png).width}))
    """
    out, _ = run(script, tiff)
    assert out == {"app": 2, "heicconv": 1, "width": 4}  # the application's read parsed the layer


@pytest.mark.parametrize("dockerfile", ["Dockerfile.wand", "Dockerfile.lambda"])
def test_heicconvs_images_opt_in_to_heicconvs_policy(dockerfile: str) -> None:
    """In its own images heicconv is ImageMagick's only user: they point MAGICK_CONFIGURE_PATH at its policy."""
    root = POLICY_DIR.parents[2]
    text = (root / "docker" / dockerfile).read_text(encoding="utf-8")
    found = re.search(r"^\s+MAGICK_CONFIGURE_PATH=(\S+)", text, re.MULTILINE)
    assert found, dockerfile
    source = (POLICY_DIR / "policy.xml").relative_to(root).as_posix()
    # The final stage copies the repository's policy into exactly that folder.
    final_stage = text.rsplit("\nFROM ", 1)[1]
    assert f"COPY {source} {found.group(1)}/policy.xml" in final_stage


def test_heicconvs_policy_sets_no_process_lifetime_limit() -> None:
    """ImageMagick's "time" resource counts from the process's first use and then ends the process (exit 1)
    at its next call: a service started under a policy with time=600 died ten minutes later."""
    import xml.etree.ElementTree as ET
    from pathlib import Path

    import heicconv.backends

    policy = Path(heicconv.backends.__file__).with_name("imagemagick") / "policy.xml"
    names = {p.get("name") for p in ET.parse(policy).getroot() if p.get("domain") == "resource"}
    assert "area" in names and "time" not in names
