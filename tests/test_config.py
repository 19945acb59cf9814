"""Selection and configuration: one precedence, clear errors naming the key and its source."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import heicconv
from heicconv.config import settings
from heicconv.testing.plugin import require_module


def test_defaults_are_auto_and_ffmpeg_then_pillow_first() -> None:
    s = settings()
    assert s.backend == "auto"
    assert s.order[:2] == ("ffmpeg", "pillow")
    first = "ffmpeg" if heicconv.backends.registry.status("ffmpeg").available else "pillow"
    assert heicconv.select().name == first
    assert heicconv.selected_backend() == (first, "default (auto)")


def test_precedence_argument_over_configure_over_env_over_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "heicconv.toml").write_text('backend = "vips"\n[options]\nquality = 50\n')
    monkeypatch.chdir(tmp_path)
    assert settings().backend == "vips"
    assert settings().sources["backend"].endswith("heicconv.toml")
    assert settings().options.quality == 50
    monkeypatch.setenv("HEICCONV_BACKEND", "wand")
    monkeypatch.setenv("HEICCONV_QUALITY", "60")
    assert settings().backend == "wand"
    assert settings().options.quality == 60
    assert settings().sources["backend"] == "the environment (HEICCONV_BACKEND)"
    heicconv.configure(backend="pillow", options=heicconv.Options(quality=70))
    assert settings().backend == "pillow"
    assert settings().options.quality == 70
    assert heicconv.select("pillow").name == "pillow"  # the argument wins over all


def test_pyproject_table_and_named_profiles(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.heicconv]\n"
        'backends = ["vips", "pillow"]\n'
        "[tool.heicconv.options]\nquality = 80\n"
        '[tool.heicconv.profiles.lambda]\nbackend = "pillow"\n'
        '[tool.heicconv.profiles.lambda.options]\nmax_size = "1024x1024"\n'
        '[tool.heicconv.profiles.container]\nbackend = "wand"\n'
    )
    monkeypatch.chdir(tmp_path)
    assert settings().order == ("vips", "pillow")
    monkeypatch.setenv("HEICCONV_PROFILE", "lambda")
    s = settings()
    assert (s.backend, s.options.quality, s.options.max_size) == ("pillow", 80, (1024, 1024))
    monkeypatch.setenv("HEICCONV_PROFILE", "container")
    assert settings().backend == "wand"
    monkeypatch.setenv("HEICCONV_PROFILE", "nope")
    with pytest.raises(heicconv.ConfigError, match=r"profile: no profile 'nope'.*defined: container, lambda"):
        settings()


def test_heicconv_config_names_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "elsewhere.toml"
    path.write_text("[limits]\nmax_pixels = 1000\n")
    monkeypatch.setenv("HEICCONV_CONFIG", str(path))
    assert settings().limits.max_pixels == 1000
    from heicconv.testing.fixtures import make_heic

    with pytest.raises(heicconv.LimitExceededError, match="max_pixels"):
        heicconv.convert(make_heic((64, 48)), "jpeg")
    monkeypatch.setenv("HEICCONV_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(heicconv.ConfigError, match="HEICCONV_CONFIG: no such file"):
        settings()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('backend = "imagemagick"\n', r"backend: unknown backend 'imagemagick' \(in .*heicconv.toml\)"),
        ("qualty = 3\n", r"qualty: unknown key \(in .*heicconv.toml\)"),
        (
            "[options]\nquality = 300\n",
            r"quality: must be an integer from 1 to 100, got 300 \(in .*heicconv.toml \[options\]\)",
        ),
        ("[options]\ncolour = 'p3'\n", r"colour: must be one of keep, srgb"),
        ('backends = ["pillow", "magick"]\n', r"backends: unknown backend 'magick'"),
        ("[limits]\nmax_pixels = -1\n", r"max_pixels: must be a positive integer"),
        ("this is not toml", r"cannot read config file"),
    ],
)
def test_bad_config_file_names_key_and_source(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "heicconv.toml").write_text(text)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(heicconv.ConfigError, match=message):
        heicconv.convert(b"", "jpeg")


def test_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEICCONV_QUALITY", "high")
    with pytest.raises(heicconv.ConfigError, match=r"quality: .*'high' \(in the environment \(HEICCONV_QUALITY\)\)"):
        settings()


def test_configure_validates_before_keeping_anything() -> None:
    with pytest.raises(heicconv.ConfigError, match="unknown backend 'nope'"):
        heicconv.configure(backend="nope")
    assert settings().backend == "auto"
    with pytest.raises(heicconv.ConfigError, match="quality"):
        heicconv.configure(options={"quality": 0})
    assert settings().options == heicconv.Options()


def test_named_backend_must_work_or_raise_while_auto_falls_back() -> None:
    built = []

    class Broken:
        def __init__(self) -> None:
            built.append(1)
            raise heicconv.BackendUnavailableError("broken on purpose; install nothing")

    heicconv.register_backend("broken", Broken)
    try:
        with pytest.raises(heicconv.BackendUnavailableError, match="broken on purpose"):
            heicconv.convert(b"", "jpeg", backend="broken")
        heicconv.configure(backends=["broken", "pillow"])
        assert heicconv.select().name == "pillow"
        assert heicconv.select().name == "pillow"
        status = {s.name: s for s in heicconv.list_backends()}
        assert not status["broken"].available and "broken on purpose" in status["broken"].reason
        assert len(built) == 1  # the reason is remembered: auto does not probe it again on every call
    finally:
        heicconv.unregister_backend("broken")


def test_register_backend_refuses_a_known_name_unless_replacing() -> None:
    from heicconv.backends import registry

    with pytest.raises(heicconv.ConfigError, match="exists; pass replace=True"):
        heicconv.register_backend("pillow", "somewhere:Else")
    with pytest.raises(heicconv.ConfigError, match="module:Class"):
        heicconv.register_backend("mine", "no_colon_here")
    with pytest.raises(heicconv.ConfigError, match="auto"):
        heicconv.register_backend("auto", "a:B")
    pillow = registry.get("pillow")

    class Renamed(type(pillow)):  # type: ignore[misc]
        name = "pillow"

    heicconv.register_backend("pillow", Renamed, replace=True)
    try:
        assert type(heicconv.select("pillow")) is Renamed
    finally:
        heicconv.unregister_backend("pillow")
    assert type(heicconv.select("pillow")) is type(pillow)  # the built-in one is back
    with pytest.raises(heicconv.ConfigError, match="was not registered"):
        heicconv.unregister_backend("pillow")


def test_a_backend_that_does_not_meet_the_contract_is_unavailable_with_what_it_lacks() -> None:
    class Half:
        name = "half"
        capabilities = heicconv.Capabilities(frozenset({"heic"}), frozenset({"jpeg"}))

        def versions(self) -> dict[str, str]:
            return {}

    class NoPrimitives(heicconv.PipelineBackend[object]):
        name = "noprims"
        capabilities = heicconv.Capabilities(frozenset({"heic"}), frozenset({"jpeg"}))

    heicconv.register_backend("half", Half)
    heicconv.register_backend("noprims", NoPrimitives)
    try:
        with pytest.raises(heicconv.BackendUnavailableError, match=r"contract.*a `run\(\)` method"):
            heicconv.select("half")
        with pytest.raises(
            heicconv.BackendUnavailableError, match=r"the `load\(\)` primitive.*the `save\(\)` primitive"
        ):
            heicconv.select("noprims")
    finally:
        heicconv.unregister_backend("half")
        heicconv.unregister_backend("noprims")


def test_a_slow_backend_probe_does_not_hold_up_another_backend() -> None:
    import threading

    release, started = threading.Event(), threading.Event()

    class Slow:
        def __init__(self) -> None:
            started.set()
            release.wait(10)
            raise heicconv.BackendUnavailableError("slow and then missing")

    class Quick(heicconv.PipelineBackend[object]):
        name = "quick"
        capabilities = heicconv.Capabilities(frozenset({"heic"}), frozenset({"jpeg"}))
        load = size_of = resize = flatten = save = lambda *a: None  # type: ignore[assignment]

    heicconv.register_backend("slow", Slow)
    heicconv.register_backend("quick", Quick)

    def select_slow() -> None:
        with pytest.raises(heicconv.BackendUnavailableError, match="slow and then missing"):
            heicconv.select("slow")

    probe = threading.Thread(target=select_slow)
    try:
        probe.start()
        assert started.wait(10)
        assert heicconv.select("quick").name == "quick"  # built while "slow" is still being probed
        assert probe.is_alive()
    finally:
        release.set()
        probe.join(10)
        heicconv.unregister_backend("slow")
        heicconv.unregister_backend("quick")


def test_unavailable_backend_message_names_extra_and_system_package(monkeypatch: pytest.MonkeyPatch) -> None:
    from heicconv.backends import registry

    monkeypatch.setattr(registry, "_instances", {})
    monkeypatch.setattr(registry, "_unavailable", {})
    monkeypatch.setitem(sys.modules, "pyvips", None)  # as if pyvips were not installed
    with pytest.raises(heicconv.BackendUnavailableError) as info:
        registry.get("vips")
    text = str(info.value)
    assert "pip install 'heicconv[vips]'" in text
    assert "libvips42" in text and "libde265" in text


def test_list_backends_reports_versions_and_capabilities() -> None:
    statuses = {s.name: s for s in heicconv.list_backends()}
    assert set(statuses) >= {"pillow", "wand", "vips"}
    pillow = statuses["pillow"]
    assert pillow.available and pillow.capabilities is not None
    assert "jpeg" in pillow.capabilities.outputs and "heic" in pillow.capabilities.inputs
    assert pillow.versions["libheif"] and pillow.versions["pillow-heif"]
    assert pillow.to_dict()["name"] == "pillow"


def test_import_loads_no_backend_library() -> None:
    code = (
        "import sys, heicconv; heicconv.list_backends.__doc__; "
        "bad = [m for m in ('wand', 'pyvips', 'PIL', 'pillow_heif', 'numpy') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_entry_point_backends_are_registered_as_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    from heicconv.backends import registry

    ep = metadata.EntryPoint("mine", "some_package.module:MyBackend", registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [ep] if group == registry.ENTRY_POINT_GROUP else [])
    monkeypatch.setattr(registry, "_entry_points", None)
    assert registry.registry()["mine"].target == "some_package.module:MyBackend"
    assert "some_package" not in sys.modules
    with pytest.raises(heicconv.BackendUnavailableError, match="cannot be imported"):
        registry.get("mine")


# One precedence per key: a call, configure() and the adapters set only the fields they name.

SECRETS = (b"Fixture Camera", b"heicconv fixture", b"GPS")  # EXIF make, XMP text, GPS IFD of the fixture


def _photo(size: tuple[int, int] = (400, 300)) -> bytes:
    from heicconv.testing import fixtures

    return fixtures.make_heic(size, exif=fixtures.exif_block(gps=True), xmp=fixtures.XMP_PACKET)


def _quantization(jpeg: bytes) -> dict[int, list[int]]:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(jpeg)) as img:
        return {k: list(v) for k, v in img.quantization.items()}  # type: ignore[attr-defined]


def _child_env(**extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("HEICCONV_")}
    env.update(extra)
    return env


def test_options_that_set_one_field_keep_the_operators_privacy_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEICCONV_METADATA", "strip")
    monkeypatch.setenv("HEICCONV_MAX_SIZE", "100")
    result = heicconv.convert_with_report(_photo(), "jpeg", heicconv.Options(quality=70))
    assert (result.width, result.height) == (100, 75)
    for secret in SECRETS:
        assert secret not in result.data, secret
    assert result.sources["options.quality"] == "the call's options"
    assert result.sources["options.metadata"] == "the environment (HEICCONV_METADATA)"
    assert result.sources["options.max_size"] == "the environment (HEICCONV_MAX_SIZE)"
    assert result.sources["options.colour"] == "default"
    assert result.sources["limits.max_pixels"] == "default"
    assert result.sources["backend"] == "default (auto)"
    # The call's quality was used, not dropped in turn.
    full = heicconv.Options(quality=70, metadata="strip", max_size=100)
    assert result.data == heicconv.convert(_photo(), "jpeg", full)
    # A field the call does set still wins: the application may keep metadata on purpose.
    kept = heicconv.convert(_photo(), "jpeg", heicconv.Options(metadata="keep"))
    assert b"Fixture Camera" in kept


def test_limits_that_set_one_field_keep_the_configured_others(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEICCONV_MAX_PIXELS", "1000")
    with pytest.raises(heicconv.LimitExceededError, match="max_pixels"):
        heicconv.convert(_photo((64, 48)), "jpeg", limits=heicconv.Limits(max_input_bytes=10**7))
    result = heicconv.convert_with_report(_photo((64, 48)), "png", limits=heicconv.Limits(max_pixels=10_000))
    assert result.sources["limits.max_pixels"] == "the call's limits"
    with pytest.raises(heicconv.ConfigError, match=r"limits: expected heicconv.Limits, got dict"):
        heicconv.convert(_photo((64, 48)), "png", limits={"max_pixels": 5})  # type: ignore[arg-type]


def test_configure_sets_only_the_fields_it_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEICCONV_METADATA", "strip")
    monkeypatch.setenv("HEICCONV_MAX_PIXELS", "1000")
    heicconv.configure(options=heicconv.Options(quality=70), limits={"max_width": 5000})
    s = settings()
    assert (s.options.quality, s.options.metadata) == (70, "strip")
    assert (s.limits.max_width, s.limits.max_pixels) == (5000, 1000)
    assert s.where("options.quality") == "heicconv.configure()"
    assert s.where("options.metadata") == "the environment (HEICCONV_METADATA)"
    heicconv.configure(options={"colour": "srgb"})  # adds to the earlier call
    assert (settings().options.quality, settings().options.colour) == (70, "srgb")
    assert settings().options.explicit == {"quality", "metadata", "colour"}
    with pytest.raises(heicconv.ConfigError, match=r"options: expected heicconv.Options or a dict, got list"):
        heicconv.configure(options=["quality"])  # type: ignore[arg-type]
    assert heicconv.config.configured() == {"options": {"quality": 70, "colour": "srgb"}, "limits": {"max_width": 5000}}


def test_options_remember_which_fields_were_set() -> None:
    import copy
    import dataclasses
    import pickle

    Options = heicconv.Options
    opts = Options(quality=70)
    assert opts.explicit == {"quality"} and opts.metadata == "keep"  # unset fields read as the default
    assert Options().explicit == frozenset()
    assert Options(70).explicit == {"quality"}
    assert Options(quality=85).explicit == {"quality"}  # named, even with the default value: it pins it
    assert Options(quality=85) != Options() and Options(quality=70) == Options(quality=70)
    assert hash(Options(quality=70)) == hash(Options(quality=70))
    assert repr(opts) == "Options(quality=70)" and eval(repr(opts), {"Options": Options}) == opts
    assert repr(Options(max_size="8x6")) == "Options(max_size=(8, 6))"
    # dataclasses.replace keeps what was left unset, and sets what gets a new value.
    changed = dataclasses.replace(opts, lossless=True)
    assert changed.explicit == {"quality", "lossless"} and changed.quality == 70
    assert dataclasses.replace(opts, quality=70) == opts
    # Options.replace sets exactly what it names, even to the value the field already reads.
    assert opts.replace(metadata="keep").explicit == {"quality", "metadata"}
    for clone in (pickle.loads(pickle.dumps(opts)), copy.copy(opts), copy.deepcopy(opts)):
        assert clone == opts and clone.explicit == {"quality"}
    assert opts.over(Options(quality=90, metadata="strip")) == Options(quality=70, metadata="strip")
    assert heicconv.Limits(max_pixels=5).explicit == {"max_pixels"}
    assert heicconv.Limits.from_mapping({"max_width": 10}, "x").explicit == {"max_width"}
    with pytest.raises(heicconv.ConfigError, match=r"quality: must be an integer from 1 to 100, got 0 \(in Options\)"):
        dataclasses.replace(opts, quality=0)


def test_adapter_keys_take_their_place_in_the_one_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from heicconv.cli import settings as cli_settings

    (tmp_path / "heicconv.toml").write_text(
        'backend = "vips"\n[options]\nquality = 80\nmetadata = "strip"\n'
        '[cli]\nquality = 90\nstrip = false\nbackend = "wand"\njobs = 3\n'
    )
    monkeypatch.chdir(tmp_path)
    cli = cli_settings.load()  # in one file, the [cli] table is the more specific
    assert (cli.quality, cli.strip, cli.backend, cli.jobs) == (90, False, "wand", 3)
    assert settings().where("cli.quality") == f"{Path('heicconv.toml')} [cli]"
    monkeypatch.setenv("HEICCONV_QUALITY", "60")
    monkeypatch.setenv("HEICCONV_METADATA", "strip")
    monkeypatch.setenv("HEICCONV_BACKEND", "pillow")
    cli = cli_settings.load()  # the environment beats the file, [cli] table or not
    assert (cli.quality, cli.strip, cli.backend, cli.jobs) == (None, None, None, 3)
    assert settings().outranked == {"cli.quality", "cli.strip", "cli.backend"}
    monkeypatch.setenv("HEICCONV_CLI_QUALITY", "95")  # the command line's own variable beats the general one
    assert cli_settings.load().quality == 95
    assert settings().where("cli.quality") == "the environment (HEICCONV_CLI_QUALITY)"


def test_profile_tables_and_adapter_sources(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from heicconv.server import settings as server_settings

    (tmp_path / "pyproject.toml").write_text(
        "[tool.heicconv.server]\nport = 8100\nqueue = 'many'\n"
        "[tool.heicconv.profiles.edge.server]\nport = 8200\n"
        "[tool.heicconv.profiles.edge.cli]\nquality = 50\n"
        "[tool.heicconv.options]\nquality = 40\n"
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        heicconv.ConfigError, match=r"server.queue: .*'many' \(in pyproject.toml \[tool.heicconv.server\]\)"
    ):
        server_settings.load()
    monkeypatch.setenv("HEICCONV_SERVER_QUEUE", "4")
    assert server_settings.load().port == 8100
    monkeypatch.setenv("HEICCONV_PROFILE", "edge")
    assert server_settings.load().port == 8200
    assert settings().where("server.port") == "pyproject.toml [tool.heicconv.profiles.edge.server]"
    assert settings().where("server.queue") == "the environment (HEICCONV_SERVER_QUEUE)"
    assert settings().where("profile") == "the environment (HEICCONV_PROFILE)"
    from heicconv.cli import settings as cli_settings

    assert cli_settings.load().quality == 50  # a profile's [cli] beats the file's top-level [options]


def test_the_command_line_keeps_the_operators_privacy_policy(tmp_path: Path) -> None:
    (tmp_path / "photo.heic").write_bytes(_photo())
    (tmp_path / "heicconv.toml").write_text("[cli]\nstrip = false\nquality = 95\n")

    def heicconv_command(*args: str, output: str) -> bytes:
        env = _child_env(HEICCONV_METADATA="strip", HEICCONV_QUALITY="60")
        command = [sys.executable, "-m", "heicconv", *args]
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return (tmp_path / output).read_bytes()

    out = heicconv_command("convert", "photo.heic", "--to", "jpeg", output="photo.jpg")
    for secret in SECRETS:
        assert secret not in out, secret
    expected = heicconv.convert(_photo(), "jpeg", heicconv.Options(quality=60, metadata="strip"))
    assert _quantization(out) == _quantization(expected)
    # A flag is the call's own argument: it wins, and changes nothing else.
    out = heicconv_command("photo.heic", "flag.jpg", "--quality", "70", output="flag.jpg")
    assert not any(secret in out for secret in SECRETS)
    assert _quantization(out) == _quantization(heicconv.convert(_photo(), "jpeg", heicconv.Options(quality=70)))


_APP = """
import sys

import heicconv
from heicconv.server import serve

if __name__ == "__main__":
    # Application code that only cares about quality.
    heicconv.configure(options=heicconv.Options(quality=70))
    serve(host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


@pytest.mark.parametrize("pool", ["thread", "process"])
def test_the_http_service_keeps_the_operators_privacy_policy(tmp_path: Path, pool: str) -> None:
    import http.client
    import socket
    import time

    require_module("uvicorn", "server")
    (tmp_path / "app.py").write_text(_APP)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = _child_env(HEICCONV_METADATA="strip", HEICCONV_SERVER_POOL=pool)
    proc = subprocess.Popen(
        [sys.executable, "app.py", str(port)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )

    def post(path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            conn.request("POST", path, body=_photo(), headers={"Content-Type": "image/heic"})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[0].decode()
            try:
                status, body = post("/convert?format=jpeg")
                break
            except OSError:
                assert time.monotonic() < deadline, "the service did not answer within 60 s"
                time.sleep(0.1)
        assert status == 200, body
        expected = heicconv.convert(_photo(), "jpeg", heicconv.Options(quality=70, metadata="strip"))
        assert not any(secret in body for secret in SECRETS)
        assert _quantization(body) == _quantization(expected)
        status, body = post("/convert?format=jpeg&quality=50")  # the request's own option, over both
        assert status == 200, body
        assert not any(secret in body for secret in SECRETS)
        assert _quantization(body) == _quantization(heicconv.convert(_photo(), "jpeg", heicconv.Options(quality=50)))
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
