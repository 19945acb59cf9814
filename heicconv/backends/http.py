"""The ``http`` backend: the conversion runs in a heicconv service (``heicconv serve``, the images in docker/).

Standard library only (:mod:`.wire`): a blocking socket for calls, asyncio streams for ``heicconv.convert_async``.
Configured by ``[http]`` / ``HEICCONV_HTTP_*``, read by :func:`read_settings` with the one typed loader,
:func:`heicconv.config.tables.load` (so ``HEICCONV_HTTP_URL`` beats ``[http] url``, and a profile can set either).
"""

from __future__ import annotations

import contextlib
import ssl
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..config.logs import REQUEST_ID, request_id
from ..config.rules import flag, integer, number, text
from ..config.tables import keys, load, setting
from ..config.tracing import inject, span
from ..errors import BackendUnavailableError, ConfigError
from .remote import RemoteBackend
from .wire import Answer, Endpoint, Request, exchange, exchange_async, time_left

__all__ = ["HTTP_KEYS", "HttpBackend", "HttpSettings", "read_settings"]


@dataclass(frozen=True)
class HttpSettings:
    """Where the service is and how to reach it (``[http]`` in the config file)."""

    # http://host:port, or with a path prefix: https://images.internal/heicconv
    url: str = setting("", text(str.strip))
    # seconds for each call, connecting, the answer and retries included; then TimeoutError
    timeout: float = setting(60.0, number(0.001))
    token: str = setting("", text(), repr=False)  # sent as "Authorization: Bearer <token>", or in auth_header
    auth_header: str = setting("", text(str.strip))  # a header that carries the token as it is ("X-Api-Key")
    verify: bool = setting(True, flag())  # verify the TLS certificate (https)
    ca_file: str = setting("", text())  # a CA bundle to verify it with, instead of the system's
    retries: int = setting(3, integer(0, 10))  # more tries on 429 and 503, with backoff


#: The keys of ``[http]``, in the order of :class:`HttpSettings`' fields.
HTTP_KEYS = tuple(keys(HttpSettings))


def read_settings() -> HttpSettings:
    """``[http]`` and ``HEICCONV_HTTP_*``, checked; ``ConfigError`` names a bad key and where it is set."""
    cfg = load(HttpSettings, "http").value
    if not cfg.url:
        raise BackendUnavailableError(
            "backend 'http' needs the service's URL: set HEICCONV_HTTP_URL (or [http] url in the config file)"
        )
    return cfg


class HttpBackend(RemoteBackend):
    name = "http"
    settings: HttpSettings

    @classmethod
    def configured(cls) -> tuple[HttpSettings]:
        return (read_settings(),)

    def start(self, settings: HttpSettings) -> None:
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
