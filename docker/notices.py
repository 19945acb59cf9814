"""Write THIRD_PARTY_NOTICES.md for a Lambda ZIP or an image: what it bundles, under which licence.

For every Python distribution installed in ``SITE`` (a ``site-packages`` folder, or a
``pip install --target`` folder): its name, version and declared licence, the shared libraries its
wheel bundles (auditwheel's ``<package>.libs/`` folders), and the full text of every licence file it
ships. Then the full texts of the GPL and LGPL versions those libraries name (``docker/licences/``),
since pillow-heif's wheels link x265 (GPL-2.0) and libheif and libde265 (LGPL-3.0) but carry only
links to their licences. With ``--dpkg``, the Debian packages installed, each with its copyright
file (``/usr/share/doc/PACKAGE/copyright``, which the images keep). docs/licences.md explains it::

    python docker/notices.py SITE [--dpkg] --out THIRD_PARTY_NOTICES.md
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

LICENCES = Path(__file__).resolve().parent / "licences"


@dataclass(frozen=True)
class Distribution:
    name: str
    version: str
    licence: str
    bundled: list[str]  # shared libraries in its wheel's <package>.libs/ folder
    files: list[Path]  # its licence files


def distributions(site: Path) -> list[Distribution]:
    """Each ``*.dist-info`` in ``site``: name, version, licence, bundled libraries, licence files."""
    found = []
    for info in sorted(site.glob("*.dist-info")):
        meta = HeaderParser().parsestr((info / "METADATA").read_text(encoding="utf-8", errors="replace"))
        licence = meta.get("License-Expression") or next(iter((meta.get("License") or "").strip().splitlines()), "")
        if not licence or len(licence) > 80:  # a whole licence text pasted into License
            classifiers = [c.split(" :: ")[-1] for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
            licence = ", ".join(classifiers) or "see its licence files"
        files = []
        for name in meta.get_all("License-File") or []:
            for where in (info / "licenses" / name, info / name):
                if where.is_file():
                    files.append(where)
                    break
        bundled = []
        record = info / "RECORD"
        if record.is_file():
            rows = record.read_text(encoding="utf-8").splitlines()
            bundled = sorted(
                {r.split(",")[0] for r in rows if r.split("/")[0].endswith(".libs") and ".so" in r.split(",")[0]}
            )
        found.append(Distribution(meta["Name"], meta["Version"], licence, bundled, files))
    return found


def debian_packages() -> list[tuple[str, str]]:
    """``(package, version)`` of every installed Debian package."""
    shown = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package}\t${Version}\n"], capture_output=True, text=True, check=True
    )
    rows = (line.partition("\t") for line in shown.stdout.splitlines())
    return sorted((name, version) for name, tab, version in rows if tab)


def render(site: Path, dpkg: bool) -> str:
    dists = distributions(site)
    out = [
        "# Third-party notices",
        "",
        "heicconv is MIT-licensed (its LICENSE is below, under heicconv). This package also carries the",
        "software listed here, each under its own licence; the full texts follow. See heicconv's",
        "docs/licences.md for what that means for shipping it.",
        "",
        "| distribution | version | licence | bundled shared libraries |",
        "| --- | --- | --- | --- |",
    ]
    for d in dists:
        libs = ", ".join(Path(b).name for b in d.bundled)
        licence = f"{d.licence}; its bundled libraries: their own (below)" if d.bundled else d.licence
        out.append(f"| {d.name} | {d.version} | {licence} | {libs} |")
    for d in dists:
        for path in d.files:
            body = path.read_text(encoding="utf-8", errors="replace").rstrip()
            out += ["", f"## {d.name} {d.version}: {path.name}", "", "```text", body, "```"]
    for text in sorted(LICENCES.glob("*.txt")):
        out += ["", f"## {text.stem} (full text)", "", "```text", text.read_text(encoding="utf-8").rstrip(), "```"]
    if dpkg:
        where = "Each one's copyright and licence: `/usr/share/doc/PACKAGE/copyright`."
        out += ["", "## Debian packages", "", where, ""]
        out += [f"- {name} {version}" for name, version in debian_packages()]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("site", type=Path, help="site-packages or pip --target folder")
    parser.add_argument("--dpkg", action="store_true", help="list the installed Debian packages too")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if not list(args.site.glob("*.dist-info")):
        parser.error(f"{args.site} holds no installed distribution")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(args.site, args.dpkg), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
