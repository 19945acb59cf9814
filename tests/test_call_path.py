"""One call path (issue 22): every conversion runs through ``heicconv.pipeline.run``, and what a backend is
(remote, asynchronous) is read from its declared capabilities, never guessed from its attributes."""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

import pytest

import heicconv
from heicconv.backends import registry
from heicconv.backends.remote import RemoteBackend
from heicconv.testing import fixtures
from heicconv.testing.plugin import require_module

PQ = 16
_READS = frozenset({"heic", "png", "tiff"})


class _Recording:
    """A backend that writes a fixed PNG, recording the jobs it was given and which of its methods ran."""

    name = "recording"
    capabilities = heicconv.Capabilities(_READS, frozenset({"png"}))
    calls: list[str]
    jobs: list[heicconv.Job]

    def __init__(self) -> None:
        self.calls, self.jobs = [], []

    def versions(self) -> dict[str, str]:
        return {}

    def run(self, job: heicconv.Job) -> heicconv.Result:
        self.calls.append("run")
        self.jobs.append(job)
        return job.result(heicconv.convert(fixtures.make_heic(job.size), "png", backend="pillow"), "elsewhere")


def _registered(cls: type[Any]) -> Any:
    heicconv.register_backend("recording", cls, replace=True)
    return heicconv.select("recording")


@pytest.fixture(autouse=True)
def _unregister() -> Any:
    yield
    if "recording" in registry.known_names():
        heicconv.unregister_backend("recording")


def test_an_undeclared_run_async_is_not_called() -> None:
    """A method that happens to be called ``run_async`` does not make a backend asynchronous: its capabilities do."""

    class Undeclared(_Recording):
        async def run_async(self, job: heicconv.Job) -> heicconv.Result:
            self.calls.append("run_async")
            return self.run(job)

    backend = _registered(Undeclared)
    asyncio.run(heicconv.convert_async(fixtures.make_heic((32, 24)), "png", backend="recording"))
    assert backend.calls == ["run"]


def test_a_declared_asynchronous_backend_is_awaited_and_its_own_error_wrapped() -> None:
    class Declared(_Recording):
        capabilities = heicconv.Capabilities(_READS, frozenset({"png"}), asynchronous=True)

        async def run_async(self, job: heicconv.Job) -> heicconv.Result:
            self.calls.append("run_async")
            raise ValueError("the remote hung up")

    backend = _registered(Declared)
    with pytest.raises(heicconv.EncodeError, match="backend 'recording' failed: the remote hung up"):
        asyncio.run(heicconv.convert_async(fixtures.make_heic((32, 24)), "png", backend="recording"))
    assert backend.calls == ["run_async"]


def test_asynchronous_without_run_async_breaks_the_contract() -> None:
    class Missing(_Recording):
        capabilities = heicconv.Capabilities(_READS, frozenset({"png"}), asynchronous=True)

    with pytest.raises(heicconv.BackendUnavailableError, match=r"contract.*a `run_async\(\)` method"):
        _registered(Missing)


def test_a_backend_declared_remote_gets_the_hdr_source_as_it_is_and_names_itself() -> None:
    """heicconv tone maps a PQ source for a local backend, never for one whose capabilities say remote (the
    remote does it), and leaves the remote's result as it is."""

    class Remote(_Recording):
        capabilities = heicconv.Capabilities(_READS, frozenset({"png"}), remote=True)

    data = fixtures.make_hdr_signal_heic(PQ, (0.75, 0.5))
    backend = _registered(Remote)
    result = heicconv.convert_with_report(data, "png", backend="recording")
    (job,) = backend.jobs
    assert job.tone_map == PQ and job.original is None and job.source.data == data
    assert result.backend == "elsewhere"

    local = _registered(_Recording)
    result = heicconv.convert_with_report(data, "png", backend="recording")
    (job,) = local.jobs
    assert job.original is not None and job.source.info.format in ("tiff", "png")
    assert result.backend == "recording"


def test_builtin_backends_are_classes_and_the_remote_ones_say_so_in_the_registry() -> None:
    for name, entry in registry.BUILTIN.items():
        assert isinstance(entry.target, str)
        module, _, attr = entry.target.partition(":")
        cls = getattr(importlib.import_module(module), attr)
        assert isinstance(cls, type), name
        assert entry.remote == issubclass(cls, RemoteBackend), name
    assert list(registry.BUILTIN) == sorted(registry.BUILTIN)


def test_the_http_backend_reads_its_own_settings_and_is_kept_per_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from heicconv.backends.http import HttpBackend

    monkeypatch.setenv("HEICCONV_HTTP_URL", "http://127.0.0.1:9/a")
    heicconv.config.reset()
    first = HttpBackend()
    assert first is HttpBackend() and first.where == "http://127.0.0.1:9/a"
    monkeypatch.setenv("HEICCONV_HTTP_URL", "http://127.0.0.1:9/b")
    heicconv.config.reset()
    second = HttpBackend()
    assert second is not first and second.where == "http://127.0.0.1:9/b"
    assert heicconv.select("http") is second
    monkeypatch.setenv("HEICCONV_HTTP_RETRIES", "many")
    heicconv.config.reset()
    with pytest.raises(heicconv.ConfigError, match=r"http\.retries"):
        HttpBackend()


def test_the_lambda_backend_reads_its_own_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    require_module("boto3", "lambda")
    from heicconv.backends.lambda_invoke import LambdaBackend

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("HEICCONV_LAMBDA_FUNCTION", "heicconv")
    monkeypatch.setenv("HEICCONV_LAMBDA_QUALIFIER", "live")
    heicconv.config.reset()
    backend = LambdaBackend()
    assert backend is LambdaBackend() and backend.where == "Lambda function heicconv:live"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")  # another AWS environment: another backend
    assert LambdaBackend() is not backend
