"""Build the AWS Lambda deployment ZIP (heicconv + Pillow + pillow-heif) from pip wheels.

The ZIP route runs the ``pillow`` backend on Lambda's managed Python runtime;
pillow-heif's manylinux wheels bundle libheif and its HEVC decoder, so nothing
else is needed. (Wand and libvips need a container image: ``docker/Dockerfile.lambda``.)

Usage, from the repository root::

    python docker/build_lambda_zip.py --arch x86_64 --arch arm64 --out dist/

Wheels are chosen for the target, not for this machine:
``pip install --platform manylinux_2_28_<arch> --python-version 3.12
--implementation cp --only-binary=:all: --target DIR``. boto3 is left out by
default because the Lambda Python runtime provides it (``--with-boto3`` adds it,
to pin its version). Prints a JSON summary; exits 1 when the unzipped size passes
Lambda's 250 MB limit.
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
ARCHES = {"x86_64": ("x86_64", 62), "arm64": ("aarch64", 183)}  # Lambda name -> (wheel arch, ELF e_machine)
# 1980-01-01, the earliest a ZIP can record: the same inputs give the same bytes.
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
# Not needed at run time; the runtime never writes bytecode into the read-only /var/task.
DROP_DIRS = {"__pycache__"}


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
    for path in sorted(target.rglob("*"), reverse=True):
        if path.is_dir() and path.name in DROP_DIRS:
            shutil.rmtree(path)
    shutil.rmtree(target / "bin", ignore_errors=True)  # console scripts point at this machine's Python


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
    arch: str, out: Path, python: str = "3.12", extras: list[str] | None = None, wheel: Path | None = None
) -> dict[str, object]:
    """Build one ZIP and return its summary (sizes in bytes); ``wheel`` is heicconv's, built if not given."""
    with tempfile.TemporaryDirectory(prefix="heicconv-lambda-") as tmp:
        workdir = Path(tmp)
        wheel = wheel or build_wheel(workdir)
        tree = workdir / "package"
        install(tree, wheel, arch, python, extras or [])
        write_notices(tree)
        libraries = check_arch(tree, arch)
        zip_path = out / f"heicconv-lambda-py{python.replace('.', '')}-{arch}.zip"
        unzipped = write_zip(tree, zip_path)
        top = sorted({p.name for p in tree.iterdir()})
    zipped = zip_path.stat().st_size
    return {
        "arch": arch,
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--arch", action="append", choices=sorted(ARCHES), help="repeat for several (default x86_64)")
    parser.add_argument("--python", default="3.12", help="Lambda runtime's Python version (default 3.12)")
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output folder (default dist/)")
    parser.add_argument("--with-boto3", action="store_true", help="bundle boto3 (the runtime already has one)")
    args = parser.parse_args(argv)
    extras = ["lambda"] if args.with_boto3 else []
    with tempfile.TemporaryDirectory(prefix="heicconv-wheel-") as tmp:
        wheel = build_wheel(Path(tmp))
        summaries = [build(arch, args.out, args.python, extras, wheel) for arch in args.arch or ["x86_64"]]
    print(json.dumps(summaries, indent=2))
    return 0 if all(s["under_250mb_unzipped"] for s in summaries) else 1


if __name__ == "__main__":
    sys.exit(main())
