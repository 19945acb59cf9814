"""Ultra HDR JPEGs from heicconv, checked by an independent decoder: libultrahdr in pyvips-binary (``nox -s hdr``).

Two steps in two environments, because pyvips-binary carries its own libvips and must stay out of the one
heicconv's vips backend runs in:

1. ``python tests/uhdr_check.py convert DIR`` (heicconv's environment): every gain-map photo of the corpus
   (``HEICCONV_CORPUS``) to JPEG on every local backend available there (ffmpeg, pillow, vips, wand and any
   plugin; ``HEICCONV_REQUIRE_BACKENDS`` names those that must be), with ``hdr="keep"`` and ``hdr="drop"``
   (today's output),
   plus heicconv's own HDR rendering of the HEIC, as block means of its luminance (``*.ref.npy``);
2. ``python tests/uhdr_check.py check DIR`` (pyvips-binary's environment): for each JPEG, ``uhdrload``
   must find the gain map and its ``gainmap-*`` metadata with the HEIC's headroom; the SDR picture must
   equal the ``hdr="drop"`` output pixel for pixel; the HDR picture ``uhdr2scRGB`` reconstructs must
   match the reference within the tolerance below.

Without a corpus, or besides it, two generated HEICs without a gain map are checked the same way: 10-bit PQ
and HLG ramps from black to 1,000 cd/m², which heicconv tone maps and gives a computed gain map (issue 14,
item 5). Their reference is the source's display light, from the decoded samples by SMPTE ST 2084 and
BT.2100 written out here, over BT.2408's 203 cd/m² SDR white; their headroom must be within 5 % of the
ramp's top, 1000 / 203.

The reference applies the source's own definition: Apple's formula (``sdr * (1 + (headroom - 1) * g)``,
``g`` linearised by Rec.709) for a map described only by the MakerNote, the ISO 21496-1 formula with the
file's ``tmap`` or ``hdrgm`` metadata otherwise. Both sides are compared as relative luminance, averaged
over blocks of 16x16 output pixels, so JPEG noise and resampling filters do not count, a wrong headroom,
orientation or scale does.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from pathlib import Path

BLOCK = 16
MAX_SIZE = 2048  # the outputs are resized, so the gain map's resize is checked too; and 200 MP fits in memory
#: Relative luminance error per 16x16 block: median and 99th percentile allowed.
TOLERANCE = {"median": 0.01, "p99": 0.04}  # measured: at most 0.53% and 2.6%
#: Where libvips 8.18's uhdr2scRGB puts SDR white (measured: HDR/reference ratios centre on 1.000 for all files).
SCRGB_WHITE = 1.0
_P3_Y = (0.2289746, 0.6917385, 0.0792869)  # Display P3 luminance weights (the photos' primaries)
_709_Y = (0.2126, 0.7152, 0.0722)


def _blocks(y, block: int = BLOCK):  # type: ignore[no-untyped-def]
    h, w = (y.shape[0] // block) * block, (y.shape[1] // block) * block
    return y[:h, :w].reshape(h // block, block, w // block, block).mean(axis=(1, 3))


def _srgb_to_linear(v):  # type: ignore[no-untyped-def]
    import numpy as np

    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


_GENERATED_PEAK = 1000 / 203  # the ramps' top over SDR white (BT.2408)


def _ramp(transfer: int) -> bytes:
    """A near-gray 10-bit HEIC, 512x128, whose signal rises left to right to 1000 cd/m² (PQ) or 100 % (HLG)."""
    import numpy as np
    import pillow_heif

    top = 0.7518 if transfer == 16 else 1.0  # PQ of 1000 cd/m²; HLG's peak is 1000 cd/m² on its display
    ramp = np.linspace(0, top, 512)
    # Blue a step lower: an exactly gray picture gives a one-channel JPEG on wand, which libultrahdr refuses.
    rgb = np.stack([ramp, ramp, ramp * 0.99], axis=1)
    row = np.round(rgb * 1023).astype(np.uint16) << 6
    arr = np.ascontiguousarray(np.repeat(row[None], 128, axis=0).astype("<u2"))
    heif = pillow_heif.HeifFile()
    heif.add_frombytes("RGB;16", (512, 128), arr.tobytes())
    nclx = {"color_primaries": 9, "transfer_characteristics": transfer, "matrix_coefficients": 9}
    heif[0].info["nclx_profile"] = {**nclx, "full_range_flag": 1}
    buf = io.BytesIO()
    heif.save(buf, quality=90)
    return buf.getvalue()


def _display_light(data: bytes, transfer: int):  # type: ignore[no-untyped-def]
    """The HEIC's display light over 203 cd/m², as luminance: ST 2084's EOTF, or BT.2100's HLG inverse OETF and
    OOTF (1000 cd/m², gamma 1.2), on the samples pillow-heif decodes."""
    import numpy as np
    import pillow_heif

    frame = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=False)[0]
    e = np.frombuffer(bytes(frame.data), dtype="<u2").reshape(frame.size[1], -1, 3)[:, : frame.size[0]] >> 6
    e = e.astype(np.float64) / 1023
    if transfer == 16:
        m1, m2, c1, c2, c3 = 2610 / 16384, 2523 / 32, 3424 / 4096, 2413 / 128, 2392 / 128
        p = e ** (1 / m2)
        nits = 10000 * (np.maximum(p - c1, 0) / (c2 - c3 * p)) ** (1 / m1)
    else:
        a = 0.17883277
        b, c = 1 - 4 * a, 0.5 - a * np.log(4 * a)
        scene = np.where(e <= 0.5, e * e / 3, (np.exp((e - c) / a) + b) / 12)
        ys = scene @ np.asarray((0.2627, 0.6780, 0.0593))
        nits = 1000 * scene * (ys**0.2)[..., None]
    return (nits @ np.asarray((0.2627, 0.6780, 0.0593))) / 203


def local_backends() -> list[str]:
    """Every backend that converts in this process and is available here; a required one missing is an error."""
    import heicconv
    from heicconv.backends import registry
    from heicconv.testing.plugin import required_backends

    statuses = [s for s in heicconv.list_backends() if not registry.is_remote(s.name)]
    missing = [f"{s.name} ({s.reason})" for s in statuses if not s.available and s.name in required_backends()]
    if missing:
        raise SystemExit(f"required by HEICCONV_REQUIRE_BACKENDS but unavailable: {', '.join(missing)}")
    return [s.name for s in statuses if s.available]


def convert(out: Path) -> None:
    import numpy as np
    from PIL import Image

    import heicconv
    from heicconv.backends.pillow import load_pillow_heif
    from heicconv.container import gainmap
    from heicconv.container.info import read_source as inspect
    from heicconv.pipeline import hdr as carry

    out.mkdir(parents=True, exist_ok=True)
    backends = local_backends()
    (out / "backends.json").write_text(json.dumps(backends))  # what the check step reads back
    summary: list[dict[str, object]] = []
    for name, transfer in (("generated-pq", 16), ("generated-hlg", 18)):
        data = _ramp(transfer)
        for backend in backends:
            for hdr in ("keep", "drop"):
                result = heicconv.convert_with_report(data, "jpeg", heicconv.Options(hdr=hdr), backend=backend)
                (out / f"{name}.{backend}.{hdr}.jpg").write_bytes(result.data)
                summary.append({"file": name, "backend": backend, "hdr": hdr, "bytes": len(result.data)})
        np.save(out / f"{name}.ref.npy", _blocks(_display_light(data, transfer)))
        (out / f"{name}.headroom").write_text(repr(_GENERATED_PEAK))
    corpus = Path(os.environ.get("HEICCONV_CORPUS", "/nonexistent"))
    manifest = json.loads((corpus / "manifest.json").read_text()) if corpus.is_dir() else {"files": []}
    files = [f for f in manifest["files"] if any("hdrgainmap" in t for t in f.get("aux_types", []))]
    for entry in files:
        name = Path(entry["path"]).stem
        data = (corpus / entry["path"]).read_bytes()
        source = inspect(data)
        gm = gainmap.find(source)
        if gm is None or gm.metadata is None:
            summary.append({"file": name, "skipped": gm.problem if gm else "no gain map"})
            continue
        for backend in backends:
            for hdr in ("keep", "drop"):
                start = time.perf_counter()
                result = heicconv.convert_with_report(
                    data, "jpeg", heicconv.Options(max_size=MAX_SIZE, hdr=hdr), backend=backend
                )
                seconds = time.perf_counter() - start
                (out / f"{name}.{backend}.{hdr}.jpg").write_bytes(result.data)
                summary.append({"file": name, "backend": backend, "hdr": hdr, "bytes": len(result.data), "s": seconds})
        size = (result.width, result.height)
        # heicconv's HDR rendering of the HEIC: its SDR picture and its gain map, both decoded by pillow-heif.
        assert source.container is not None and source.item is not None
        sdr = load_pillow_heif().open_heif(io.BytesIO(source.container.extract(data, source.item.id)))[0]
        sdr_img = sdr.to_pillow().convert("RGB").resize(size, Image.Resampling.LANCZOS)
        rgb = _srgb_to_linear(np.asarray(sdr_img, dtype=np.float32) / 255)
        y_sdr = rgb @ np.asarray(_P3_Y, dtype=np.float32)
        g = np.asarray(carry.decode(source, gm).resize(size, Image.Resampling.BILINEAR), dtype=np.float32) / 255
        m = gm.metadata
        if gm.apple_headroom:
            lin = np.where(g < 0.081, g / 4.5, ((g + 0.099) / 1.099) ** (1 / 0.45))
            y_hdr = y_sdr * (1 + (gm.apple_headroom - 1) * lin)
        else:
            log_boost = m.min_log2 + (m.max_log2 - m.min_log2) * g ** (1 / m.gamma)
            y_hdr = (y_sdr + m.offset_sdr) * np.exp2(log_boost) - m.offset_hdr
        np.save(out / f"{name}.ref.npy", _blocks(y_hdr))
        (out / f"{name}.headroom").write_text(repr(m.headroom))
    (out / "convert.json").write_text(json.dumps(summary, indent=1))
    print(f"converted {len({s['file'] for s in summary})} files on {', '.join(backends)} into {out}")


def check(out: Path) -> int:
    import numpy as np
    import pyvips

    if pyvips.version(0) * 100 + pyvips.version(1) < 818:
        raise SystemExit(f"libvips {pyvips.version(0)}.{pyvips.version(1)}: uhdrload needs 8.18 (pyvips-binary)")
    failures, rows = [], []
    backends = json.loads((out / "backends.json").read_text())
    for ref_path in sorted(out.glob("*.ref.npy")):
        name = ref_path.name[: -len(".ref.npy")]
        ref = np.load(ref_path)
        headroom = float((out / f"{name}.headroom").read_text())
        for backend in backends:
            path = out / f"{name}.{backend}.keep.jpg"
            im = pyvips.Image.uhdrload(str(path))
            fields = set(im.get_fields())
            missing = {"gainmap-data", "gainmap-hdr-capacity-max", "gainmap-max-content-boost"} - fields
            if missing:
                failures.append(f"{path.name}: libultrahdr found no gain map ({', '.join(sorted(missing))} missing)")
                continue
            capacity = im.get("gainmap-hdr-capacity-max")
            # A computed map's headroom is the picture's largest gain (with the offsets), not a number in the file.
            if abs(capacity - headroom) > (0.05 if name.startswith("generated-") else 1e-3) * headroom:
                failures.append(f"{path.name}: headroom {capacity:.4f}, the HEIC says {headroom:.4f}")
            sdr = np.ndarray(buffer=im.write_to_memory(), dtype=np.uint8, shape=(im.height, im.width, im.bands))
            plain = pyvips.Image.new_from_file(str(out / f"{name}.{backend}.drop.jpg"))
            today = np.ndarray(
                buffer=plain.write_to_memory(), dtype=np.uint8, shape=(plain.height, plain.width, plain.bands)
            )
            if sdr.shape != today.shape or int(np.abs(sdr.astype(int) - today).max()) != 0:
                failures.append(f"{path.name}: the SDR picture differs from the hdr='drop' output")
            hdr = im.uhdr2scRGB()
            lin = np.ndarray(buffer=hdr.write_to_memory(), dtype=np.float32, shape=(hdr.height, hdr.width, 3))
            y = _blocks(lin @ np.asarray(_709_Y, dtype=np.float32)) / SCRGB_WHITE
            if y.shape != ref.shape:
                failures.append(f"{path.name}: HDR blocks {y.shape}, reference {ref.shape}")
                continue
            err = np.abs(y - ref) / np.maximum(ref, 0.05)
            row = {
                "file": path.name,
                "headroom": round(capacity, 4),
                "hdr_peak": round(float(y.max()), 3),
                "median": round(float(np.median(err)), 4),
                "p99": round(float(np.quantile(err, 0.99)), 4),
            }
            rows.append(row)
            if row["median"] > TOLERANCE["median"] or row["p99"] > TOLERANCE["p99"]:
                failures.append(f"{path.name}: HDR differs from heicconv's rendering beyond {TOLERANCE}: {row}")
    for row in rows:
        print(json.dumps(row))
    if not rows:
        failures.append("no Ultra HDR JPEG was checked")
    for f in failures:
        print("FAIL", f)
    print(
        f"{len(rows)} Ultra HDR JPEGs checked by libultrahdr {pyvips.version(0)}.{pyvips.version(1)}: "
        f"{'all match' if not failures else f'{len(failures)} failure(s)'}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    command, folder = sys.argv[1], Path(sys.argv[2])
    if command == "convert":
        convert(folder)
    else:
        sys.exit(check(folder))
