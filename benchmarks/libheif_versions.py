"""Which HEIF files each libheif version decodes, as uploaded and as heicconv hands them to a decoder.

heicconv never gives a decoder the upload itself: it gives it a file that holds only the image
to decode (``isobmff.Container.extract``). This measures what that buys on the libheif versions
a deployment may have. Decoders:

- ``vips`` and ``wand``: libvips and ImageMagick on the system libheif (Debian 12: 1.15);
- ``pillow-heif``: its bundled libheif (1.23 with pillow-heif 1.8);
- any other Python given with ``--python LABEL=PATH`` whose ``pillow_heif`` bundles an older
  libheif (pillow-heif 0.5.1 bundles 1.12.0, Ubuntu 22.04's version; 0.7.0 bundles 1.13.0).

    python benchmarks/libheif_versions.py $HEICCONV_CORPUS/real \
        --python "libheif 1.12=/tmp/ph12/bin/python" --python "libheif 1.13=/tmp/ph13/bin/python"

Prints a Markdown table: for each file, each decoder's result on the original and on heicconv's
normalised file ("ok" when it decodes at the size the header declares).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import heicconv
from heicconv.container.info import read_source

# Run by each decoder's interpreter: decode every path, print one JSON result per path.
_CHILD = r"""
import json, sys
paths = json.loads(sys.stdin.read())
which = sys.argv[1]
out = []
for path in paths:
    try:
        if which == "pillow-heif":
            import pillow_heif
            f = pillow_heif.open_heif(path)
            img = f[f.primary_index] if hasattr(f, "primary_index") and not callable(f.primary_index) else f
            len(img.data)
            size = tuple(img.size)
        elif which == "vips":
            import pyvips
            img = pyvips.Image.new_from_file(path, access="sequential")
            img.avg()
            size = (img.width, img.height)
        else:
            from wand.image import Image
            with Image(filename="heic:" + path) as img:
                size = (img.width, img.height)
        out.append(["ok", list(size)])
    except Exception as exc:
        out.append(["error", str(exc).strip().splitlines()[0][:90] if str(exc).strip() else type(exc).__name__])
print(json.dumps(out))
"""


def _decode(python: str, which: str, paths: list[str]) -> list[list[object]]:
    done = subprocess.run(
        [python, "-c", _CHILD, which], input=json.dumps(paths), capture_output=True, text=True, timeout=1800
    )
    if done.returncode:
        raise SystemExit(f"{python} ({which}) failed: {done.stderr.strip()[-500:]}")
    results: list[list[object]] = json.loads(done.stdout)
    return results


def _version(python: str) -> str:
    code = "import pillow_heif; print(pillow_heif.libheif_version())"
    return subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def _generated(folder: Path) -> list[Path]:
    """Forms that real files take and the corpus lacks, written by heicconv's fixtures."""
    import io

    from heicconv.testing import fixtures

    avif = io.BytesIO()
    fixtures.gradient((96, 64), "RGBA").save(avif, "AVIF", quality=90)
    forms = {
        "gen-ios18-layout.heic": fixtures.make_iphone_heic((256, 192)),
        "gen-mini.heic": fixtures.make_mini_heic((128, 64)),
        "gen-mini-alpha-rot90.heic": fixtures.make_mini_heic((128, 64), "RGBA", orientation=8),
        "gen-alpha-irot-on-image-only.heic": fixtures.set_heif_transform(
            fixtures.make_heic((64, 48), "RGBA"), 90, None, on_alpha=False
        ),
        "gen-avif-irot-imir.avif": fixtures.set_heif_transform(avif.getvalue(), 270, 1),
    }
    paths = []
    for name, data in forms.items():
        (folder / name).write_bytes(data)
        paths.append(folder / name)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, nargs="?", help="a folder of .heic/.heif/.hif/.avif files")
    parser.add_argument("--python", action="append", default=[], metavar="LABEL=PATH")
    parser.add_argument("--generated", action="store_true", help="also the forms heicconv's fixtures write")
    args = parser.parse_args()

    files = []
    if args.folder:
        files = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in (".heic", ".heif", ".hif", ".avif"))
    generated_dir = tempfile.TemporaryDirectory()
    if args.generated:
        files += _generated(Path(generated_dir.name))
    decoders: list[tuple[str, str, str]] = []
    for spec in args.python:
        label, _, python = spec.partition("=")
        decoders.append((f"{label} ({_version(python)})", python, "pillow-heif"))
    status = {b.name: b for b in heicconv.list_backends()}
    bundled = status["pillow"].versions.get("libheif", "?")
    decoders.append((f"pillow-heif (libheif {bundled})", sys.executable, "pillow-heif"))
    for name in ("vips", "wand"):
        if status[name].available:
            decoders.append((f"{name} (libheif {status[name].versions.get('libheif', '?')})", sys.executable, name))

    with tempfile.TemporaryDirectory() as tmp:
        originals, normalised, declared = [], [], []
        for path in files:
            data = path.read_bytes()
            originals.append(str(path))
            try:
                source = read_source(data)  # expands a 'mini' box, as a conversion does
                c = source.container
                assert c is not None and source.item is not None
                out = Path(tmp) / path.name
                out.write_bytes(c.extract(source.data, source.item.id))
                normalised.append(str(out))
                declared.append((source.width, source.height))
            except heicconv.HeicconvError as exc:
                normalised.append("")
                declared.append((0, 0))
                print(f"{path.name}: heicconv refuses it: {exc}", file=sys.stderr)
        columns = []
        for label, python, which in decoders:
            before = _decode(python, which, originals)
            after = _decode(python, which, [p for p in normalised if p])
            after_iter = iter(after)
            columns.append((label, before, [next(after_iter) if p else ["refused", None] for p in normalised]))

    def cell(result: list[object], size: tuple[int, int]) -> str:
        if result[0] == "ok":
            return "ok" if tuple(result[1]) == tuple(size) else f"wrong size {result[1]}"  # type: ignore[arg-type]
        return f"{result[0]}: {result[1]}" if result[1] else str(result[0])

    print("| file | " + " | ".join(label for label, _, _ in columns) + " |")
    print("|---|" + "---|" * len(columns))
    for i, path in enumerate(files):
        cells = []
        for _, before, after in columns:
            b, a = cell(before[i], declared[i]), cell(after[i], declared[i])
            cells.append(b if b == a else f"{b} → normalised: {a}")
        print(f"| {path.name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
