"""The documentation states what the code does."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from heicconv.backends import registry
from heicconv.testing.plugin import require_backend

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_capability_table_matches_the_backends() -> None:
    text = (DOCS / "backends.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- capabilities:.*?-->\n(.*?)<!-- /capabilities -->", text, re.S)
    assert match, "docs/backends.md lost its capabilities table"
    documented = match.group(1).strip()
    for name in ("ffmpeg", "pillow", "vips", "wand"):  # the table documents all four: skip (or fail in CI) without one
        require_backend(name)
    assert registry.capabilities_table() == documented, "regenerate it: python docs/update_tables.py"


def test_readme_commands_name_files_that_exist() -> None:
    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    assert "python -m heicconv examples/sample.heic sample.jpg" in readme
    assert (DOCS.parent / "examples" / "sample.heic").is_file()
    for doc in re.findall(r"`(docs/[\w.-]+\.md)`", readme):
        assert (DOCS.parent / doc).is_file(), doc


def test_the_package_summary_names_every_output_format_and_backend() -> None:
    """pyproject.toml's description (the wheel's summary) is the CLI's --help sentence, and it stays complete."""
    from heicconv.cli import DESCRIPTION
    from heicconv.options.formats import DISPLAY_NAMES, OUTPUT_FORMATS

    project = tomllib.loads((DOCS.parent / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["description"] == DESCRIPTION
    for fmt in OUTPUT_FORMATS:
        assert DISPLAY_NAMES[fmt] in DESCRIPTION, fmt
    libraries = {"ffmpeg": "FFmpeg", "pillow": "Pillow", "vips": "libvips", "wand": "ImageMagick"}
    libraries |= {"http": "heicconv service", "lambda": "Lambda"}
    assert set(libraries) == set(registry.BUILTIN), "name the new built-in backend's library in the description"
    for library in libraries.values():
        assert library in DESCRIPTION, library


def test_configuration_examples_name_every_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """The error example is the message heicconv gives, and the config file's comment lists every built-in."""
    import heicconv

    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    monkeypatch.setenv("HEICCONV_BACKEND", "imagemagick")
    with pytest.raises(heicconv.ConfigError) as caught:
        heicconv.convert(b"", "jpeg")
    assert f"\n{caught.value}\n" in text, f"docs/configuration.md's error example should read: {caught.value}"
    comment = re.search(r'^backend = "auto" +# (.*)$', text, re.M)
    assert comment, "docs/configuration.md lost its config file example"
    for name in registry.BUILTIN:
        assert name in comment.group(1), f"the config file's backend comment omits {name}"


def test_the_option_and_limit_tables_document_every_field() -> None:
    import dataclasses

    from heicconv import Limits, Options

    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    for heading, cls in (("## Options", Options), ("## Limits", Limits)):
        section = text.split(heading + "\n", 1)[1].split("\n## ", 1)[0]
        documented = set(re.findall(r"^\| `(\w+)`(?:, `(\w+)`)?", section, re.M))
        names = {n for pair in documented for n in pair if n}
        assert names == {f.name for f in dataclasses.fields(cls)}, heading
    # The rule the Options docstring states (the code's) is the one the table states.
    assert "lossless WebP, AVIF or HEIC; PNG and TIFF always are; JPEG" in (Options.__doc__ or "")
    assert "| `lossless` | false | lossless WebP, AVIF or HEIC; PNG and TIFF always are; JPEG refuses it |" in text


def test_the_testing_page_names_the_default_nox_sessions() -> None:
    import ast

    tree = ast.parse((DOCS.parent / "noxfile.py").read_text(encoding="utf-8"))
    sessions = next(
        ast.literal_eval(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "nox.options.sessions"
    )
    first = (DOCS / "testing.md").read_text(encoding="utf-8").split("\n\n")[1]
    for name in sessions:
        assert f"`{name}`" in first, f"docs/testing.md's first paragraph does not say that nox runs {name}"


def test_the_quick_start_conversion_runs_twice(tmp_path: Path) -> None:
    """The README's command, as written, in a fresh folder: a second run must not fail on the first's output."""
    import shlex
    import shutil
    import subprocess

    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    line = next(line for line in readme.splitlines() if line.startswith("python -m pip install . && "))
    command = shlex.split(line.split(" && ", 1)[1])
    assert command[:3] == ["python", "-m", "heicconv"]
    (tmp_path / "examples").mkdir()
    shutil.copy(DOCS.parent / "examples" / "sample.heic", tmp_path / "examples")
    env = {**os.environ, "PYTHONPATH": str(DOCS.parent)}
    for _ in range(2):
        run = subprocess.run([sys.executable, *command[1:]], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
    assert (tmp_path / "sample.jpg").read_bytes()[:3] == b"\xff\xd8\xff"


def test_the_installation_page_lists_every_extra() -> None:
    text = (DOCS / "installation.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- extras:.*?-->\n(.*?)<!-- /extras -->", text, re.S)
    assert match, "docs/installation.md lost its extras table"
    documented = re.findall(r"^\| `(\w+)` \|", match.group(1), re.M)
    project = tomllib.loads((DOCS.parent / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert set(documented) == set(project["optional-dependencies"]), "installation.md's extras and pyproject's differ"
    for extra, requirements in project["optional-dependencies"].items():
        row = next(line for line in match.group(1).splitlines() if line.startswith(f"| `{extra}` |"))
        for requirement in requirements:  # each package the extra brings is named (case and dashes aside)
            name = re.split(r"[<>=\[;! ]", requirement, maxsplit=1)[0]
            if name != "heicconv":
                assert name.lower().replace("-", "") in row.lower().replace("-", ""), (extra, name)


def _site_links() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("docs_conf", DOCS / "conf.py")
    assert spec is not None and spec.loader is not None
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    return conf


def test_the_site_links_guides_and_repository_files() -> None:
    """On the site a guide named as docs/NAME.md is a link, and a repository file links to the one source URL."""
    conf = _site_links()
    text = "See docs/errors.md and `docs/cli.md`, [`tests/test_docs.py`](x), `tests/test_docs.py`.\n"
    text += "```\npython docs/update_tables.py\n```"
    linked = conf.site_links(text)
    assert "[errors.md](errors.md)" in linked and "[cli.md](cli.md)" in linked
    assert f"[`tests/test_docs.py`]({conf.SOURCE_URL}tests/test_docs.py)" in linked
    assert (
        "[`tests/test_docs.py`](x)" in linked and "python docs/update_tables.py" in linked
    )  # links, code: as they were
    urls = tomllib.loads((DOCS.parent / "pyproject.toml").read_text(encoding="utf-8"))["project"]["urls"]
    assert urls["Source"] == conf.SOURCE_URL


def test_every_repository_path_the_docs_name_exists() -> None:
    """A renamed or deleted file leaves no dangling reference (the site would show it as plain text)."""
    conf = _site_links()
    for page in [*sorted(DOCS.glob("*.md")), DOCS.parent / "README.md"]:
        for match in conf._REPO_PATH.finditer(page.read_text(encoding="utf-8")):
            path = match.group(1)
            assert "*" in path or (DOCS.parent / path).exists(), f"{page.name} names {path}, which does not exist"


def test_every_command_line_flag_is_documented() -> None:
    """Each long flag of each command (the lazy ones whose extra is installed too) is named in the docs."""
    from heicconv.cli import LAZY_COMMANDS, build_parser

    text = "\n".join(page.read_text(encoding="utf-8") for page in DOCS.glob("*.md"))
    missing = []
    for lazy in (None, *LAZY_COMMANDS):
        commands = next(a for a in build_parser(lazy)._actions if a.dest == "command")
        for name, parser in commands.choices.items():
            if (lazy is None) == (name in LAZY_COMMANDS):
                continue  # a lazy command is only listed, unless its own module was imported
            flags = (flag for action in parser._actions for flag in action.option_strings)
            missing += [f"{name} {flag}" for flag in flags if flag.startswith("--") and flag not in text]
    assert not missing, f"document them (docs/cli.md, bench.md or deployment.md): {missing}"


def test_the_readme_backend_table_names_every_built_in_backend() -> None:
    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    rows = [line for line in readme.splitlines() if line.startswith("| `")]
    named = {name for row in rows for name in re.findall(r"`(\w+)`", row.split("|")[1])}
    assert set(registry.BUILTIN) <= named, f"README.md's backend table omits {set(registry.BUILTIN) - named}"


def test_the_cli_page_quotes_the_unknown_suffix_message() -> None:
    from heicconv.cli.convert import unknown_output_suffix

    message = unknown_output_suffix(["a.heic", "out.gif"], {"convert"})
    text = " ".join((DOCS / "cli.md").read_text(encoding="utf-8").split())
    assert f'`heicconv a.heic out.gif` answers "{message}"' in text


def test_the_changelog_dates_this_version() -> None:
    """A wheel built from this tree says a version the changelog describes (docs/releasing.md, step 1)."""
    import heicconv

    changelog = (DOCS.parent / "CHANGELOG.md").read_text(encoding="utf-8")
    heading = rf"^## \[{re.escape(heicconv.__version__)}\] - \d{{4}}-\d{{2}}-\d{{2}}$"
    assert re.search(heading, changelog, re.M), f"CHANGELOG.md has no dated section for {heicconv.__version__}"
