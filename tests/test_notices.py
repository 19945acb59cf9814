"""docker/notices.py: the third-party notices the Lambda ZIP and the images carry (docs/licences.md)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "docker" / "notices.py"


@pytest.fixture(scope="module")
def notices() -> ModuleType:
    spec = importlib.util.spec_from_file_location("heicconv_notices", SCRIPT)
    assert spec and spec.loader
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _dist(site: Path, name: str, record: list[str], **meta: str) -> None:
    info = site / f"{name}-1.0.dist-info"
    (info / "licenses").mkdir(parents=True)
    headers = {"Metadata-Version": "2.4", "Name": name, "Version": "1.0", **meta}
    (info / "METADATA").write_text("".join(f"{k}: {v}\n" for k, v in headers.items()) + "License-File: COPYING\n")
    (info / "licenses" / "COPYING").write_text(f"the {name} licence text\n")
    (info / "RECORD").write_text("".join(f"{row},,\n" for row in record))


def test_each_distribution_its_licence_files_and_bundled_libraries(notices: ModuleType, tmp_path: Path) -> None:
    _dist(tmp_path, "plain", ["plain/__init__.py"], **{"License-Expression": "MIT"})
    _dist(
        tmp_path,
        "binary",
        ["binary/__init__.py", "binary.libs/libfoo-1a2b.so.1", "binary.libs/libbar-3c4d.so.2.0"],
        Classifier="License :: OSI Approved :: BSD License",
    )
    text = notices.render(tmp_path, dpkg=False)
    assert "| plain | 1.0 | MIT |  |" in text
    licence = "BSD License; its bundled libraries: their own (below)"
    assert f"| binary | 1.0 | {licence} | libbar-3c4d.so.2.0, libfoo-1a2b.so.1 |" in text
    assert "the plain licence text" in text and "the binary licence text" in text
    for full in ("GNU GENERAL PUBLIC LICENSE\n                       Version 2", "GNU LESSER GENERAL PUBLIC LICENSE"):
        assert full in text


def test_this_environment_names_pillow_heif_and_its_encoder(notices: ModuleType, tmp_path: Path) -> None:
    site = Path(sysconfig.get_paths()["purelib"])
    if not list(site.glob("pillow_heif-*.dist-info")):  # an editable or system install elsewhere
        site = Path(next(p for p in sys.path if list(Path(p).glob("pillow_heif-*.dist-info"))))
    out = tmp_path / "NOTICES.md"
    subprocess.run([sys.executable, str(SCRIPT), str(site), "--dpkg", "--out", str(out)], check=True)
    text = out.read_text(encoding="utf-8")
    (row,) = [line for line in text.splitlines() if line.lower().startswith(("| pillow_heif ", "| pillow-heif "))]
    assert "libheif" in row and "libde265" in row and "libx265" in row
    assert "x265" in text and "GPLv2" in text  # pillow-heif's own statement about its binary wheels
    assert "## Debian packages" in text and "- libc6 " in text


def test_refuses_a_folder_without_distributions(tmp_path: Path) -> None:
    cmd = [sys.executable, str(SCRIPT), str(tmp_path), "--out", str(tmp_path / "N.md")]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 2 and "holds no installed distribution" in done.stderr
    assert not (tmp_path / "N.md").exists()
