"""Selection and configuration: one precedence, clear errors naming the key and its source."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import heicconv
from heicconv.config import settings


def test_defaults_are_auto_and_pillow_first() -> None:
    s = settings()
    assert s.backend == "auto"
    assert s.order[0] == "pillow"
    assert heicconv.select().name == "pillow"
    assert heicconv.selected_backend() == ("pillow", "default (auto)")


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
        ("[options]\nquality = 300\n", r"quality: must be an integer from 1 to 100, got 300 \(in .*heicconv.toml\)"),
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


def test_named_backend_must_work_or_raise_while_auto_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    from heicconv import registry

    class Broken:
        def __init__(self) -> None:
            raise heicconv.BackendUnavailableError("broken on purpose; install nothing")

    monkeypatch.setattr(registry, "_plugins", {"broken": registry.Entry(f"{__name__}:Broken")})
    monkeypatch.setitem(sys.modules[__name__].__dict__, "Broken", Broken)
    with pytest.raises(heicconv.BackendUnavailableError, match="broken on purpose"):
        heicconv.convert(b"", "jpeg", backend="broken")
    heicconv.configure(backends=["broken", "pillow"])
    assert heicconv.select().name == "pillow"
    status = {s.name: s for s in heicconv.list_backends()}
    assert not status["broken"].available and "broken on purpose" in status["broken"].reason


def test_unavailable_backend_message_names_extra_and_system_package(monkeypatch: pytest.MonkeyPatch) -> None:
    from heicconv import registry

    monkeypatch.setattr(registry, "_instances", {})
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

    from heicconv import registry

    ep = metadata.EntryPoint("mine", "some_package.module:MyBackend", registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [ep] if group == registry.ENTRY_POINT_GROUP else [])
    monkeypatch.setattr(registry, "_plugins", None)
    assert registry.registry()["mine"].target == "some_package.module:MyBackend"
    assert "some_package" not in sys.modules
    with pytest.raises(heicconv.BackendUnavailableError, match="cannot be imported"):
        registry.get("mine")
