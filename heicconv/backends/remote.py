"""What the remote backends (``http``, ``lambda``) share: the wire, retries, errors and the report.

A remote backend sends the upload, the output format and every field of the caller's effective
:class:`heicconv.Options` as the service's query parameters (so the remote's own defaults never
change the result), and reads back the image and the headers that say what was done
(``X-Image-Size``, ``X-Heicconv-Notes``, ``X-Heicconv-Versions``). heicconv has already read the
header and checked the limits here (``pipeline.plan``) before anything is sent. An error answer
``{"error": code, "message", "status"}`` becomes the class the remote raised
(:func:`heicconv.errors.from_http`, the inverse of the one table); 429 and 503 are retried with
backoff. ``timeout`` bounds each call to the remote, its retries included: a remote that has not answered
by then raises :class:`heicconv.TimeoutError`, whatever it was doing (not accepting the connection, not
answering, or sending slowly). Every other failure of the exchange (refused, reset, TLS, an answer that
breaks off or an image cut short) raises :class:`heicconv.BackendUnavailableError`, the cause chained.
"""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import json
import random
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ..container import completeness, isobmff
from ..errors import BackendUnavailableError, DecodeError, HeicconvError, TimeoutError, from_http
from ..options import Options, field_to_text
from .contract import Capabilities, Feature, Job, Note, Result
from .wire import Answer, BrokenAnswer

__all__ = ["RETRY_STATUSES", "STAGING_KEY", "RemoteBackend", "query_for"]

#: Answers worth another try: the remote is busy (429) or briefly unavailable (503).
RETRY_STATUSES = frozenset({429, 503})

#: The ``lambda`` backend's event key for staged objects: ``{"input": presigned GET URL, "output": presigned
#: PUT URL}``. API Gateway and Function URLs never put it at the top of an event, so only a direct Invoke can.
#: Here, not in ``lambda_invoke``, so that the Lambda handler reads it without importing the backend.
STAGING_KEY = "heicconvStaging"


def query_for(job: Job) -> dict[str, str]:
    """The query parameters of ``job``: the format and every option field, set or not.

    >>> from heicconv.container.info import read_source
    >>> from heicconv.testing.fixtures import make_heic
    >>> from heicconv.options import Limits
    >>> job = Job(read_source(make_heic()), "png", Options(max_size=64), Limits(), (64, 48))
    >>> q = query_for(job)
    >>> q["format"], q["max_size"], q["metadata"], q["image_index"]
    ('png', '64x64', 'keep', 'primary')
    """
    query = {"format": job.fmt}
    for f in dataclasses.fields(Options):
        query[f.name] = field_to_text(f.name, getattr(job.options, f.name))
    return query


class RemoteBackend:
    """A backend that runs the whole conversion elsewhere; subclasses implement :meth:`send` and :meth:`ask_health`.

    ``capabilities`` and ``versions()`` come from the remote's ``GET /health`` (fetched on first use and
    kept once it answers), so ``heicconv backends`` says whether the remote answers. Each call to the remote
    (the conversion, or ``/health``), with its retries, ends by ``timeout`` seconds after it began.
    """

    name = ""
    remote = True
    where = ""  # the remote, in words: "http://10.0.0.5:8000", "Lambda function heicconv:live"
    timeout = 60.0  # seconds for each call to the remote, retries included
    tls_hint = ""  # where a TLS failure's fix is: " (see http.ca_file)"
    retries = 3
    backoff = 0.2  # seconds before the first retry; doubled each time, Retry-After honoured, capped below
    backoff_max = 5.0

    def __init__(self) -> None:
        self._health: dict[str, Any] | None = None
        self._lock = threading.Lock()

    # -- what subclasses implement ---------------------------------------------------------------
    def send(self, query: Mapping[str, str], body: bytes, deadline: float) -> Answer:
        """One ``POST /convert`` attempt, over by ``deadline`` (a :func:`time.monotonic` time); a transport failure
        raises :meth:`transport_error`."""
        raise NotImplementedError

    def ask_health(self, deadline: float) -> Answer:
        """One ``GET /health`` attempt, over by ``deadline``."""
        raise NotImplementedError

    async def send_async(self, query: Mapping[str, str], body: bytes, deadline: float) -> Answer:
        """:meth:`send` without blocking the event loop (by default: in a thread)."""
        return await asyncio.to_thread(self.send, query, body, deadline)

    # -- the contract ----------------------------------------------------------------------------
    @property
    def capabilities(self) -> Capabilities:
        caps = self.health()["capabilities"]
        try:
            return Capabilities(
                frozenset(caps["inputs"]),
                frozenset(caps["outputs"]),
                _features(caps["features"]),
            )
        except (KeyError, TypeError) as exc:
            raise self._not_heicconv(f"its /health capabilities are unreadable ({exc})") from exc

    def versions(self) -> dict[str, str]:
        health = self.health()
        return {"remote": f"{health.get('backend', '?')} at {self.where}", **_strings(health.get("versions"))}

    def health(self) -> dict[str, Any]:
        """The remote's ``GET /health`` answer, kept once it has answered; raises if it does not answer."""
        if self._health is not None:
            return self._health
        with self._lock:
            if self._health is None:
                answer = self._retrying(self.ask_health)
                if answer.status != 200:
                    raise self.error(answer)
                payload = self._json(answer)
                if not isinstance(payload, dict) or not isinstance(payload.get("capabilities"), dict):
                    raise self._not_heicconv("its /health answer has no capabilities (heicconv before 0.2?)")
                self._health = payload
        return self._health

    def run(self, job: Job) -> Result:
        query = query_for(job)
        return self.result(job, self._retrying(lambda deadline: self.send(query, job.source.data, deadline)))

    async def run_async(self, job: Job) -> Result:
        """:meth:`run` for an event loop: the same request, retries and errors, without blocking it."""
        query = query_for(job)
        answer = await self._retrying_async(lambda deadline: self.send_async(query, job.source.data, deadline))
        return self.result(job, answer)

    # -- answers ---------------------------------------------------------------------------------
    def result(self, job: Job, answer: Answer) -> Result:
        """The :class:`Result` of a conversion answer, or the heicconv error it stands for."""
        if answer.status != 200:
            raise self.error(answer)
        mime = answer.headers.get("content-type", "").partition(";")[0].strip().lower()
        if not mime.startswith("image/"):
            raise self._not_heicconv(f"it answered 200 with {mime or 'no content type'}, not an image")
        width, height = job.size
        size = answer.headers.get("x-image-size", "")
        if "x" in size:
            w, _, h = size.partition("x")
            if w.isdigit() and h.isdigit():
                width, height = int(w), int(h)
        self._check_image(job.fmt, answer.body)
        notes = _notes(answer.headers.get("x-heicconv-notes", "")) or list(job.notes)
        versions = _strings(_loads(answer.headers.get("x-heicconv-versions", "")))
        remote_backend = answer.headers.get("x-heicconv-backend", "?")
        made_by = "".join(f"; {k} {v}" for k, v in versions.items())
        said = Note("backend", f"backend: {self.name} ({remote_backend} at {self.where}{made_by})")
        rest = tuple(n for n in notes if n.kind != "backend")
        return Result(answer.body, job.fmt, width, height, self.name, job.source.info, (said, *rest))

    def error(self, answer: Answer) -> HeicconvError:
        """The heicconv error a non-200 answer stands for, naming the remote."""
        payload = self._json(answer, strict=False)
        if not isinstance(payload, dict) or not isinstance(payload.get("error"), str):
            text = answer.body[:200].decode("utf-8", "replace").strip()
            return self._not_heicconv(f"it answered {answer.status}: {text!r}")
        code, message = payload["error"], str(payload.get("message", ""))
        tries = ""
        if answer.status in RETRY_STATUSES:
            tries = " after 1 try" if answer.tries == 1 else f" after {answer.tries} tries"
        said = f"{self.name} backend: {self.where} answered {answer.status} {code}{tries}"
        if answer.headers.get("x-request-id"):  # the id of the service's log line for this answer
            said += f", request id {answer.headers['x-request-id']}"
        return from_http(answer.status, code, f"{message} ({said})")

    def _json(self, answer: Answer, *, strict: bool = True) -> Any:
        try:
            return json.loads(answer.body)
        except ValueError as exc:
            if strict:
                raise self._not_heicconv("its answer is not JSON") from exc
            return None

    def _not_heicconv(self, why: str) -> BackendUnavailableError:
        return BackendUnavailableError(f"backend {self.name!r}: {self.where} does not answer as heicconv: {why}")

    def _check_image(self, fmt: str, data: bytes) -> None:
        """An image cut short on its way here (its framing says so, whatever the Content-Length) is not a result."""
        try:
            cut = isobmff.cut_short(data) if fmt in ("heic", "avif") else ""
            if not data or cut:
                raise DecodeError(f"the {fmt.upper()} file is {'truncated: ' + cut if cut else 'empty'}")
            completeness.check(data, fmt)
        except DecodeError as exc:
            raise self._not_heicconv(f"the image it answered is damaged: {exc}") from exc

    def transport_error(self, exc: BaseException) -> HeicconvError:
        """The heicconv error of an exchange with the remote that failed with ``exc`` (raise it ``from exc``)."""
        if isinstance(exc, HeicconvError):
            return exc
        said = f"backend {self.name!r}:"
        if isinstance(exc, (builtins.TimeoutError, asyncio.TimeoutError)):  # asyncio's is the builtin from 3.11
            return TimeoutError(f"{said} {self.where} did not answer within {self.timeout:g} s ({self.name}.timeout)")
        if isinstance(exc, (ssl.SSLError, ssl.CertificateError)):
            return BackendUnavailableError(f"{said} TLS with {self.where} failed: {exc}{self.tls_hint}")
        if isinstance(exc, BrokenAnswer):
            return BackendUnavailableError(f"{said} {self.where} sent an incomplete or malformed answer: {exc}")
        if isinstance(exc, (ConnectionRefusedError, socket.gaierror)):
            return BackendUnavailableError(f"{said} cannot reach {self.where}: {type(exc).__name__}: {exc}")
        return BackendUnavailableError(f"{said} the exchange with {self.where} failed: {type(exc).__name__}: {exc}")

    # -- retries ---------------------------------------------------------------------------------
    def _retrying(self, attempt: Callable[[float], Answer]) -> Answer:
        """``attempt(deadline)`` until it is not busy, ``retries`` more times at most, and only while the backoff
        ends before the deadline: the answer that ends it carries how many tries it took."""
        deadline = time.monotonic() + self.timeout
        for n in range(self.retries + 1):
            answer = attempt(deadline)
            delay = self._delay(n, answer)
            if answer.status not in RETRY_STATUSES or n == self.retries or time.monotonic() + delay >= deadline:
                return dataclasses.replace(answer, tries=n + 1)
            time.sleep(delay)
        raise AssertionError("unreachable")

    async def _retrying_async(self, attempt: Callable[[float], Awaitable[Answer]]) -> Answer:
        deadline = time.monotonic() + self.timeout
        for n in range(self.retries + 1):
            answer = await attempt(deadline)
            delay = self._delay(n, answer)
            if answer.status not in RETRY_STATUSES or n == self.retries or time.monotonic() + delay >= deadline:
                return dataclasses.replace(answer, tries=n + 1)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _delay(self, n: int, answer: Answer) -> float:
        """Exponential backoff with jitter, at least the answer's Retry-After, at most ``backoff_max``."""
        try:
            asked = float(answer.headers.get("retry-after", "0"))
        except ValueError:
            asked = 0.0
        wait: float = max(asked, self.backoff * 2**n * random.uniform(0.5, 1.0))
        return min(self.backoff_max, wait)


def _features(labels: Any) -> Feature:
    features = Feature(0)
    for label in labels:
        try:
            features |= Feature.parse(label)
        except ValueError:  # a newer remote's feature this heicconv does not know: it cannot ask for it anyway
            continue
    return features


def _loads(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _notes(text: str) -> list[Note]:
    pairs = _loads(text)
    if not isinstance(pairs, list):
        return []
    return [Note(str(p[0]), str(p[1])) for p in pairs if isinstance(p, list) and len(p) == 2]


def _strings(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
