"""The ``lambda`` backend: the conversion runs in a deployed heicconv Lambda function (``heicconv[lambda]``).

Each conversion is one synchronous ``Invoke`` of the function with an API Gateway (payload 2.0)
``POST /convert`` event, which the function's handler answers as it answers a Function URL. boto3
finds the region, credentials and endpoint the usual way (``AWS_REGION``, the credentials chain,
``AWS_ENDPOINT_URL_LAMBDA`` / ``AWS_ENDPOINT_URL``). Configured by the caller's keys of ``[lambda]`` /
``HEICCONV_LAMBDA_*`` (:data:`LAMBDA_CALLER_KEYS`), read by :func:`read_settings` with the one typed loader
(:func:`heicconv.config.tables.load`); one backend per distinct settings and AWS environment (:data:`AWS_VARIABLES`).

An Invoke carries at most 6 MB each way, and base64 makes an image a third larger. With
``lambda.staging_bucket`` set, an input too large for the event is uploaded to that bucket and the
event carries a presigned GET URL instead; every event also carries a presigned PUT URL, which the
handler uses when the output is too large for its answer. The caller deletes both objects when it is
done, whatever the outcome. The URLs are signed with the caller's credentials, so the function needs
no access to the bucket. Without a bucket, an input too large raises ``LimitExceededError`` before
anything is sent.

botocore signs the Invoke request (and the presigned URLs); heicconv sends it (:mod:`.wire`), so that
``lambda.timeout`` bounds the whole call, uploads, the Invoke and downloads together, however the
endpoint fails. One description of a conversion (:meth:`LambdaBackend._sent`: sign, exchange, clean up) runs
on a blocking socket or, under ``heicconv.convert_async``, on asyncio streams: there nothing waits in a
thread but the signing, a few milliseconds.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import os
import ssl
import time
import urllib.parse
from collections.abc import Callable, Coroutine, Generator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from .. import errors
from ..config.rules import integer, number, text
from ..config.tables import keys, load, setting
from ..errors import BackendUnavailableError, ConfigError, HeicconvError, LimitExceededError, TimeoutError
from .remote import STAGING_KEY, RemoteBackend
from .wire import Answer, Endpoint, Request, drive, drive_async, exchange, exchange_async, target_of, time_left

__all__ = [
    "AWS_VARIABLES",
    "INVOKE_PAYLOAD_LIMIT",
    "LAMBDA_CALLER_KEYS",
    "LambdaBackend",
    "LambdaSettings",
    "read_settings",
]

_T = TypeVar("_T")

#: What boto3 reads from the environment to build the backend's clients: a change builds another backend.
AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_LAMBDA",
    "AWS_ENDPOINT_URL_S3",
)

#: Lambda's cap on a synchronous invocation's request payload (Invoke API reference): 6 MB.
INVOKE_PAYLOAD_LIMIT = 6 * 1024 * 1024

#: Seconds the staged objects' deletion may take after a call whose time ran out (else: the lifecycle rule).
CLEANUP_SECONDS = 1.0

#: The Invoke API's answers worth another try, as botocore's standard retry mode tries them again.
_API_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def _relative(prefix: str) -> str:
    return prefix.lstrip("/")


@dataclass(frozen=True)
class LambdaSettings:
    """Which function, how long to wait, and where large images go (the caller's keys of ``[lambda]``)."""

    function: str = setting("", text(str.strip))  # name, ARN, or name:alias
    qualifier: str = setting("", text(str.strip))  # a version or alias, when the name does not carry one
    region: str = setting("", text(str.strip))  # "" lets boto3 find it (AWS_REGION, the profile)
    # seconds for each call (uploads, Invoke, download, retries); then heicconv.TimeoutError
    timeout: float = setting(120.0, number(0.001))
    # more tries on throttling, the Invoke API's 5xx, and the function's 429 and 503
    retries: int = setting(3, integer(0, 10))
    # S3 bucket for inputs and outputs over the 6 MB Invoke payload; "" refuses them
    staging_bucket: str = setting("", text(str.strip))
    # where staged objects go in it (give it a lifecycle rule)
    staging_prefix: str = setting("heicconv-staging/", text(_relative))


#: The ``[lambda]`` keys of the caller's side; the function's handler reads the table's other keys.
LAMBDA_CALLER_KEYS = tuple(keys(LambdaSettings))


def read_settings() -> LambdaSettings:
    """The caller's keys of ``[lambda]`` and ``HEICCONV_LAMBDA_*`` (``function``, ``qualifier``, ...)."""
    # The handler's keys live in the same table; it checks the whole table (others=LAMBDA_CALLER_KEYS).
    return load(LambdaSettings, "lambda", check_keys=False).value


@dataclass(frozen=True)
class _Staged:
    """The presigned URLs of one conversion's staged objects ("" for an input that travels in the event)."""

    input_put: str
    input_get: str
    input_delete: str
    output_put: str
    output_get: str
    output_delete: str

    def for_function(self) -> dict[str, str]:
        return {"input": self.input_get, "output": self.output_put} if self.input_get else {"output": self.output_put}

    def leftovers(self, answer: Answer | None) -> list[str]:
        """What to delete once the call is over: the input if it was staged, the output if it may exist."""
        urls = [self.input_delete] if self.input_delete else []
        if answer is None or _staged_output(answer):
            urls.append(self.output_delete)
        return urls


@dataclass
class _Call:
    """One conversion's Invoke, ready to send: the signed request, the staged objects; then the function's answer."""

    invoke: Request
    staged: _Staged | None
    answer: Answer | None = None  # what the function answered, once it has


class _Captured(Exception):
    """Carries botocore's signed Invoke request out of ``client.invoke`` before it is sent."""

    def __init__(self, request: Any) -> None:
        super().__init__("captured")
        self.request = request


class LambdaBackend(RemoteBackend):
    name = "lambda"
    settings: LambdaSettings

    @classmethod
    def configured(cls) -> tuple[LambdaSettings, tuple[str, ...]]:
        return read_settings(), tuple(os.environ.get(name, "") for name in AWS_VARIABLES)

    def start(self, settings: LambdaSettings) -> None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError as exc:
            raise BackendUnavailableError(f"backend 'lambda' needs boto3 ({exc})") from exc
        if not settings.function:
            raise ConfigError("lambda.function: set HEICCONV_LAMBDA_FUNCTION (a name, ARN or name:alias)")
        self.settings = settings
        self.timeout = settings.timeout
        self.tls_hint = " (see AWS_CA_BUNDLE)"
        self.retries = settings.retries
        self.where = f"Lambda function {settings.function}" + (f":{settings.qualifier}" if settings.qualifier else "")
        region = settings.region or None
        # This client only signs: its requests are captured before botocore sends them, and heicconv sends them.
        self._signer: Any = boto3.client("lambda", region_name=region, config=Config(retries={"total_max_attempts": 1}))
        self._signer.meta.events.register("before-send.lambda.Invoke", _capture)
        self._tls = _tls_context()
        self._s3: Any = (
            boto3.client("s3", region_name=region, config=Config(signature_version="s3v4"))
            if settings.staging_bucket
            else None
        )

    def send(self, query: Mapping[str, str], body: bytes, deadline: float) -> Answer:
        return _blocking(self._sent(query, body, deadline, _BLOCKING))

    async def send_async(self, query: Mapping[str, str], body: bytes, deadline: float) -> Answer:
        return await self._sent(query, body, deadline, _ASYNCIO)

    def ask_health(self, deadline: float) -> Answer:
        try:
            return self._invoke_answer(exchange(*self._signed(_event("GET", "/health", {}, b"")), time_left(deadline)))
        except Exception as exc:
            raise self.transport_error(exc) from exc

    # -- one conversion, whichever way it is sent -------------------------------------------------
    async def _sent(self, query: Mapping[str, str], body: bytes, deadline: float, io: _Io) -> Answer:
        """Sign (off the event loop: CPU, and a credentials refresh), exchange, and delete what was staged."""
        call = await io.off_loop(self._plan, query, body)
        try:
            return await io.drive(self._exchanges(call, body), deadline)
        except Exception as exc:
            raise self.transport_error(exc) from exc
        finally:
            until = _cleanup_deadline(deadline)
            for request in self._leftovers(call):
                with contextlib.suppress(Exception):  # a leftover is the lifecycle rule's to remove
                    await io.exchange(request, time_left(until))

    def _exchanges(self, call: _Call, body: bytes) -> Generator[Request, Answer, Answer]:
        """Upload a staged input, Invoke, download a staged or oversize output: yields each request, is sent
        its answer, and returns the function's answer with the image in it."""
        if call.staged is not None and call.staged.input_put:
            self._check((yield self._presigned_request("PUT", call.staged.input_put, body)), "input")
        call.answer = answer = self._invoke_answer((yield call.invoke))
        link = self._download_link(answer, call.staged)
        if link is None:
            return answer
        return self._downloaded(answer, (yield self._presigned_request("GET", link)))

    def _leftovers(self, call: _Call) -> list[Request]:
        urls = call.staged.leftovers(call.answer) if call.staged is not None else []
        return [self._presigned_request("DELETE", url) for url in urls]

    def _presigned_request(self, method: str, url: str, body: bytes | None = None) -> Request:
        return Endpoint.of(url, self._tls), method, target_of(url), body, {}

    def _invoke_answer(self, api: Answer) -> Answer:
        """The function's answer from the Invoke API's HTTP answer, as botocore would read it."""
        if api.status == 200:
            return self._proxy_answer(api.body, bool(api.headers.get("x-amz-function-error")))
        kind = api.headers.get("x-amzn-errortype", "").partition(":")[0]
        try:
            detail = json.loads(api.body)
            message = str(detail.get("message") or detail.get("Message") or "")
        except (ValueError, AttributeError):
            message = api.body[:200].decode("utf-8", "replace")
        if api.status in _API_RETRY_STATUSES:  # throttled, or Lambda's own trouble: retried with backoff
            said = "throttled the invocation" if api.status == 429 else f"answered {api.status}"
            busy = {"error": "busy", "message": f"Lambda {said} ({kind}: {message})", "status": api.status}
            status = api.status if api.status == 429 else 503
            return Answer(status, {"content-type": "application/json"}, json.dumps(busy).encode())
        raise self._api_error(kind, f"An error occurred ({kind}) when calling the Invoke operation: {message}")

    # -- the call --------------------------------------------------------------------------------
    def _plan(self, query: Mapping[str, str], body: bytes) -> _Call:
        """The event, with the input in it or staged in S3, and the presigned URLs; the Invoke request signed."""
        staged = None
        event = _event("POST", "/convert", query, body)
        if self._s3 is None:
            if len(event) > INVOKE_PAYLOAD_LIMIT:
                raise LimitExceededError(
                    f"the input is {len(body)} bytes: base64-encoded in its event that is {len(event)} bytes, over "
                    f"the {INVOKE_PAYLOAD_LIMIT} bytes a synchronous Lambda invocation carries (about 4.5 MB of "
                    "image); set HEICCONV_LAMBDA_STAGING_BUCKET (lambda.staging_bucket) to send it through S3, "
                    "or use the http backend"
                )
        else:
            staged = self._presigned(inline=True)
            event = _event("POST", "/convert", query, body, staged.for_function())
            if len(event) > INVOKE_PAYLOAD_LIMIT:
                staged = self._presigned(inline=False)
                event = _event("POST", "/convert", query, b"", staged.for_function())
        return _Call(self._signed(event), staged)

    def _signed(self, event: bytes) -> Request:
        """The Invoke request of ``event``, signed by botocore with the caller's credentials."""
        kwargs: dict[str, Any] = {"FunctionName": self.settings.function, "Payload": event}
        if self.settings.qualifier:
            kwargs["Qualifier"] = self.settings.qualifier
        try:
            self._signer.invoke(**kwargs)
        except _Captured as captured:
            prepared = captured.request
            headers = {str(k): v.decode() if isinstance(v, bytes) else str(v) for k, v in prepared.headers.items()}
            url = str(prepared.url)
            return Endpoint.of(url, self._tls), "POST", target_of(url), event, headers
        except Exception as exc:
            raise BackendUnavailableError(
                f"backend 'lambda': cannot sign the Invoke request for {self.where}: {type(exc).__name__}: {exc}"
            ) from exc
        raise BackendUnavailableError("backend 'lambda': botocore sent the Invoke request instead of signing it")

    def _presigned(self, *, inline: bool) -> _Staged:
        import uuid  # here: it imports `platform`, which the Lambda handler's cold start need not pay

        bucket, key = self.settings.staging_bucket, f"{self.settings.staging_prefix}{uuid.uuid4().hex}"
        expires = int(self.settings.timeout) + 300  # the function may start late, then convert for up to timeout

        def url(method: str, name: str) -> str:
            params = {"Bucket": bucket, "Key": f"{key}/{name}"}
            try:
                return str(self._s3.generate_presigned_url(method, Params=params, ExpiresIn=expires))
            except Exception as exc:  # no credentials, most likely
                raise BackendUnavailableError(
                    f"backend 'lambda': cannot sign the staging URLs for s3://{bucket}: {type(exc).__name__}: {exc}"
                ) from exc

        if inline:
            return _Staged(
                "", "", "", url("put_object", "output"), url("get_object", "output"), url("delete_object", "output")
            )
        return _Staged(
            url("put_object", "input"),
            url("get_object", "input"),
            url("delete_object", "input"),
            url("put_object", "output"),
            url("get_object", "output"),
            url("delete_object", "output"),
        )

    def _download_link(self, answer: Answer, staged: _Staged | None) -> str | None:
        """Where the image is when it did not fit in the answer: the staged output, or the function's oversize URL."""
        if _staged_output(answer):
            if staged is None:
                raise self._not_heicconv("it staged an output it was given no URL for")
            return staged.output_get
        link = _json_link(answer)
        return str(link["url"]) if link is not None else None

    def _downloaded(self, answer: Answer, fetched: Answer) -> Answer:
        self._check(fetched, "output")
        link = _json_link(answer) or json.loads(answer.body)
        return Answer(200, {**answer.headers, "content-type": str(link.get("content_type", ""))}, fetched.body)

    def _check(self, s3: Answer, what: str) -> None:
        if not 200 <= s3.status < 300:
            text = s3.body[:300].decode("utf-8", "replace").strip()
            raise BackendUnavailableError(
                f"backend 'lambda': S3 answered {s3.status} for the staged {what} "
                f"(lambda.staging_bucket {self.settings.staging_bucket!r}): {text}"
            )

    # -- answers ---------------------------------------------------------------------------------
    def _proxy_answer(self, payload: bytes, function_error: bool) -> Answer:
        if function_error:
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

    def _api_error(self, code: str, text: str) -> HeicconvError:
        """The heicconv error of a failed Invoke API call (``code``: its error type)."""
        if code == "RequestEntityTooLargeException":
            return LimitExceededError(f"backend 'lambda': {self.where} refused the request as too large: {text}")
        if code == "ResourceNotFoundException":
            return ConfigError(f"lambda.function: {self.where} does not exist: {text}")
        return BackendUnavailableError(f"backend 'lambda': cannot invoke {self.where}: {text}")


class _Io:
    """How :meth:`LambdaBackend._sent` does its I/O, here on a blocking socket: these awaits never suspend, so
    :func:`_blocking` runs the conversion to its end without an event loop."""

    async def off_loop(self, step: Callable[..., _T], *args: Any) -> _T:
        return step(*args)

    async def drive(self, steps: Generator[Request, Answer, Answer], deadline: float) -> Answer:
        return drive(steps, deadline)

    async def exchange(self, request: Request, timeout: float) -> Answer:
        return exchange(*request, timeout)


class _Asyncio(_Io):
    """The same I/O on asyncio streams, for ``send_async``; a step that would block the loop runs in a thread."""

    async def off_loop(self, step: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.to_thread(step, *args)

    async def drive(self, steps: Generator[Request, Answer, Answer], deadline: float) -> Answer:
        return await drive_async(steps, deadline)

    async def exchange(self, request: Request, timeout: float) -> Answer:
        return await exchange_async(*request, timeout)


_BLOCKING, _ASYNCIO = _Io(), _Asyncio()


def _blocking(steps: Coroutine[Any, Any, _T]) -> _T:
    """The value of a coroutine that never suspends (one run with :data:`_BLOCKING`), without an event loop."""
    try:
        steps.send(None)
    except StopIteration as done:
        value: _T = done.value
        return value
    steps.close()
    raise RuntimeError("a blocking step suspended")


def _capture(request: Any, **_: Any) -> None:
    raise _Captured(request)


def _cleanup_deadline(deadline: float) -> float:
    """When deleting staged objects ends: with the call's time, or :data:`CLEANUP_SECONDS` from now if it is up."""
    return max(deadline, time.monotonic() + CLEANUP_SECONDS)


def _tls_context() -> ssl.SSLContext | None:
    """The CA bundle botocore would verify with (``AWS_CA_BUNDLE``, the profile's ``ca_bundle``); None: the system's."""
    import botocore.session

    bundle = botocore.session.Session().get_config_variable("ca_bundle")
    return ssl.create_default_context(cafile=bundle) if bundle else None


def _staged_output(answer: Answer) -> bool:
    link = _json_link(answer, key="staged")
    return link is not None


def _json_link(answer: Answer, key: str = "url") -> dict[str, Any] | None:
    """The JSON answer that points at the image elsewhere (``{"url": ...}``, ``{"staged": "output"}``), if it is one."""
    if answer.status != 200 or not answer.headers.get("content-type", "").startswith("application/json"):
        return None
    try:
        payload = json.loads(answer.body)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) and key in payload else None


def _event(
    method: str, path: str, query: Mapping[str, str], body: bytes, staging: Mapping[str, str] | None = None
) -> bytes:
    """An API Gateway HTTP API (payload 2.0) request, as the handler's HTTP route reads it; plus staged objects."""
    event: dict[str, Any] = {
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
    if staging:
        event[STAGING_KEY] = dict(staging)
    return json.dumps(event).encode("utf-8")
