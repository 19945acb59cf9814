"""Developer and CI sessions. ``nox -s tests`` is the project's test command."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["lint", "typecheck", "docs", "build", "tests", "hdr"]
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite and the doctests, with every backend whose system library is installed.

    Set HEICCONV_CORPUS to run the real-world corpus too, HEICCONV_REQUIRE_BACKENDS
    (for example ``pillow,wand,vips``) to make a missing backend fail instead of skip, and
    HEICCONV_REQUIRE_EXTRAS (``server,lambda,test,deploy``) the same for the extras' modules.
    """
    session.install("-e", ".[all,test,lambda,server,deploy]")
    session.run("pytest", "tests", "heicconv", "docs", *session.posargs)


@nox.session(reuse_venv=True)
def fast(session: nox.Session) -> None:
    """The everyday loop: the tests session without its slow tier, on every CPU (pytest-xdist).

    Every backend's conformance, the corpus (with HEICCONV_CORPUS set), the unit tests and the doctests; not the
    builds, the waits and the 200 MP photo (``SLOW`` in tests/conftest.py lists them with why). The environment is
    kept between runs; ``nox -R -s fast`` skips even pip's check that it is up to date.
    """
    session.install("-e", ".[all,test,lambda,server,deploy]")
    session.run("pytest", "tests", "heicconv", "docs", "-m", "not slow", "-n", "auto", "-q", *session.posargs)


@nox.session
def fuzz(session: nox.Session) -> None:
    """The long fuzz run: 20,000 mutated inputs per backend, fixed seed (``-- --count N --seed S`` to change)."""
    session.install("-e", ".[all,test]")
    session.run("python", "-m", "heicconv.testing.fuzz", "--count", "20000", "--seed", "1", *session.posargs)


@nox.session
def lambda_zip(session: nox.Session) -> None:
    """Build the AWS Lambda deployment ZIPs (python3.12, x86_64 and arm64) into dist/, and check their size."""
    session.run(
        "python",
        "docker/build_lambda_zip.py",
        "--arch",
        "x86_64",
        "--arch",
        "arm64",
        "--out",
        "dist",
        *session.posargs,
        external=True,
    )


@nox.session
def docker(session: nox.Session) -> None:
    """Build every image in docker/ with BuildKit and with the legacy builder, one at a time, smoke-test each,
    and run deploy/compose.yaml (an upload converted by the worker through moto's S3 and SQS, the service answering).

    Needs root, a running Docker engine (``apt-get install docker.io docker-compose debootstrap``, then
    ``dockerd --bridge=none --iptables=false --ip6tables=false &``; ``--data-root DIR`` to try a fresh one),
    its pre-23 ``docker`` command or the buildx plugin, and Compose (the plugin, or Debian's docker-compose).
    The Debian 12 base is made with debootstrap when missing (``docker/debian_base.py``); builds and the
    smoke tests' containers use ``--network host``, Compose its own network; everything is published on
    127.0.0.1 only. Build times, image sizes and outcomes go to dist/docker-report.json.
    Not part of CI: about half an hour on two cores.
    """
    session.install("-e", ".[all,test,lambda,server]")
    session.run(
        "pytest",
        "-p",
        "no:cacheprovider",
        "-s",
        "-v",
        "tests/test_docker_engine.py",
        *session.posargs,
        env={"HEICCONV_DOCKER": "1", "HEICCONV_DOCKER_REPORT": "dist/docker-report.json"},
    )


@nox.session
def hdr(session: nox.Session) -> None:
    """Ultra HDR JPEGs checked by an independent decoder: libultrahdr, as pyvips-binary (>= 8.18) bundles it.

    Every gain-map photo of HEICCONV_CORPUS, and generated PQ and HLG photos (which get a computed gain map),
    go to JPEG on every local backend available in this session's environment (ffmpeg, pillow, vips, wand and
    any plugin; HEICCONV_REQUIRE_BACKENDS makes a missing one an error); a second environment of its own
    (pyvips-binary carries its own libvips, which must not meet heicconv's vips backend) then reads them back:
    gain map and metadata found, SDR picture unchanged, HDR picture within the tolerance of heicconv's own rendering
    (tests/uhdr_check.py). About 3 minutes on two cores.
    """
    import os
    from pathlib import Path

    if not os.environ.get("HEICCONV_CORPUS") and os.environ.get("HEICCONV_REQUIRE_BACKENDS"):
        # Where backends are required (CI), the real HDR photos are too; elsewhere the generated PQ and HLG ones
        # are checked alone.
        session.error("set HEICCONV_CORPUS to the corpus folder (the check needs real HDR photos)")
    session.install("-e", ".[all,testing]")  # uhdr_check reads the required backends with heicconv.testing
    out = Path(session.create_tmp()) / "uhdr"
    policy = str(Path("heicconv/backends/imagemagick").resolve())  # admits the 200 MP photo on wand
    session.run("python", "tests/uhdr_check.py", "convert", str(out), env={"MAGICK_CONFIGURE_PATH": policy})
    checker = Path(session.create_tmp()) / "libultrahdr-venv"
    session.run("python", "-m", "venv", "--clear", str(checker))
    python = str(checker / "bin" / "python")
    session.run(python, "-m", "pip", "install", "-q", "pyvips-binary>=8.18", "pyvips", "numpy", external=True)
    session.run(python, "tests/uhdr_check.py", "check", str(out), external=True)


@nox.session(python=PYTHONS)
def tests_matrix(session: nox.Session) -> None:
    """The suite on every supported Python that is installed (missing ones are skipped)."""
    session.install("-e", ".[all,test,lambda,server]")
    session.run("pytest", "tests", "heicconv", "-q", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff", "import-linter")
    session.install("--no-deps", "-e", ".")  # import-linter reads the package where Python finds it
    paths = ("heicconv", "tests", "noxfile.py", "benchmarks", "docs", "examples")
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)
    session.run("lint-imports")  # the layers in pyproject.toml [tool.importlinter]


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[all,test,lambda,server]", "mypy")
    session.run("mypy", "--strict", "heicconv")


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site (Sphinx, furo, MyST; API reference from the docstrings) into docs/_build/html.

    Warnings are errors, which makes the build the offline link check: a link to a page or a heading that does
    not exist fails it (MyST's xref_missing), and tests/test_docs.py checks that the repository files the pages
    name exist (on the site they link to pyproject.toml's Source URL). ``-- -b linkcheck`` (it needs the
    network) or other sphinx-build arguments go after ``--``.
    """
    session.install("-e", ".[docs,server]")  # the API reference documents heicconv.server.app.create_app
    session.run("sphinx-build", "-W", "--keep-going", "-q", "-b", "html", "docs", "docs/_build/html", *session.posargs)


@nox.session
def build(session: nox.Session) -> None:
    """The sdist and the wheel into dist/, checked: metadata (twine check --strict) and the wheel's files.

    check-wheel-contents compares the wheel with the heicconv/ folder (a file missing from the
    wheel, such as py.typed or the ImageMagick policy, fails) and requires heicconv as its only
    top-level name. docs/releasing.md says how to publish what this makes.
    """
    import glob
    import os

    session.install("build", "twine", "check-wheel-contents")
    for old in glob.glob("dist/heicconv-*"):
        os.remove(old)
    session.run("python", "-m", "build", "--outdir", "dist", ".")
    built = sorted(glob.glob("dist/heicconv-*.tar.gz") + glob.glob("dist/heicconv-*.whl"))
    session.run("twine", "check", "--strict", *built)
    wheels = [path for path in built if path.endswith(".whl")]
    session.run("check-wheel-contents", "--package", "heicconv", "--toplevel", "heicconv", *wheels)


@nox.session
def bench(session: nox.Session) -> None:
    """heicconv's overhead over each library called directly, memory per backend, threads and bomb refusal."""
    session.install("-e", ".[all,test]")
    session.run("python", "benchmarks/overhead.py", *session.posargs)
    session.run("python", "benchmarks/memory.py")
    session.run("python", "benchmarks/threads.py")
