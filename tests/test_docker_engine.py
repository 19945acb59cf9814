"""The images in docker/, built and run by a real Docker engine: ``nox -s docker``.

Each image is built twice, with BuildKit and with the legacy builder, one build at a
time, from a Debian 12 base made with debootstrap (``docker/debian_base.py``), with
``--network host`` so that only the package indexes are reached. Each is then run
with ``--network host`` and sent traffic on 127.0.0.1 only:

- a service image, started as ``heicconv serve --port N``, must turn healthy through its
  own HEALTHCHECK (at its own interval), convert a HEIC posted to ``/convert`` with its
  backend, run as 10001:10001, and convert through ``heicconv - -`` in the image; the wand
  and vips images must write HEIC with nothing on stderr under the default seccomp profile;
- the Lambda image is driven by a Runtime API on loopback (the test plays Lambda),
  with each of its backends.

It takes about a quarter of an hour on two cores, so it runs only when asked:
``HEICCONV_DOCKER=1`` (set by the nox session); then a missing engine is a failure,
not a skip. Build times and image sizes are printed, and written as JSON to
``HEICCONV_DOCKER_REPORT`` if it names a file.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from test_server import _free_port

from heicconv.testing.fixtures import make_heic

ROOT = Path(__file__).resolve().parent.parent
DOCKER_DIR = ROOT / "docker"
REQUIRED = os.environ.get("HEICCONV_DOCKER") == "1"  # read at import: conftest clears HEICCONV_* per test
REPORT = os.environ.get("HEICCONV_DOCKER_REPORT")
BASE = os.environ.get("HEICCONV_DOCKER_BASE", "heicconv-base:bookworm")
SERVICES = {"pillow": "pillow", "wand": "wand", "vips": "vips"}  # image -> its backend
BUILDERS = {"buildkit": "1", "legacy": "0"}  # -> DOCKER_BUILDKIT
RESULTS: list[dict[str, Any]] = []
CA_FILE = DOCKER_DIR / "ca-certificates" / "build-host.crt"
pytestmark = pytest.mark.skipif(not REQUIRED, reason="builds every image for minutes: nox -s docker runs it")


def _client_version(cli: str) -> int:
    out = subprocess.run([cli, "version", "--format", "{{.Client.Version}}"], capture_output=True, text=True)
    match = re.match(r"(\d+)\.", out.stdout.strip())
    return int(match.group(1)) if match else 0


def _find_cli() -> str | None:
    """A docker command that can build with BuildKit: one with the buildx plugin, or one older than 23
    (which has BuildKit built in; newer ones need buildx, which Debian 12 does not package)."""
    seen: list[str] = []
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        path = shutil.which("docker", path=folder)
        if path is None or os.path.realpath(path) in seen:
            continue
        seen.append(os.path.realpath(path))
        if subprocess.run([path, "buildx", "version"], capture_output=True).returncode == 0:
            return path
        if 0 < _client_version(path) < 23:
            return path
    return None


@pytest.fixture(scope="module")
def docker() -> str:
    cli = _find_cli()
    if cli is None:
        pytest.fail("no docker command that builds with BuildKit (the buildx plugin, or a client before 23)")
    assert cli is not None
    info = subprocess.run([cli, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
    if info.returncode != 0:
        pytest.fail(
            "no Docker engine answers; start one with: "
            "dockerd --bridge=none --iptables=false --ip6tables=false &  "
            f"({info.stderr.strip()[:200]})"
        )
    return cli


@pytest.fixture(scope="module")
def base(docker: str) -> str:
    if subprocess.run([docker, "image", "inspect", BASE], capture_output=True).returncode != 0:
        made = subprocess.run(
            [sys.executable, str(DOCKER_DIR / "debian_base.py"), "--tag", BASE], capture_output=True, text=True
        )
        assert made.returncode == 0, made.stderr[-3000:]
        RESULTS.append({"image": BASE, **json.loads(made.stdout)})
    return BASE


@pytest.fixture(scope="module")
def build_args() -> Iterator[list[str]]:
    """The host's package index and CA certificates, as a user behind an internal index passes theirs."""
    args: list[str] = []
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST"):
        value = " ".join(v for v in os.environ.get(name, "").split() if not v.startswith("file:"))
        if value:
            args += ["--build-arg", f"{name}={value}"]
    bundle = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
    if bundle and Path(bundle).is_file():
        shutil.copyfile(bundle, CA_FILE)
    try:
        yield args
    finally:
        CA_FILE.unlink(missing_ok=True)


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    if not RESULTS:
        return
    print("\n\nimage builds and smoke tests (docker engine):")
    for r in RESULTS:
        print("  " + json.dumps(r))
    if REPORT:
        Path(REPORT).parent.mkdir(parents=True, exist_ok=True)
        Path(REPORT).write_text(json.dumps(RESULTS, indent=2) + "\n", encoding="utf-8")


def _build(docker: str, name: str, builder: str, base: str, args: list[str]) -> tuple[str, dict[str, Any]]:
    tag = f"heicconv:{name}-{builder}"
    env = {**os.environ, "DOCKER_BUILDKIT": BUILDERS[builder]}
    cmd = [docker, "build", "--network", "host", "--build-arg", f"BASE={base}", *args]
    cmd += ["--progress", "plain"] if builder == "buildkit" else []
    start = time.perf_counter()
    built = subprocess.run(
        [*cmd, "-f", f"docker/Dockerfile.{name}", "-t", tag, "."],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    seconds = time.perf_counter() - start
    log = built.stdout + built.stderr
    assert built.returncode == 0, log[-4000:]
    size = subprocess.run(
        [docker, "image", "inspect", "--format", "{{.Size}}", tag], capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = {
        "image": tag,
        "build_seconds": round(seconds, 1),
        "size_mb": round(int(size.stdout) / 1e6, 1),
    }
    if builder == "legacy":
        # The legacy builder reads only the root .dockerignore: the context must be what COPY needs.
        sent = re.search(r"Sending build context to Docker daemon\s+([\d.]+)([kMG]?B)", log)
        assert sent, log[:2000]
        factor = {"B": 1e-6, "kB": 1e-3, "MB": 1, "GB": 1e3}[sent.group(2)]
        result["context_mb"] = round(float(sent.group(1)) * factor, 2)
        assert result["context_mb"] < 5, result
    # PyPI has awslambdaric wheels for this platform: the compiler must not have been installed.
    assert "Setting up g++" not in log and "Setting up python3-dev" not in log
    return tag, result


def _get(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "image/heic"} if body else {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _health(docker: str, name: str) -> str:
    out = subprocess.run([docker, "inspect", "--format", "{{.State.Health.Status}}", name], capture_output=True)
    return out.stdout.decode().strip()


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("name", SERVICES)
def test_service_image_builds_and_converts(
    docker: str, base: str, build_args: list[str], name: str, builder: str
) -> None:
    tag, result = _build(docker, name, builder, base, build_args)
    RESULTS.append(result)
    result["smoke"] = "failed"
    port = _free_port()
    container = f"heicconv-smoke-{uuid.uuid4().hex[:8]}"
    # The image's own HEALTHCHECK timing, and a port chosen by `serve --port` while the image's environment
    # says 8000: the check must follow the port the service listens on.
    run = [docker, "run", "-d", "--name", container, "--network", "host", "-e", "HEICCONV_SERVER_HOST=127.0.0.1"]
    run += [tag, "heicconv", "serve", "--port", str(port)]
    subprocess.run(run, check=True, capture_output=True)
    try:
        interval = subprocess.run(
            [docker, "inspect", "--format", "{{json .Config.Healthcheck.Interval}}", container],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        assert int(interval) <= 5e9, interval  # nanoseconds: the first check comes one interval after the start
        start = time.perf_counter()
        while (health := _health(docker, container)) != "healthy":  # read once: it may turn healthy meanwhile
            assert health in {"starting", ""}, health
            assert time.perf_counter() - start < 120, "the HEALTHCHECK never passed"
            time.sleep(0.25)
        result["healthy_after_s"] = round(time.perf_counter() - start, 1)
        status, headers, body = _get(port, "POST", "/convert?format=png", make_heic(size=(96, 64)))
        assert status == 200, body[:500]
        assert headers["x-heicconv-backend"] == SERVICES[name]
        with Image.open(io.BytesIO(body)) as img:
            assert (img.format, img.size) == ("PNG", (96, 64))
        ids = subprocess.run([docker, "exec", container, "sh", "-c", "id -u; id -g"], capture_output=True, text=True)
        assert ids.stdout.split() == ["10001", "10001"], ids
    finally:
        logs = subprocess.run([docker, "logs", container], capture_output=True, text=True)
        subprocess.run([docker, "rm", "-f", container], capture_output=True)
    assert "Traceback" not in logs.stdout + logs.stderr
    # The command line in the image, as a filter: standard input to standard output.
    piped = subprocess.run(
        [docker, "run", "--rm", "-i", "--network", "host", tag, "heicconv", "-", "-", "--to", "webp"],
        input=make_heic(size=(40, 30)),
        capture_output=True,
        timeout=120,
    )
    assert piped.returncode == 0, piped.stderr[-2000:]
    with Image.open(io.BytesIO(piped.stdout)) as img:
        assert (img.format, img.size) == ("WEBP", (40, 30))
    assert not _noise(piped.stderr), piped.stderr[-2000:]
    if name in {"wand", "vips"}:
        _check_quiet_numa(docker, tag, result)
    result["smoke"] = "passed"


def _noise(stderr: bytes) -> list[str]:
    """Lines on stderr that log alerting would see: libnuma's refused memory policies, above all."""
    return [line for line in stderr.decode("utf-8", "replace").splitlines() if "set_mempolicy" in line]


def _check_quiet_numa(docker: str, tag: str, result: dict[str, Any]) -> None:
    """Under Docker's default seccomp profile, HEIC output (x265's threads) logs nothing; without the image's
    preloaded hooks it logs libnuma's `set_mempolicy: Operation not permitted`, so the check can see it."""
    heic = make_heic(size=(40, 30))
    convert = ["heicconv", "-", "-", "--to", "heic"]
    quiet = subprocess.run([docker, "run", "--rm", "-i", "--network", "none", tag, *convert], input=heic,
                           capture_output=True, timeout=120)  # fmt: skip
    assert quiet.returncode == 0 and quiet.stdout[4:12] == b"ftypheic", quiet.stderr[-2000:]
    assert not _noise(quiet.stderr), quiet.stderr[-2000:]
    loud = subprocess.run([docker, "run", "--rm", "-i", "--network", "none", "-e", "LD_PRELOAD=", tag, *convert],
                          input=heic, capture_output=True, timeout=120)  # fmt: skip
    assert loud.returncode == 0, loud.stderr[-2000:]
    result["set_mempolicy_lines_without_hooks"] = len(_noise(loud.stderr))
    assert _noise(loud.stderr), "libnuma said nothing even without the hooks: is seccomp off on this engine?"


def _quiet_runtime_api() -> Any:
    from test_lambda_runtime import RuntimeAPI

    class QuietRuntimeAPI(RuntimeAPI):
        def handle_error(self, request: Any, client_address: Any) -> None:
            # The client's next long poll outlives the container we remove: its broken pipe is expected.
            pass

    return QuietRuntimeAPI()


@pytest.mark.parametrize("builder", BUILDERS)
def test_lambda_image_builds_and_answers_the_runtime_api(
    docker: str, base: str, build_args: list[str], builder: str
) -> None:
    tag, result = _build(docker, "lambda", builder, base, build_args)
    RESULTS.append(result)
    result["smoke"] = "failed"
    heic = make_heic(size=(30, 20))
    for backend in ("vips", "wand", "pillow"):
        api = _quiet_runtime_api()
        thread = threading.Thread(target=api.serve_forever, daemon=True)
        thread.start()
        # An API Gateway REST (payload 1.0) request; tests/test_lambda_runtime.py sends the 2.0 shape.
        event = {
            "httpMethod": "POST",
            "path": "/convert",
            "headers": {"Content-Type": "image/heic", "Accept": "image/png"},
            "queryStringParameters": {"format": "png"},
            "body": base64.b64encode(heic).decode(),
            "isBase64Encoded": True,
        }
        api.events.put(("req-1", event))
        container = f"heicconv-lambda-{uuid.uuid4().hex[:8]}"
        port = api.server_address[1]
        run = [docker, "run", "-d", "--name", container, "--network", "host"]
        run += ["-e", f"AWS_LAMBDA_RUNTIME_API=127.0.0.1:{port}", "-e", f"HEICCONV_BACKEND={backend}", tag]
        subprocess.run(run, check=True, capture_output=True)
        try:
            api.wait_for(["req-1"], timeout=120)
        finally:
            logs = subprocess.run([docker, "logs", container], capture_output=True, text=True)
            subprocess.run([docker, "rm", "-f", container], capture_output=True)
            api.shutdown()
            api.server_close()
        assert api.init_error is None, (api.init_error, logs.stdout + logs.stderr)
        assert "set_mempolicy" not in logs.stdout + logs.stderr, logs.stderr[-2000:]
        kind, answer = api.answers["req-1"]
        assert kind == "response" and answer["statusCode"] == 200, answer
        assert answer["headers"]["X-Heicconv-Backend"] == backend
        with Image.open(io.BytesIO(base64.b64decode(answer["body"]))) as img:
            assert (img.format, img.size) == ("PNG", (30, 20))
    result["smoke"] = "passed (vips, wand, pillow)"


def _compose_cli(docker: str) -> list[str]:
    """Compose v2 (`docker compose`), else Debian 12's docker-compose 1.29: both read deploy/compose.yaml."""
    if subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy is None:
        pytest.fail("no Compose: apt-get install docker-compose (or the compose plugin)")
    assert legacy is not None
    return [legacy]


def _notifies_a_queue(s3: Any, bucket: str) -> bool:
    if bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        return False
    return bool(s3.get_bucket_notification_configuration(Bucket=bucket).get("QueueConfigurations"))


def test_compose_converts_an_upload_end_to_end(docker: str, base: str, build_args: list[str]) -> None:
    """deploy/compose.yaml as docs/deploy.md runs it: moto for S3 and SQS (set up by deploying the template with
    Route=container), the worker converting an upload, and the service answering."""
    import boto3

    tag = "heicconv:pillow-buildkit"  # built by the pillow test above; built here when this test runs alone
    if subprocess.run([docker, "image", "inspect", tag], capture_output=True).returncode != 0:
        tag, result = _build(docker, "pillow", "buildkit", base, build_args)
        RESULTS.append(result)
    aws_port, port = _free_port(), _free_port()
    project = f"heicconvcompose{uuid.uuid4().hex[:8]}"
    compose = [*_compose_cli(docker), "-f", "deploy/compose.yaml", "-p", project]
    env = {**os.environ, "HEICCONV_IMAGE": tag, "HEICCONV_AWS_PORT": str(aws_port), "HEICCONV_PORT": str(port)}
    env["BASE"] = base
    for arg in build_args[1::2]:  # the host's package index, as the images get it
        name, _, value = arg.partition("=")
        env[name] = value
    result: dict[str, Any] = {"image": "deploy/compose.yaml", "smoke": "failed"}
    RESULTS.append(result)
    start = time.perf_counter()
    up = subprocess.run([*compose, "up", "-d", "--build"], cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=1800)  # fmt: skip
    try:
        assert up.returncode == 0, (up.stdout + up.stderr)[-4000:]
        result["up_seconds"] = round(time.perf_counter() - start, 1)
        (service,) = subprocess.run([*compose, "ps", "-q", "service"], cwd=ROOT, env=env, capture_output=True,
                                    text=True, check=True).stdout.split()  # fmt: skip
        while (health := _health(docker, service)) != "healthy":
            assert health in {"starting", ""}, health
            assert time.perf_counter() - start < 300, "the service never turned healthy"
            time.sleep(0.5)
        s3 = boto3.client(
            "s3", endpoint_url=f"http://127.0.0.1:{aws_port}", region_name="us-east-1",
            aws_access_key_id="local", aws_secret_access_key="local",
        )  # fmt: skip
        while not _notifies_a_queue(s3, "photos"):  # the setup container deploys the template into moto
            assert time.perf_counter() - start < 300, "setup never configured the bucket"
            time.sleep(0.5)
        uploaded = time.perf_counter()
        s3.put_object(Bucket="photos", Key="uploads/IMG 0001.HEIC", Body=make_heic(size=(96, 64)))
        while True:
            try:
                got = s3.get_object(Bucket="photos", Key="converted/uploads/IMG 0001.jpg")
                break
            except s3.exceptions.NoSuchKey:
                assert time.perf_counter() - uploaded < 120, "the worker never wrote the converted photo"
                time.sleep(0.5)
        result["converted_after_upload_s"] = round(time.perf_counter() - uploaded, 1)
        assert got["ContentType"] == "image/jpeg"
        with Image.open(io.BytesIO(got["Body"].read())) as img:
            assert (img.format, img.size) == ("JPEG", (96, 64))
        status, headers, body = _get(port, "POST", "/convert?format=png", make_heic(size=(40, 30)))
        assert status == 200 and headers["x-heicconv-backend"] == "pillow", body[:500]
    finally:
        logs = subprocess.run([*compose, "logs", "--no-color"], cwd=ROOT, env=env, capture_output=True, text=True)
        subprocess.run([*compose, "down", "-v", "--remove-orphans"], cwd=ROOT, env=env, capture_output=True)
        if sys.exc_info()[0] is not None:  # what the containers said, beside the failure
            print(logs.stdout[-6000:])
    assert "Traceback" not in logs.stdout, logs.stdout[-4000:]
    assert "set_mempolicy" not in logs.stdout
    result["smoke"] = "passed (upload converted by the worker, service answered)"
