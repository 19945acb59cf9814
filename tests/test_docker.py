"""The Dockerfiles, proven without a Docker engine.

- every ``apt-get install`` package exists in this Debian 12's archive (``apt-cache show``)
  and the list of each stage resolves (``apt-get -s install``);
- every ``pip install`` names extras that pyproject.toml declares;
- base images, non-root user, HEALTHCHECK, and the files each COPY needs;
- each service image's ENV + CMD, run here, starts a service that its HEALTHCHECK finds healthy.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from test_server import Server, _free_port, stop_server

from heicconv import registry
from heicconv.testing.plugin import require_backend

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
SERVICE_IMAGES = {"pillow": "pillow", "wand": "wand", "vips": "vips"}  # Dockerfile suffix -> backend
ALL_IMAGES = [*SERVICE_IMAGES, "lambda"]
ALLOWED_BASES = {"debian:12-slim", "python:3.12-slim-bookworm"}
# What each image must install for its backend to read HEIC (Debian 12 names).
NEEDED = {
    "pillow": set(),
    "wand": {"libmagickwand-6.q16-6", "libmagickcore-6.q16-6-extra", "libheif1", "libde265-0"},
    "vips": {"libvips42", "libheif1", "libde265-0"},
    "lambda": {"libmagickwand-6.q16-6", "libmagickcore-6.q16-6-extra", "libvips42", "libheif1", "libde265-0"},
}


@dataclass
class Stage:
    base: str
    name: str = ""
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse(path: Path) -> list[Stage]:
    """Dockerfile stages, with continuation lines joined and comments dropped."""
    logical: list[str] = []
    buffer = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        logical.append(buffer + line)
        buffer = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = args.split()
            stages.append(Stage(words[0], words[2] if len(words) > 2 and words[1].upper() == "AS" else ""))
        else:
            stages[-1].instructions.append((keyword, args.strip()))
    return stages


def apt_packages(run: str) -> list[str]:
    """Package names of every ``apt-get install`` in a RUN line."""
    packages: list[str] = []
    for command in re.split(r"&&|;|\|\|", run):
        words = shlex.split(command)
        if len(words) >= 2 and words[0] in {"apt-get", "apt"} and "install" in words:
            after = words[words.index("install") + 1 :]
            packages += [w for w in after if not w.startswith("-")]
    return packages


def pip_extras(run: str) -> list[str]:
    return [extra for group in re.findall(r"heicconv[^\s\"']*?\[([a-z0-9_,\-]+)\]", run) for extra in group.split(",")]


def dockerfile(name: str) -> Path:
    return DOCKER / f"Dockerfile.{name}"


@pytest.mark.parametrize("name", ALL_IMAGES)
def test_base_images_and_non_root_user(name: str) -> None:
    stages = parse(dockerfile(name))
    names = {s.name for s in stages if s.name}
    for stage in stages:
        assert stage.base in ALLOWED_BASES | names, stage.base
    users = stages[-1].all("USER")
    assert users and users[-1] not in {"root", "0", "0:0"}


@pytest.mark.parametrize("name", ALL_IMAGES)
def test_healthcheck(name: str) -> None:
    (check,) = parse(dockerfile(name))[-1].all("HEALTHCHECK")
    if name == "lambda":
        assert check == "NONE"  # Lambda manages the lifecycle itself
    else:
        assert "healthcheck.py" in check and "--interval" in check


def _debian12() -> None:
    try:
        release = Path("/etc/os-release").read_text(encoding="utf-8")
    except OSError:
        pytest.skip("no /etc/os-release")
    if 'VERSION_ID="12"' not in release or "debian" not in release.lower() or not shutil.which("apt-cache"):
        pytest.skip("the package check needs Debian 12 with apt")


@pytest.mark.parametrize("name", ALL_IMAGES)
def test_apt_packages_exist_on_debian_12(name: str) -> None:
    _debian12()
    stages = parse(dockerfile(name))
    final = [p for run in stages[-1].all("RUN") for p in apt_packages(run)]
    assert NEEDED[name] <= set(final), NEEDED[name] - set(final)
    for stage in stages:
        packages = [p for run in stage.all("RUN") for p in apt_packages(run)]
        if not packages:
            continue
        # One call for the stage (apt-cache reads the whole archive index each time).
        shown = subprocess.run(["apt-cache", "show", "--no-all-versions", *packages], capture_output=True, text=True)
        found = set(re.findall(r"^Package: (\S+)$", shown.stdout, re.MULTILINE))
        assert set(packages) <= found, (set(packages) - found, shown.stderr)
        # The whole list resolves together, as `apt-get install` in the image would.
        simulated = subprocess.run(
            ["apt-get", "-s", "install", "-y", "--no-install-recommends", *packages], capture_output=True, text=True
        )
        assert simulated.returncode == 0, simulated.stderr[-2000:]
        installed = {
            p: subprocess.run(["dpkg", "-s", p], capture_output=True, text=True).returncode == 0 for p in packages
        }
        print(f"\n{name} [{stage.name or 'final'}]: installed here: {installed}")


@pytest.mark.parametrize("name", ALL_IMAGES)
def test_pip_install_names_declared_extras(name: str) -> None:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        declared = set(tomllib.load(fh)["project"]["optional-dependencies"])
    runs = [run for run in parse(dockerfile(name))[-1].all("RUN") if "pip install" in run]
    extras = [e for run in runs for e in pip_extras(run)]
    assert extras, runs
    assert set(extras) <= declared, set(extras) - declared
    if name in SERVICE_IMAGES:
        assert "server" in extras
        assert SERVICE_IMAGES[name] == "pillow" or SERVICE_IMAGES[name] in extras
    else:
        assert {"wand", "vips", "lambda"} <= set(extras)


@pytest.mark.parametrize("name", ALL_IMAGES)
def test_copied_files_exist_and_are_in_the_build_context(name: str) -> None:
    allowed = [
        line[1:].rstrip("/")
        for line in (DOCKER / f"Dockerfile.{name}.dockerignore").read_text(encoding="utf-8").splitlines()
        if line.startswith("!")
    ]
    for stage in parse(dockerfile(name)):
        for args in stage.all("COPY"):
            if args.startswith("--from"):
                continue
            *sources, _ = args.split()
            for source in sources:
                assert (ROOT / source).exists(), source
                assert source.rstrip("/") in allowed, f"{source} is excluded by the .dockerignore"


def _env_and_cmd(name: str) -> tuple[dict[str, str], list[str]]:
    env: dict[str, str] = {}
    final = parse(dockerfile(name))[-1]
    for args in final.all("ENV"):
        for word in shlex.split(args):
            key, _, value = word.partition("=")
            env[key] = value
    (cmd,) = final.all("CMD")
    return env, json.loads(cmd)


@pytest.mark.parametrize("name", SERVICE_IMAGES)
def test_image_env_and_cmd_start_a_service_its_healthcheck_accepts(name: str) -> None:
    env, cmd = _env_and_cmd(name)
    backend = env["HEICCONV_BACKEND"]
    assert backend == SERVICE_IMAGES[name] and backend in registry.known_names()
    require_backend(backend)
    assert cmd[0] == "heicconv" and env["HEICCONV_SERVER_HOST"] == "0.0.0.0"
    port = _free_port()
    # The image's own environment, on loopback and a free port (no public interface here).
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("HEICCONV_")}
    run_env.update(env, HEICCONV_SERVER_HOST="127.0.0.1", HEICCONV_SERVER_PORT=str(port))
    proc = subprocess.Popen(
        [sys.executable, "-m", "heicconv", *cmd[1:]],
        env=run_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Server("127.0.0.1", port, proc)
    check = [sys.executable, str(DOCKER / "healthcheck.py")]
    try:
        for _ in range(300):
            if subprocess.run(check, env=run_env, capture_output=True, timeout=30).returncode == 0:
                break
            assert proc.poll() is None, proc.communicate()[0]
        else:
            pytest.fail("the HEALTHCHECK never passed")
        assert json.loads(server.request("GET", "/health")[2])["backend"] == backend
    finally:
        stop_server(server)
    # Once the service is gone, the same check reports unhealthy.
    assert subprocess.run(check, env=run_env, capture_output=True, timeout=30).returncode == 1


def test_package_parsing_and_a_missing_name_is_caught() -> None:
    run = "apt-get update && apt-get install -y --no-install-recommends libvips42 libheif1 && rm -rf /x"
    assert apt_packages(run) == ["libvips42", "libheif1"]
    assert pip_extras('pip install "$(ls /wheels/heicconv-*.whl)[server,wand]" && rm -rf /wheels') == ["server", "wand"]
    _debian12()
    shown = subprocess.run(
        ["apt-cache", "show", "--no-all-versions", "libheif1", "libheif-no-such-package"],
        capture_output=True,
        text=True,
    )
    assert set(re.findall(r"^Package: (\S+)$", shown.stdout, re.MULTILINE)) == {"libheif1"}
