"""Make a Debian 12 base image from a Debian package mirror alone, for builds without a registry.

The Dockerfiles start ``FROM ${BASE}`` (default ``debian:12-slim``). Where no registry
serves that image (an air-gapped network, or a machine that reaches only package
indexes), this script builds one with ``debootstrap`` and ``docker import``::

    python docker/debian_base.py --tag heicconv-base:bookworm
    docker build --network host --build-arg BASE=heicconv-base:bookworm -f docker/Dockerfile.vips -t heicconv:vips .

Needs root, ``debootstrap`` and a Docker engine. ``--mirror`` and ``--security`` point
at your own Debian mirrors; the image's ``/etc/apt/sources.list`` names the same ones.
Prints a JSON summary (tag, size, seconds) and nothing else on standard output, so that a
caller can parse it; debootstrap's progress and ``docker import``'s image id go to standard error.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_TAG = "heicconv-base:bookworm"
SUITE = "bookworm"


def exists(tag: str) -> bool:
    """True if the Docker engine has an image named ``tag``."""
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


# What makes Debian's own "slim" images slim, so that this base is the same kind of image:
# apt keeps no caches or downloaded packages, and dpkg installs no documentation or translations.
_CLEAN_COMMAND = "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin"
APT_CLEAN = f"""\
DPkg::Post-Invoke {{ "{_CLEAN_COMMAND} || true"; }};
APT::Update::Post-Invoke {{ "{_CLEAN_COMMAND} || true"; }};
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
"""
DPKG_EXCLUDES = """\
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
"""


def slim(root: Path) -> None:
    """Configure apt and dpkg as the slim images do, and remove what they would not have installed."""
    (root / "etc/apt/apt.conf.d/docker-clean").write_text(APT_CLEAN, encoding="utf-8")
    (root / "etc/dpkg/dpkg.cfg.d/docker-slim").write_text(DPKG_EXCLUDES, encoding="utf-8")
    for folder in ("var/lib/apt/lists", "var/cache/apt", "usr/share/man", "usr/share/info", "usr/share/lintian"):
        for path in (root / folder).rglob("*"):
            if path.is_file() or path.is_symlink():
                path.unlink()
    for path in (root / "usr/share/doc").rglob("*"):
        if (path.is_file() or path.is_symlink()) and path.name != "copyright":
            path.unlink()
    for path in (root / "usr/share/locale").rglob("*"):
        if (path.is_file() or path.is_symlink()) and path.name != "locale.alias":
            path.unlink()


def make(tag: str, mirror: str, security: str) -> dict[str, object]:
    """debootstrap a minimal Debian 12 and import it into the engine as ``tag``."""
    if shutil.which("debootstrap") is None:
        raise SystemExit("debootstrap is not installed (apt-get install debootstrap)")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="heicconv-rootfs-") as tmp:
        root = Path(tmp) / "rootfs"
        # The tools' own output goes to standard error: standard output carries the JSON summary alone.
        subprocess.run(["debootstrap", "--variant=minbase", SUITE, str(root), mirror], check=True, stdout=sys.stderr)
        (root / "etc" / "apt" / "sources.list").write_text(
            f"deb {mirror} {SUITE} main\ndeb {mirror} {SUITE}-updates main\ndeb {security} {SUITE}-security main\n",
            encoding="utf-8",
        )
        slim(root)
        tar = subprocess.Popen(["tar", "-C", str(root), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(
            ["docker", "import", "--change", 'CMD ["bash"]', "-", tag], stdin=tar.stdout, stdout=sys.stderr, check=True
        )
        assert tar.stdout is not None
        tar.stdout.close()
        if tar.wait() != 0:
            raise SystemExit("tar failed while importing the root file system")
    size = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Size}}", tag], capture_output=True, text=True, check=True
    ).stdout.strip()
    return {"tag": tag, "bytes": int(size), "seconds": round(time.perf_counter() - start, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--tag", default=DEFAULT_TAG, help=f"image name (default {DEFAULT_TAG})")
    parser.add_argument("--mirror", default="http://deb.debian.org/debian", help="Debian mirror")
    parser.add_argument("--security", default="http://deb.debian.org/debian-security", help="security mirror")
    parser.add_argument("--if-missing", action="store_true", help="do nothing if the image exists")
    args = parser.parse_args(argv)
    if args.if_missing and exists(args.tag):
        print(json.dumps({"tag": args.tag, "made": False}))
        return 0
    print(json.dumps({**make(args.tag, args.mirror, args.security), "made": True}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
