"""The ``lambda`` backend: the conversion runs in a deployed heicconv Lambda function (``heicconv[lambda]``).

Each conversion is one synchronous ``Invoke`` of the function with an API Gateway (payload 2.0)
``POST /convert`` event, which the function's handler answers as it answers a Function URL. boto3
finds the region, credentials and endpoint the usual way (``AWS_REGION``, the credentials chain,
``AWS_ENDPOINT_URL_LAMBDA`` / ``AWS_ENDPOINT_URL``). Configured by ``[lambda]`` / ``HEICCONV_LAMBDA_*``
(:mod:`heicconv.remotes` reads them).
"""

from __future__ import annotations

import base64
import binascii
import json
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import errors
from ..errors import BackendUnavailableError, ConfigError, HeicconvError, LimitExceededError, TimeoutError
from .remote import Answer, RemoteBackend

__all__ = ["INVOKE_PAYLOAD_LIMIT", "LambdaBackend", "LambdaSettings"]

#: Lambda's cap on a synchronous invocation's request payload (Invoke API reference): 6 MB.
INVOKE_PAYLOAD_LIMIT = 6 * 1024 * 1024


@dataclass(frozen=True)
class LambdaSettings:
    """Which function, and how long to wait (the caller's keys of ``[lambda]``)."""

    function: str = ""  # name, ARN, or name:alias
    qualifier: str = ""  # a version or alias, when the name does not carry one
    region: str = ""  # "" lets boto3 find it (AWS_REGION, the profile)
    timeout: float = 120.0  # seconds to wait for the function's answer; then heicconv.TimeoutError
    retries: int = 3  # more tries on throttling, 429 and 503


class LambdaBackend(RemoteBackend):
    name = "lambda"

    def __init__(self, settings: LambdaSettings) -> None:
        super().__init__()
        try:
            import boto3
            from botocore.config import Config
        except ImportError as exc:
            raise BackendUnavailableError(f"backend 'lambda' needs boto3 ({exc})") from exc
        if not settings.function:
            raise ConfigError("lambda.function: set HEICCONV_LAMBDA_FUNCTION (a name, ARN or name:alias)")
        self.settings = settings
        self.retries = settings.retries
        self.where = f"Lambda function {settings.function}" + (f":{settings.qualifier}" if settings.qualifier else "")
        config = Config(
            read_timeout=settings.timeout,
            connect_timeout=min(10.0, settings.timeout),
            retries={"max_attempts": settings.retries + 1, "mode": "standard"},  # throttling, with backoff
        )
        self._client: Any = boto3.client("lambda", region_name=settings.region or None, config=config)

    def send(self, query: Mapping[str, str], body: bytes) -> Answer:
        event = _event("POST", "/convert", query, body)
        if len(event) > INVOKE_PAYLOAD_LIMIT:
            raise LimitExceededError(
                f"the input is {len(body)} bytes: base64-encoded in its event that is {len(event)} bytes, over the "
                f"{INVOKE_PAYLOAD_LIMIT} bytes a synchronous Lambda invocation carries (about 4.5 MB of image); "
                "send it with the http backend, or put it in S3 for the function's S3 route (docs/deployment.md)"
            )
        answer = self._invoke(event)
        return self._fetched(answer)

    def ask_health(self) -> Answer:
        return self._invoke(_event("GET", "/health", {}, b""))

    def _invoke(self, event: bytes) -> Answer:
        kwargs: dict[str, Any] = {"FunctionName": self.settings.function, "Payload": event}
        if self.settings.qualifier:
            kwargs["Qualifier"] = self.settings.qualifier
        try:
            response = self._client.invoke(**kwargs)
            payload = response["Payload"].read()
        except Exception as exc:
            raise self._transport_error(exc) from exc
        if response.get("FunctionError"):
            raise self._function_error(payload)
        try:
            proxy = json.loads(payload)
            status = int(proxy["statusCode"])
            headers = {str(k).lower(): str(v) for k, v in (proxy.get("headers") or {}).items()}
            text = proxy.get("body") or ""
            data = base64.b64decode(text, validate=True) if proxy.get("isBase64Encoded") else text.encode("utf-8")
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise self._not_heicconv(f"its answer is not an HTTP proxy response ({exc})") from exc
        return Answer(status, headers, data)

    def _fetched(self, answer: Answer) -> Answer:
        """An output too large for a Lambda response arrives as a presigned S3 URL (HEICCONV_LAMBDA_OVERSIZE=s3)."""
        if answer.status != 200 or not answer.headers.get("content-type", "").startswith("application/json"):
            return answer
        link = json.loads(answer.body)
        if not isinstance(link, dict) or "url" not in link:
            return answer
        try:
            with urllib.request.urlopen(str(link["url"]), timeout=self.settings.timeout) as resp:
                data = resp.read()
        except Exception as exc:
            raise self._transport_error(exc) from exc
        return Answer(200, {**answer.headers, "content-type": str(link.get("content_type", ""))}, data)

    def _function_error(self, payload: bytes) -> HeicconvError:
        """The function raised instead of answering (its handler answers errors as HTTP, so this is a crash)."""
        try:
            failure = json.loads(payload)
            kind, message = str(failure.get("errorType", "")), str(failure.get("errorMessage", ""))
        except (ValueError, AttributeError):
            kind, message = "", payload[:200].decode("utf-8", "replace")
        cls = getattr(errors, kind, None)
        cls = cls if isinstance(cls, type) and issubclass(cls, HeicconvError) else HeicconvError
        if "Task timed out" in message:
            cls = TimeoutError
        return cls(f"{message} ({self.where} failed: {kind or 'error'})")

    def _transport_error(self, exc: BaseException) -> HeicconvError:
        name = type(exc).__name__
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "") if hasattr(exc, "response") else ""
        if "Timeout" in name or "timed out" in str(exc):
            return TimeoutError(f"backend 'lambda': {self.where} did not answer within {self.settings.timeout:g} s")
        if code == "RequestEntityTooLargeException":
            return LimitExceededError(f"backend 'lambda': {self.where} refused the request as too large: {exc}")
        if code == "ResourceNotFoundException":
            return ConfigError(f"lambda.function: {self.where} does not exist: {exc}")
        return BackendUnavailableError(f"backend 'lambda': cannot invoke {self.where}: {name}: {exc}")


def _event(method: str, path: str, query: Mapping[str, str], body: bytes) -> bytes:
    """An API Gateway HTTP API (payload 2.0) request, as the handler's HTTP route reads it."""
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": urllib.parse.urlencode(query),
        "queryStringParameters": dict(query),
        "headers": {"content-type": "application/octet-stream"},
        "requestContext": {"http": {"method": method, "path": path}},
        "body": base64.b64encode(body).decode("ascii"),
        "isBase64Encoded": True,
    }
    return json.dumps(event).encode("utf-8")
