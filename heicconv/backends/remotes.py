"""The remote backends built from their settings: ``[http]`` and the caller's keys of ``[lambda]``.

The registry names these factories for ``http`` and ``lambda``. They read the settings through
:mod:`heicconv.config` (so ``HEICCONV_HTTP_URL`` beats ``[http] url``, and a profile can set either),
and keep one backend per distinct settings (for ``lambda``, and AWS environment: region, profile,
endpoints), so a changed URL or endpoint takes effect and a remote's
``/health`` is asked once per settings, not once per conversion.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from ..config import Section
from .http import HttpBackend, HttpSettings

__all__ = [
    "AWS_VARIABLES",
    "HTTP_KEYS",
    "LAMBDA_CALLER_KEYS",
    "http_backend",
    "http_settings",
    "lambda_backend",
    "lambda_settings",
]

HTTP_KEYS = ("url", "timeout", "token", "auth_header", "verify", "ca_file", "retries")
#: The ``[lambda]`` keys of the caller's side; the function's handler reads the table's other keys.
LAMBDA_CALLER_KEYS = ("function", "qualifier", "region", "timeout", "retries", "staging_bucket", "staging_prefix")

_lock = threading.Lock()
_built: dict[Any, Any] = {}


def http_settings() -> HttpSettings:
    """``[http]`` and ``HEICCONV_HTTP_*``, checked; ``ConfigError`` names a bad key and where it is set."""
    s = Section("http")
    s.check_keys(HTTP_KEYS)
    d = HttpSettings()
    if not s.string("url", "").strip():
        from ..errors import BackendUnavailableError

        raise BackendUnavailableError(
            "backend 'http' needs the service's URL: set HEICCONV_HTTP_URL (or [http] url in the config file)"
        )
    return HttpSettings(
        url=s.string("url", d.url).strip(),
        timeout=s.number("timeout", d.timeout, 0.001),
        token=s.string("token", d.token),
        auth_header=s.string("auth_header", d.auth_header).strip(),
        verify=_flag(s, "verify", d.verify),
        ca_file=s.string("ca_file", d.ca_file),
        retries=s.integer("retries", d.retries, 0, 10),
    )


def lambda_settings() -> Any:
    """The caller's keys of ``[lambda]`` and ``HEICCONV_LAMBDA_*`` (``function``, ``qualifier``, ...)."""
    from .lambda_invoke import LambdaSettings

    s = Section("lambda")  # the handler's keys live here too; it checks the whole table
    d = LambdaSettings()
    return LambdaSettings(
        function=s.string("function", d.function).strip(),
        qualifier=s.string("qualifier", d.qualifier).strip(),
        region=s.string("region", d.region).strip(),
        timeout=s.number("timeout", d.timeout, 0.001),
        retries=s.integer("retries", d.retries, 0, 10),
        staging_bucket=s.string("staging_bucket", d.staging_bucket).strip(),
        staging_prefix=s.string("staging_prefix", d.staging_prefix).lstrip("/"),
    )


def http_backend() -> HttpBackend:
    """The ``http`` backend for the current settings."""
    backend: HttpBackend = _one(HttpBackend, http_settings())
    return backend


#: What boto3 reads from the environment to build the ``lambda`` backend's clients: a change builds another.
AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_LAMBDA",
    "AWS_ENDPOINT_URL_S3",
)


def lambda_backend() -> Any:
    """The ``lambda`` backend for the current settings and AWS environment (needs boto3)."""
    from .lambda_invoke import LambdaBackend

    aws = tuple(os.environ.get(name, "") for name in AWS_VARIABLES)
    return _one(LambdaBackend, lambda_settings(), aws)


def _one(kind: Any, settings: Any, *more: Any) -> Any:
    key = (kind, settings, *more)
    with _lock:
        backend = _built.get(key)
        if backend is None:
            backend = _built[key] = kind(settings)
        return backend


def _flag(s: Section, key: str, default: bool) -> bool:
    from ..options import parse_bool

    value = s.values.get(key, default)
    flag = value if isinstance(value, bool) else parse_bool(value)
    if flag is None:
        raise s.fail(key, "must be true or false")
    return flag
