"""The Dockerfiles, proven without a Docker engine (tests/test_docker_engine.py builds and runs them).

- every ``apt-get install`` package exists in this Debian 12's archive (``apt-cache show``)
  and the list of each stage resolves (``apt-get -s install``);
- every ``pip install`` names extras that pyproject.toml declares;
- base images, non-root user and group, HEALTHCHECK, and the files each COPY needs;
- nothing that only BuildKit understands, and one .dockerignore that the legacy builder reads too;
- the Lambda image's compiler is installed only when pip finds no awslambdaric wheel;
- each service image's ENV + CMD, run here, starts a service that its HEALTHCHECK finds healthy.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from test_server import Server, _free_port, stop_server

from heicconv.backends import registry
from heicconv.testing.plugin import require_backend

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
SERVICE_IMAGES = {"pillow": "pillow", "wand": "wand", "vips": "vips"}  # Dockerfile suffix -> backend
ALL_IMAGES = [*SERVICE_IMAGES, "lambda"]
# Debian 12 from the package index alone (docker/debian_base.py makes one): no other registry.
ALLOWED_BASES = {"debian:12-slim"}
# What each image must install for its backend to read HEIC (Debian 12 names).
NEEDED = {
    "pillow": {"python3"},
    "wand": {"python3", "libmagickwand-6.q16-6", "libmagickcore-6.q16-6-extra", "libheif1", "libde265-0"},
    "vips": {"python3", "libvips42", "libheif1", "libde265-0"},
    "lambda": {
        "python3", "libmagickwand-6.q16-6", "libmagickcore-6.q16-6-extra", "libvips42", "libheif1", "libde265-0",
    },
}  # fmt: skip
COMPILER = {"g++", "gcc", "make", "cmake", "python3-dev", "libcurl4-openssl-dev"}


@dataclass
class Stage:
    base: str
    name: str = ""
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse(path: Path) -> list[Stage]:
    """Dockerfile stages, with continuation lines joined, comments dropped and ``FROM ${ARG}`` resolved."""
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
    global_args: dict[str, str] = {}
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = args.split()
            base = re.sub(r"\$\{?(\w+)\}?", lambda m: global_args.get(m.group(1), m.group(0)), words[0])
            stages.append(Stage(base, words[2] if len(words) > 2 and words[1].upper() == "AS" else ""))
        elif not stages:
            assert keyword == "ARG", f"{path.name}: only ARG may come before the first FROM, not {keyword}"
            name, _, default = args.strip().partition("=")
            global_args[name] = default
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
    """The extras of heicconv that a RUN line installs: ``heicconv-*.whl[a,b]`` or the source tree ``.[a,b]``."""
    found = re.findall(r"(?:heicconv[^\s\"']*?|[\s\"']\.)\[([a-z0-9_,\-]+)\]", run)
    return [extra for group in found for extra in group.split(",")]


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
def test_user_and_group_ids_are_pinned(name: str) -> None:
    final = parse(dockerfile(name))[-1]
    assert final.all("USER")[-1] == "10001:10001"  # files a volume shares need a known owner and group
    runs = " ".join(final.all("RUN"))
    assert "groupadd --system --gid 10001 heicconv" in runs
    assert "useradd --system --uid 10001 --gid 10001" in runs


@pytest.mark.parametrize("name", ALL_IMAGES)
def test_builds_without_buildkit_only_features(name: str) -> None:
    text = dockerfile(name).read_text(encoding="utf-8")
    # A parser directive makes BuildKit fetch a frontend image from a registry: offline builds fail.
    assert not re.search(r"^#\s*(syntax|check)\s*=", text, re.MULTILINE | re.IGNORECASE)
    for stage in parse(dockerfile(name)):
        for keyword, args in stage.instructions:
            for flag in ("--mount", "--link", "--chmod", "--parents", "--exclude", "--checksum", "--network"):
                assert flag not in args.split(), f"{keyword} {flag} needs BuildKit"
            assert "<<" not in args, "heredocs need BuildKit"


def test_one_dockerignore_that_both_builders_read() -> None:
    # The legacy builder reads only .dockerignore at the root of the context; BuildKit would prefer a
    # Dockerfile.NAME.dockerignore, so none may exist for the two builders to send the same context.
    assert not list(DOCKER.glob("*.dockerignore"))
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert next(line for line in lines if line and not line.startswith("#")) == "*"  # everything else is left out


def test_lambda_compiler_only_when_pip_finds_no_wheel() -> None:
    stages = parse(dockerfile("lambda"))
    final_packages = {p for run in stages[-1].all("RUN") for p in apt_packages(run)}
    assert not final_packages & COMPILER
    (build,) = [run for stage in stages[:-1] for run in stage.all("RUN") if "awslambdaric" in run]
    wheel_first, _, fallback = build.partition("then")
    assert "pip install" in wheel_first and "--only-binary=awslambdaric awslambdaric" in wheel_first
    assert wheel_first.strip().startswith("python3 -m venv") and "if !" in wheel_first
    compiler = set(apt_packages(fallback.partition("fi")[0]))
    assert {"g++", "make", "cmake", "python3-dev"} <= compiler  # the headers a C extension build needs
    assert "g++" not in wheel_first


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
    # Installed into a virtual environment in the build stage, which the final stage copies.
    runs = [run for stage in parse(dockerfile(name)) for run in stage.all("RUN") if "pip install" in run]
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
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.startswith("!")
    ]
    for stage in parse(dockerfile(name)):
        for args in stage.all("COPY"):
            if args.startswith("--from"):
                continue
            *sources, _ = args.split()
            for source in sources:
                assert (ROOT / source).exists(), source
                inside = [a for a in allowed if source.rstrip("/") == a or source.startswith(a + "/")]
                assert inside, f"{source} is excluded by the .dockerignore"


def _env_and_cmd(name: str, keep_preload: bool = False) -> tuple[dict[str, str], list[str]]:
    env: dict[str, str] = {}
    final = parse(dockerfile(name))[-1]
    for args in final.all("ENV"):
        for word in shlex.split(args):
            key, _, value = word.partition("=")
            env[key] = value.replace("$PATH", os.environ.get("PATH", ""))
    if not keep_preload:  # a library of the image's, absent here
        env.pop("LD_PRELOAD", None)
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
    run_env["HEICCONV_HEALTHCHECK_PID"] = str(proc.pid)  # in the image it is PID 1; here, this test's service
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


def _healthcheck(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(DOCKER / "healthcheck.py")], env=env, capture_output=True, text=True)


def test_healthcheck_follows_the_port_the_service_listens_on() -> None:
    # `heicconv serve --port N` in an image whose environment says 8000: the check must ask N. It finds the port
    # from the sockets the main process listens on; `sh -c '...; true'` stays the parent, as an init would.
    require_backend("pillow")
    port, wrong = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEICCONV_")}
    env.update(HEICCONV_BACKEND="pillow", HEICCONV_SERVER_HOST="127.0.0.1", HEICCONV_SERVER_PORT=str(wrong))
    command = f"{shlex.quote(sys.executable)} -m heicconv serve --port {port} --workers 1 --pool thread; true"
    proc = subprocess.Popen(["sh", "-c", command], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    server = Server("127.0.0.1", port, proc)
    env["HEICCONV_HEALTHCHECK_PID"] = str(proc.pid)
    try:
        for _ in range(300):
            try:
                if server.request("GET", "/health")[0] == 200:
                    break
            except OSError:
                assert proc.poll() is None, proc.communicate()[0]
                time.sleep(0.1)
        else:
            pytest.fail("the service never answered")
        checked = _healthcheck(env)
        assert checked.returncode == 0, checked.stderr
        # What the check did before: ask HEICCONV_SERVER_PORT, where nothing listens.
        fallback = _healthcheck({**env, "HEICCONV_HEALTHCHECK_PID": "999999999"})
        assert fallback.returncode == 1 and f"127.0.0.1:{wrong}/health" in fallback.stderr
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=30)


def test_healthcheck_reads_listening_sockets_of_both_families() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("healthcheck", DOCKER / "healthcheck.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with socket.socket(socket.AF_INET6) as six, socket.socket() as four:
        six.bind(("::1", 0))
        six.listen()
        four.bind(("127.0.0.1", 0))
        four.listen()
        found = module.listening(os.getpid())
        assert ("::1", six.getsockname()[1]) in found
        assert ("127.0.0.1", four.getsockname()[1]) in found
    # A wildcard address (what the images listen on) is asked on loopback.
    assert module._address("00000000", socket.AF_INET) == "127.0.0.1"
    assert module._address("0100007F", socket.AF_INET) == "127.0.0.1"
    assert module._address("0" * 32, socket.AF_INET6) == "::1"


def test_healthcheck_reports_healthy_within_seconds_of_readiness() -> None:
    # Docker runs the first check one interval after the start: with 30 s, Compose's `service_healthy` waited 30 s.
    for name in SERVICE_IMAGES:
        (check,) = parse(dockerfile(name))[-1].all("HEALTHCHECK")
        flags = dict(re.findall(r"--([a-z-]+)=(\d+)s?", check))
        assert int(flags["interval"]) <= 5 and int(flags["timeout"]) < int(flags["interval"]) + 1, check
        assert int(flags["start-period"]) >= 20, check  # a slow start (vips under load) is not counted as a failure
        assert int(flags["retries"]) >= 3, check


QUIET_NUMA = "/usr/local/lib/heicconv/libheicconv-quiet-numa.so"
# libnuma's policy call, made to fail (a node this machine lacks) where no seccomp profile refuses it.
_NUMA_CALL = """
import ctypes
numa = ctypes.CDLL("libnuma.so.1")
numa.numa_allocate_nodemask.restype = ctypes.c_void_p
numa.numa_bitmask_setbit.argtypes = [ctypes.c_void_p, ctypes.c_uint]
numa.numa_set_interleave_mask.argtypes = [ctypes.c_void_p]
mask = numa.numa_allocate_nodemask()
numa.numa_bitmask_setbit(mask, 63)
numa.numa_set_interleave_mask(mask)
"""


@pytest.mark.parametrize("name", [name for name in ALL_IMAGES if "libheif1" in NEEDED[name]])
def test_images_with_libheif_preload_the_quiet_numa_hooks(name: str) -> None:
    # Debian's libheif writes HEIC through x265, which links libnuma (the cause of the set_mempolicy lines).
    stages = parse(dockerfile(name))
    (hooks,) = [stage for stage in stages if stage.name == "quiet-numa"]
    assert set(apt_packages(" ".join(hooks.all("RUN")))) == {"gcc"}
    final = stages[-1]
    assert f"--from=quiet-numa /src/libheicconv-quiet-numa.so {QUIET_NUMA}" in final.all("COPY")
    env, _ = _env_and_cmd(name, keep_preload=True)
    assert env["LD_PRELOAD"] == QUIET_NUMA
    assert not set(apt_packages(" ".join(final.all("RUN")))) & COMPILER


def test_quiet_numa_hooks_silence_libnuma(tmp_path: Path) -> None:
    if shutil.which("gcc") is None:
        pytest.skip("no gcc to build docker/quiet_numa.c")
    try:
        import ctypes

        ctypes.CDLL("libnuma.so.1")
    except OSError:
        pytest.skip("no libnuma.so.1 here (apt-get install libnuma1)")
    (compile_line,) = [run for run in parse(dockerfile("vips"))[-2].all("RUN") if run.startswith("gcc")]
    library = tmp_path / "libquiet.so"
    words = [str(library) if w.endswith(".so") else str(DOCKER / "quiet_numa.c") if w.endswith(".c") else w
             for w in shlex.split(compile_line)]  # fmt: skip
    subprocess.run(words, check=True)
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    loud = subprocess.run([sys.executable, "-c", _NUMA_CALL], env=env, capture_output=True, text=True, timeout=60)
    assert loud.returncode == 0 and "set_mempolicy: " in loud.stderr, loud.stderr  # libnuma's own perror()
    env["LD_PRELOAD"] = str(library)
    quiet = subprocess.run([sys.executable, "-c", _NUMA_CALL], env=env, capture_output=True, text=True, timeout=60)
    assert (quiet.returncode, quiet.stderr) == (0, "")


def test_package_parsing_and_a_missing_name_is_caught() -> None:
    run = "apt-get update && apt-get install -y --no-install-recommends libvips42 libheif1 && rm -rf /x"
    assert apt_packages(run) == ["libvips42", "libheif1"]
    assert pip_extras('pip install "$(ls /wheels/heicconv-*.whl)[server,wand]" && rm -rf /wheels') == ["server", "wand"]
    assert pip_extras('/opt/heicconv/bin/pip install --no-cache-dir ".[server,vips]"') == ["server", "vips"]
    _debian12()
    shown = subprocess.run(
        ["apt-cache", "show", "--no-all-versions", "libheif1", "libheif-no-such-package"],
        capture_output=True,
        text=True,
    )
    assert set(re.findall(r"^Package: (\S+)$", shown.stdout, re.MULTILINE)) == {"libheif1"}


def _fake_tool(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!{sys.executable}\nimport sys, os\n{body}\n", encoding="utf-8")
    path.chmod(0o755)


def test_debian_base_prints_only_its_json_summary(tmp_path: Path) -> None:
    # debootstrap and `docker import` talk on standard output; a fresh engine (no base image yet) ran both, and
    # their lines came before the summary that tests/test_docker_engine.py parses. These stand-ins talk the same way.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_tool(
        bin_dir,
        "debootstrap",
        "root = sys.argv[-2]\n"
        "for d in ('etc/apt/apt.conf.d', 'etc/dpkg/dpkg.cfg.d', 'usr/share/doc/x'):\n"
        "    os.makedirs(os.path.join(root, d), exist_ok=True)\n"
        "print('I: Retrieving InRelease'); print('I: Base system installed successfully.')",
    )
    _fake_tool(
        bin_dir,
        "docker",
        "if sys.argv[1] == 'import':\n"
        "    sys.stdin.buffer.read(); print('sha256:' + '0' * 64)\n"
        "elif sys.argv[1:3] == ['image', 'inspect']:\n"
        "    print('12345' if '--format' in sys.argv else '[]'); sys.exit(0 if '--format' in sys.argv else 1)",
    )
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    made = subprocess.run(
        [sys.executable, str(DOCKER / "debian_base.py"), "--tag", "t:1", "--if-missing"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    summary = json.loads(made.stdout)  # the whole of standard output is the one JSON document
    assert (summary["tag"], summary["bytes"], summary["made"]) == ("t:1", 12345, True)
    assert "I: Base system installed successfully." in made.stderr and "sha256:" in made.stderr
