"""The Lambda handler's settings: the ``[lambda]`` table, read by :func:`heicconv.config.tables.load`.

Set them as ``HEICCONV_LAMBDA_<KEY>`` environment variables on the function (or in a ``[lambda]``
table of a bundled ``heicconv.toml``). Backend, options and limits are heicconv's own settings
(``HEICCONV_BACKEND``, ``HEICCONV_QUALITY``, ...).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..api.web import LAMBDA_CALLER_KEYS
from ..config.rules import choice, flag, integer, output_format, text
from ..config.tables import load as load_table
from ..config.tables import setting

__all__ = ["LAMBDA_RESPONSE_LIMIT", "LambdaSettings", "load"]

#: Lambda's cap on a synchronous response (Invoke API reference, checked 2026-11).
LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024


def _relative(prefix: str) -> str:
    return prefix.lstrip("/")


@dataclass(frozen=True)
class LambdaSettings:
    """What the handler does with S3 notifications and HTTP requests."""

    format: str = setting("jpeg", output_format())  # output format for S3 objects, and for requests that name none
    output_bucket: str = setting("", text(str.strip))  # "" writes next to the source, in the source's bucket
    output_prefix: str = setting("converted/", text(_relative))
    # a response above max_response_bytes: "error" (413) or "s3" (presigned URL)
    oversize: str = setting("error", choice("error", "s3"))
    oversize_bucket: str = setting("", text(str.strip))  # "" uses output_bucket
    oversize_prefix: str = setting("oversize/", text(_relative))
    url_expires: int = setting(900, integer(1))  # seconds a presigned URL stays valid
    # the whole JSON response, base64 body included
    max_response_bytes: int = setting(LAMBDA_RESPONSE_LIMIT, integer(1024))
    metrics: bool = setting(True, flag())  # one CloudWatch Embedded Metric Format line per invocation that converted
    metrics_namespace: str = setting("heicconv", text(str.strip))  # the CloudWatch namespace of those metrics; "": this


def load() -> LambdaSettings:
    """Read and validate the ``[lambda]`` settings; raises ``ConfigError`` naming the bad key."""
    # The table also holds the keys of the `lambda` backend that calls this function.
    loaded = load_table(LambdaSettings, "lambda", others=LAMBDA_CALLER_KEYS)
    cfg = loaded.value
    if cfg.oversize == "s3" and not (cfg.oversize_bucket or cfg.output_bucket):
        raise loaded.fail(
            "oversize", "'s3' needs a bucket: set HEICCONV_LAMBDA_OVERSIZE_BUCKET or HEICCONV_LAMBDA_OUTPUT_BUCKET"
        )
    if not cfg.metrics_namespace:
        cfg = dataclasses.replace(cfg, metrics_namespace=LambdaSettings.metrics_namespace)
    return cfg
