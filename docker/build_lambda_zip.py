"""Build the AWS Lambda deployment ZIP (heicconv + Pillow + pillow-heif, or with ``--backend ffmpeg`` also
PyAV, simplejpeg and numpy) from pip wheels.

The ZIP route runs the ``pillow`` or ``ffmpeg`` backend on Lambda's managed Python runtime;
pillow-heif's and PyAV's manylinux wheels bundle libheif, FFmpeg and their HEVC decoders, so nothing
else is needed. (Wand and libvips need a container image: ``docker/Dockerfile.lambda``.)

Usage, from the repository root::

    python docker/build_lambda_zip.py --arch x86_64 --arch arm64 --out dist/
    python docker/build_lambda_zip.py --backend ffmpeg --arch x86_64 --arch arm64 --out dist/

Wheels are chosen for the target, not for this machine:
``pip install --platform manylinux_2_28_<arch> --python-version 3.12
--implementation cp --only-binary=:all: --target DIR``. boto3 is left out by
default because the Lambda Python runtime provides it (``--with-boto3`` adds it,
to pin its version). Type stubs, Cython declarations, C headers and packages' test
suites are left out: nothing imports them at run time. Prints a JSON summary and, on
stderr, what is near or past a limit; exits 1 when the unzipped size passes Lambda's
250 MB limit.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UNZIPPED_LIMIT = 250 * 1024 * 1024  # Lambda quota: function and layers, unzipped
ZIPPED_DIRECT_UPLOAD_LIMIT = 50 * 1024 * 1024  # larger ZIPs must be uploaded through S3
#: Below the limit but closer than this: a newer wheel of the same packages may not fit, nor a layer beside it.
UNZIPPED_MARGIN = 25 * 1024 * 1024
#: The backend the ZIP runs -> heicconv's extras it installs.
BACKENDS = {"pillow": [], "ffmpeg": ["ffmpeg"]}
ARCHES = {"x86_64": ("x86_64", 62), "arm64": ("aarch64", 183)}  # Lambda name -> (wheel arch, ELF e_machine)
# 1980-01-01, the earliest a ZIP can record: the same inputs give the same bytes.
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
# Not needed at run time; the runtime never writes bytecode into the read-only /var/task.
DROP_DIRS = {"__pycache__", "tests"}
# Type stubs, Cython declarations and C headers: read by type checkers and compilers, never imported.
DROP_SUFFIXES = {".pyi", ".pxd", ".pyx", ".h"}


def build_wheel(workdir: Path) -> Path:
    """heicconv's own wheel, built from this checkout (pure Python, so any platform).

    It is built from a copy: setuptools leaves a ``build/`` folder in the source
    tree and reuses it, so a module deleted since would otherwise end up in the wheel.
    """
    source = workdir / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "heicconv", source / "heicconv", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = workdir / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
        check=True,
    )
    (wheel,) = out.glob("heicconv-*.whl")
    return wheel


def install(target: Path, wheel: Path, arch: str, python: str, extras: list[str]) -> None:
    machine = ARCHES[arch][0]
    requirement = f"{wheel}[{','.join(extras)}]" if extras else str(wheel)
    cmd = [
        sys.executable, "-m", "pip", "install", "-q", "--no-compile", "--disable-pip-version-check",
        "--platform", f"manylinux_2_28_{machine}",
        "--python-version", python, "--implementation", "cp", "--only-binary=:all:",
        "--target", str(target), requirement,
    ]  # fmt: skip
    subprocess.run(cmd, check=True)
    trim(target)
    shutil.rmtree(target / "bin", ignore_errors=True)  # console scripts point at this machine's Python


def trim(target: Path) -> None:
    """Remove what nothing imports at run time: bytecode caches, packages' test suites, stubs and headers."""
    for path in sorted(target.rglob("*"), reverse=True):
        if path.is_dir() and path.name in DROP_DIRS and path.parent != target:  # a top-level "tests" is a module
            shutil.rmtree(path)
        elif path.is_file() and path.suffix in DROP_SUFFIXES:
            path.unlink()


def write_notices(tree: Path) -> Path:
    """THIRD_PARTY_NOTICES.md at the ZIP's root: every bundled distribution and library and its licence.

    pillow-heif's wheels link x265 (GPL-2.0), libheif and libde265 (LGPL-3.0): whoever hands the
    ZIP on must hand these notices on with it (docs/licences.md).
    """
    spec = importlib.util.spec_from_file_location("heicconv_notices", Path(__file__).with_name("notices.py"))
    assert spec and spec.loader
    notices = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # its dataclass looks itself up
    spec.loader.exec_module(notices)
    path = tree / "THIRD_PARTY_NOTICES.md"
    path.write_text(notices.render(tree, dpkg=False), encoding="utf-8")
    return path


def check_arch(target: Path, arch: str) -> int:
    """Raise if any shared library is for another CPU; return how many were checked."""
    expected = ARCHES[arch][1]
    count = 0
    for lib in target.rglob("*.so*"):
        if not lib.is_file():
            continue
        with lib.open("rb") as fh:
            head = fh.read(20)
        if head[:4] != b"\x7fELF":
            continue
        (machine,) = struct.unpack_from("<H", head, 18)
        if machine != expected:
            raise SystemExit(f"{lib.relative_to(target)} is for ELF machine {machine}, not {arch} ({expected})")
        count += 1
    return count


def write_zip(tree: Path, zip_path: Path) -> int:
    """Zip ``tree`` reproducibly; returns the unzipped size in bytes."""
    total = 0
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in sorted(tree.rglob("*")):
            if not path.is_file():
                continue
            info = zipfile.ZipInfo(path.relative_to(tree).as_posix(), FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            executable = os.access(path, os.X_OK) or path.suffix == ".so" or ".so." in path.name
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            data = path.read_bytes()
            total += len(data)
            zf.writestr(info, data, compresslevel=9)
    return total


def build(
    arch: str,
    out: Path,
    python: str = "3.12",
    extras: list[str] | None = None,
    wheel: Path | None = None,
    backend: str = "pillow",
) -> dict[str, object]:
    """Build one ZIP and return its summary (sizes in bytes); ``wheel`` is heicconv's, built if not given."""
    with tempfile.TemporaryDirectory(prefix="heicconv-lambda-") as tmp:
        workdir = Path(tmp)
        wheel = wheel or build_wheel(workdir)
        tree = workdir / "package"
        install(tree, wheel, arch, python, [*BACKENDS[backend], *(extras or [])])
        write_notices(tree)
        libraries = check_arch(tree, arch)
        flavour = "" if backend == "pillow" else f"-{backend}"
        zip_path = out / f"heicconv-lambda{flavour}-py{python.replace('.', '')}-{arch}.zip"
        unzipped = write_zip(tree, zip_path)
        top = sorted({p.name for p in tree.iterdir()})
    zipped = zip_path.stat().st_size
    return {
        "arch": arch,
        "backend": backend,
        "python": python,
        "zip": str(zip_path),
        "zipped_bytes": zipped,
        "unzipped_bytes": unzipped,
        "zipped_mb": round(zipped / 2**20, 1),
        "unzipped_mb": round(unzipped / 2**20, 1),
        "shared_libraries": libraries,
        "under_250mb_unzipped": unzipped <= UNZIPPED_LIMIT,
        "direct_upload_ok": zipped <= ZIPPED_DIRECT_UPLOAD_LIMIT,
        "top_level": top,
        "handler": "heicconv.aws_lambda.handler",
    }


def limit_notes(summary: dict[str, object]) -> list[str]:
    """What to know about one ZIP's size against Lambda's quotas, worst first (empty: nothing to say)."""
    name = Path(str(summary["zip"])).name
    unzipped, zipped = int(str(summary["unzipped_bytes"])), int(str(summary["zipped_bytes"]))
    mb = 1024 * 1024
    notes = []
    if unzipped > UNZIPPED_LIMIT:
        notes.append(
            f"error: {name} is {unzipped / mb:.1f} MB unzipped, over Lambda's 250 MB limit; it cannot be deployed"
        )
    elif unzipped > UNZIPPED_LIMIT - UNZIPPED_MARGIN:
        notes.append(
            f"warning: {name} is {unzipped / mb:.1f} MB unzipped, within {UNZIPPED_MARGIN // mb} MB of Lambda's "
            "250 MB limit: a layer beside it, or newer wheels, may not fit"
        )
    if zipped > ZIPPED_DIRECT_UPLOAD_LIMIT:
        notes.append(
            f"note: {name} is {zipped / mb:.1f} MB zipped, over the 50 MB of a direct upload: upload it to S3 and "
            "deploy with --s3-bucket and --s3-key"
        )
    return notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--arch", action="append", choices=sorted(ARCHES), help="repeat for several (default x86_64)")
    parser.add_argument("--python", default="3.12", help="Lambda runtime's Python version (default 3.12)")
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output folder (default dist/)")
    parser.add_argument("--with-boto3", action="store_true", help="bundle boto3 (the runtime already has one)")
    parser.add_argument("--backend", choices=sorted(BACKENDS), default="pillow", help="the backend it runs")
    args = parser.parse_args(argv)
    extras = ["lambda"] if args.with_boto3 else []
    with tempfile.TemporaryDirectory(prefix="heicconv-wheel-") as tmp:
        wheel = build_wheel(Path(tmp))
        summaries = [
            build(arch, args.out, args.python, extras, wheel, args.backend) for arch in args.arch or ["x86_64"]
        ]
    print(json.dumps(summaries, indent=2))
    for summary in summaries:
        for note in limit_notes(summary):
            print(note, file=sys.stderr)
    return 0 if all(s["under_250mb_unzipped"] for s in summaries) else 1


if __name__ == "__main__":
    sys.exit(main())
