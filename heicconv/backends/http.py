"""The ``http`` backend: the conversion runs in a heicconv service (``heicconv serve``, the images in docker/).

Standard library only (:mod:`.wire`): a blocking socket for calls, asyncio streams for ``heicconv.convert_async``.
Configured by ``[http]`` / ``HEICCONV_HTTP_*`` (:mod:`heicconv.backends.remotes` reads them).
"""

from __future__ import annotations

import contextlib
import ssl
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..config.logs import REQUEST_ID, request_id
from ..config.tracing import inject, span
from ..errors import ConfigError
from .remote import RemoteBackend
from .wire import Answer, Endpoint, Request, exchange, exchange_async, time_left

__all__ = ["HttpBackend", "HttpSettings"]


@dataclass(frozen=True)
class HttpSettings:
    """Where the service is and how to reach it (``[http]`` in the config file)."""

    url: str = ""  # http://host:port, or with a path prefix: https://images.internal/heicconv
    timeout: float = 60.0  # seconds for each call, connecting, the answer and retries included; then TimeoutError
    token: str = ""  # sent as "Authorization: Bearer <token>", or in auth_header
    auth_header: str = ""  # a header that carries the token as it is ("X-Api-Key")
    verify: bool = True  # verify the TLS certificate (https)
    ca_file: str = ""  # a CA bundle to verify it with, instead of the system's
    retries: int = 3  # more tries on 429 and 503, with backoff


class HttpBackend(RemoteBackend):
    name = "http"

    def __init__(self, settings: HttpSettings) -> None:
        super().__init__()
        parts = urllib.parse.urlsplit(settings.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"http.url: expected http://host:port or https://host/path, got {settings.url!r}")
        self.settings = settings
        self.where = settings.url.rstrip("/")
        self.timeout = settings.timeout
        self.tls_hint = " (see http.ca_file)"
        self.retries = settings.retries
        self._prefix = parts.path.rstrip("/")
        self._endpoint = Endpoint.of(settings.url, _tls_context(settings) if parts.scheme == "https" else None)

    def _headers(self, body: bytes | None) -> dict[str, str]:
        # The caller's request id (telemetry.REQUEST_ID) if usable, else a new one: the service logs it, errors name it.
        rid = request_id(REQUEST_ID.get())
        headers = {"Accept": "*/*", "User-Agent": "heicconv-http-backend", "X-Request-Id": rid}
        if body is not None:
            headers["Content-Type"] = "application/octet-stream"
        if self.settings.token:
            name = self.settings.auth_header or "Authorization"
            headers[name] = self.settings.token if self.settings.auth_header else f"Bearer {self.settings.token}"
        inject(headers)  # traceparent, when the application traces: the service continues the trace
        return headers

    def _target(self, route: str, query: Mapping[str, str] | None = None) -> str:
        return f"{self._prefix}{route}" + (f"?{urllib.parse.urlencode(query)}" if query else "")

    def _request(self, method: str, target: str, body: bytes | None) -> Request:
        return self._endpoint, method, target, body, self._headers(body)

    def send(self, query: Mapping[str, str], body: bytes, deadline: float) -> Answer:
        with self._transport(body) as current:
            request = self._request("POST", self._target("/convert", query), body)
            try:
                answer = exchange(*request, time_left(deadline))
            except Exception as exc:
                raise self.transport_error(exc) from exc
            _answered(current, answer)
            return answer

    async def send_async(self, query: Mapping[str, str], body: bytes, deadline: float) -> Answer:
        with self._transport(body) as current:
            request = self._request("POST", self._target("/convert", query), body)
            try:
                answer = await exchange_async(*request, time_left(deadline))
            except Exception as exc:
                raise self.transport_error(exc) from exc
            _answered(current, answer)
            return answer

    @contextlib.contextmanager
    def _transport(self, body: bytes) -> Iterator[Any]:
        """The span of one attempt (a client span: its context is what the service's span continues)."""
        attributes: dict[str, str | int] = {
            "http.request.method": "POST",
            "url.full": f"{self.where}/convert",
            "heicconv.input_bytes": len(body),
        }
        with span("heicconv.transport", attributes, kind="CLIENT") as current:
            yield current

    def ask_health(self, deadline: float) -> Answer:
        try:
            return exchange(*self._request("GET", self._target("/health"), None), time_left(deadline))
        except Exception as exc:
            raise self.transport_error(exc) from exc


def _answered(current: Any, answer: Answer) -> None:
    if current is not None:
        current.set_attribute("http.response.status_code", answer.status)
        current.set_attribute("heicconv.output_bytes", len(answer.body))


def _tls_context(settings: HttpSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=settings.ca_file or None)
    if not settings.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
