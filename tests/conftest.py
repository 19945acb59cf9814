from __future__ import annotations

import fnmatch
from collections.abc import Iterator

import pytest

import heicconv

# The slow tier: what `nox -s fast` (pytest -m "not slow") leaves to the full run, in one list, with why. Each
# is either a build (a ZIP, a wheel, an index), a wait that is the point of the test (slow clients, heartbeats,
# memory caps), or a repetition of what the fast tier covers at a smaller size. Tests in the files can also carry
# @pytest.mark.slow themselves (the 200 MP photo).
SLOW = {
    "tests/test_coexistence.py::test_every_backend_gives_the_same_bytes_whatever_was_imported_first": (
        "a process per import order"
    ),
    "tests/test_lambda_package.py::test_the_real_zip_for_another_python_is_named_at_init": "builds a real Lambda ZIP",
    "tests/test_release.py::*": "builds the sdist and the wheel and serves them from a local index",
    "tests/test_docker.py::test_apt_packages_exist_on_debian_12*": "asks apt about every package of every image",
    "tests/test_queue_worker.py::test_the_heartbeat_keeps_a_slow_conversion_hidden": "waits for visibility renewals",
    "tests/test_server_load.py::*": "a load run per backend",
    "tests/test_server_slow_clients.py::*": "clients that send a byte a second",
    "tests/test_fuzz.py::test_mutated_inputs_give_images_or_heicconv_errors*": "hundreds of mutated files per backend",
    "tests/test_cli_inputs.py::test_no_temporary_file_outlives_a_terminated_run*": "starts runs and kills them",
    "tests/test_isolated.py::test_memory_cap_gives_limit_exceeded_and_the_pool_survives*": "grows a worker to its cap",
    "tests/test_coexistence.py::*": "each case starts processes that import the image libraries in another order",
    "tests/test_cli.py::test_converting_the_corpus": "the whole corpus through the command line",
    "tests/test_cli.py::test_image_index_picks_one_image_or_all": "each image of the multi-image files",
    "tests/test_queue_worker.py::test_drain_*": "a worker process against moto's SQS and S3",
    "tests/test_queue_worker.py::test_sigterm_mid_batch_loses_nothing*": "two worker processes and a signal mid-batch",
    "tests/test_queue_worker.py::test_metrics_on_the_health_port_*": "waits for a worker to be stopped and replaced",
    "tests/test_server_uploads.py::*": "uploads held open on purpose",
    "tests/test_server_defaults.py::test_process_workers_with_a_memory_cap_are_the_default": (
        "grows a worker to its cap, which is polled: beside other tests the conversion can end between two polls"
    ),
    "tests/test_equivalence.py::test_corpus_files_agree[[]real/*-None]": "full-size; the fast tier compares at 512 px",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(fnmatch.fnmatchcase(item.nodeid, pattern) for pattern in SLOW):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _clean_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Each test starts from defaults: no configure(), no HEICCONV_* variables but the test-control ones."""
    import os

    for name in list(os.environ):
        if name.startswith("HEICCONV_") and name not in ("HEICCONV_CORPUS", "HEICCONV_REQUIRE_BACKENDS"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))  # no heicconv.toml / pyproject.toml from the repo
    heicconv.config.reset()
    yield
    heicconv.config.reset()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The lowest PSNR seen per backend pair (tests/test_equivalence.py), to watch over time."""
    import sys

    module = sys.modules.get("test_equivalence") or sys.modules.get("tests.test_equivalence")
    lowest = getattr(module, "LOWEST", None)
    if not lowest:
        return
    terminalreporter.section("lowest PSNR per backend pair")
    for (a, b), (value, where) in sorted(lowest.items()):
        terminalreporter.write_line(f"{a} vs {b}: {value:.1f} dB ({where})")
