"""Releasing heicconv as docs/releasing.md says: build, check, upload to a team's own index, install, convert.

The round trip is real: a pypiserver on 127.0.0.1 (a free port), ``twine upload`` to it, a fresh
virtual environment that installs ``heicconv[wand,vips,server,lambda]`` from it, and a photo
converted by the ``heicconv`` command of that environment. Third-party dependencies come from the
index pip normally uses (an extra index); heicconv itself must come from the local one, which pip's
installation report proves. Takes about a minute, most of it pip.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from email.parser import HeaderParser
from pathlib import Path

import pytest

import heicconv

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib
from heicconv.testing.plugin import required_backends

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "sample.heic"
EXTRAS = "wand,vips,server,lambda"


def _run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``; on failure the assertion shows its output."""
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sdist and the wheel, built as ``nox -s build`` builds them (the wheel from the sdist)."""
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)])
    (sdist,) = out.glob("heicconv-*.tar.gz")
    (wheel,) = out.glob("heicconv-*.whl")
    return {"sdist": sdist, "wheel": wheel}


def _metadata(wheel: Path) -> tuple[dict[str, list[str]], list[str]]:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        (meta,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        message = HeaderParser().parsestr(zf.read(meta).decode("utf-8"))
    fields: dict[str, list[str]] = {}
    for key, value in message.items():
        fields.setdefault(key, []).append(value)
    return fields, names


def test_one_version_and_the_licence_in_the_metadata(dists: dict[str, Path]) -> None:
    fields, names = _metadata(dists["wheel"])
    assert fields["Version"] == [heicconv.__version__]
    assert dists["sdist"].name == f"heicconv-{heicconv.__version__}.tar.gz"
    assert fields["License-Expression"] == ["MIT"]  # PEP 639, not the deprecated table
    assert "License" not in fields
    assert fields["License-File"] == ["LICENSE"]
    licence = f"heicconv-{heicconv.__version__}.dist-info/licenses/LICENSE"
    assert licence in names
    extras = set(fields["Provides-Extra"])
    assert {"testing", "wand", "vips", "server", "lambda"} <= extras
    testing = [r for r in fields["Requires-Dist"] if 'extra == "testing"' in r]
    assert {re.split(r"[<>=;\s]", r)[0] for r in testing} == {"pytest", "numpy"}
    assert any(u.startswith("Documentation, ") for u in fields["Project-URL"])
    with (ROOT / "pyproject.toml").open("rb") as fh:
        project = tomllib.load(fh)["project"]
    assert "version" not in project and "version" in project["dynamic"], "the version lives in heicconv/__init__.py"


def test_command_line_version() -> None:
    done = _run([sys.executable, "-m", "heicconv", "--version"])
    assert done.stdout.strip() == f"heicconv {heicconv.__version__}"


def test_unpacked_sdist_passes_its_own_tests(dists: dict[str, Path], tmp_path: Path) -> None:
    with tarfile.open(dists["sdist"]) as tf:
        tf.extractall(tmp_path, filter="data")
    (tree,) = tmp_path.iterdir()
    carried = ("LICENSE", "CHANGELOG.md", "noxfile.py", "tests/conftest.py", "examples/sample.heic", "docs/conf.py")
    for needed in carried:
        assert (tree / needed).is_file(), needed
    assert not list(tree.rglob("__pycache__")) and not (tree / "docs" / "_build").exists()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(tree)}
    # The unpacked heicconv, not this checkout's, is the one imported.
    where = _run([sys.executable, "-c", "import heicconv; print(heicconv.__file__)"], cwd=tree, env=env)
    assert Path(where.stdout.strip()).resolve().is_relative_to(tree.resolve())
    # The docs' tests, the Markdown doctests, the package's own doctest and the CLI on the sample photo.
    done = _run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_docs.py", "docs",
         "heicconv/__init__.py", "tests/test_cli.py", "-k", "test_docs or md or __init__ or short_form"],
        cwd=tree, env=env,
    )  # fmt: skip
    passed = re.search(r"(\d+) passed", done.stdout)
    assert passed and int(passed.group(1)) >= 5, done.stdout[-2000:]
    assert " failed" not in done.stdout and " error" not in done.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _index_server(packages: Path) -> Iterator[str]:
    """A pypiserver on 127.0.0.1 serving ``packages``, uploads open (it is local); yields its URL."""
    port = _free_port()
    log = (packages.parent / "pypiserver.log").open("w")
    cmd = [sys.executable, "-m", "pypiserver", "run", "-i", "127.0.0.1", "-p", str(port), "-a", ".", "-P", "."]
    server = subprocess.Popen([*cmd, "--disable-fallback", str(packages)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url + "/simple/", timeout=2):
                    break
            except OSError:
                assert server.poll() is None, (packages.parent / "pypiserver.log").read_text()
                assert time.monotonic() < deadline, "pypiserver did not answer within 30 s"
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


def _normal_index() -> str:
    """The index pip uses here (PIP_INDEX_URL, pip's configuration, or PyPI): the fresh venv's third-party source."""
    if os.environ.get("PIP_INDEX_URL"):
        return os.environ["PIP_INDEX_URL"]
    shown = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True)
    for line in shown.stdout.splitlines():
        key, _, value = line.partition("=")
        if key.endswith(".index-url"):
            return value.strip("'\"")
    return "https://pypi.org/simple"


def test_release_to_a_local_index_and_install_from_it(dists: dict[str, Path], tmp_path: Path) -> None:
    packages = tmp_path / "packages"
    packages.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWINE_", "PIP_INDEX", "PIP_EXTRA", "PYTHON"))}
    with _index_server(packages) as url:
        _run(
            [sys.executable, "-m", "twine", "upload", "--non-interactive", "--disable-progress-bar",
             "--repository-url", url + "/", "-u", "release", "-p", "unused", str(dists["sdist"]), str(dists["wheel"])],
            env=env,
        )  # fmt: skip
        assert sorted(p.name for p in packages.iterdir()) == sorted([dists["sdist"].name, dists["wheel"].name])
        with urllib.request.urlopen(url + "/simple/heicconv/", timeout=10) as page:
            assert dists["wheel"].name in page.read().decode()

        venv = tmp_path / "venv"
        _run([sys.executable, "-m", "venv", str(venv)])
        python = venv / "bin" / "python"
        report = tmp_path / "install-report.json"
        requirement = f"heicconv[{EXTRAS}]=={heicconv.__version__}"
        _run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--report", str(report),
             "--index-url", url + "/simple/", "--extra-index-url", _normal_index(), requirement],
            env=env, cwd=tmp_path,
        )  # fmt: skip

    installed = {item["metadata"]["name"].lower(): item for item in json.loads(report.read_text())["install"]}
    origin = installed["heicconv"]["download_info"]["url"]
    assert origin.startswith(url + "/"), f"heicconv came from {origin}, not the local index"
    assert origin.endswith(dists["wheel"].name)  # the wheel, not a build of the sdist
    for extra_dependency in ("wand", "pyvips", "uvicorn", "starlette", "boto3"):
        assert extra_dependency in installed, extra_dependency

    command = venv / "bin" / "heicconv"
    assert _run([str(command), "--version"], env=env, cwd=tmp_path).stdout.strip() == f"heicconv {heicconv.__version__}"
    # pillow (the default) always; the other backends wherever CI says their system libraries are installed.
    for backend in ["pillow", *sorted(required_backends() & {"wand", "vips"})]:
        out = tmp_path / f"sample-{backend}.jpg"
        _run([str(command), str(SAMPLE), str(out), "--backend", backend, "-q"], env=env, cwd=tmp_path)
        info = heicconv.probe(out.read_bytes())
        assert (info.format, info.width, info.height) == ("jpeg", *_sample_size()), backend


def _sample_size() -> tuple[int, int]:
    info = heicconv.probe(SAMPLE.read_bytes())
    return info.width, info.height
