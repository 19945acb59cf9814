"""The Lambda handler's settings, from ``heicconv.config.section("lambda")``.

Set them as ``HEICCONV_LAMBDA_<KEY>`` environment variables on the function (or
in a ``[lambda]`` table of a bundled ``heicconv.toml``). Backend, options and
limits are heicconv's own settings (``HEICCONV_BACKEND``, ``HEICCONV_QUALITY``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..backends.remotes import LAMBDA_CALLER_KEYS
from ..config import Section
from ..errors import ConfigError

__all__ = ["LAMBDA_RESPONSE_LIMIT", "LambdaSettings", "load"]

#: Lambda's cap on a synchronous response (Invoke API reference, checked 2026-11).
LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024


@dataclass(frozen=True)
class LambdaSettings:
    """What the handler does with S3 notifications and HTTP requests."""

    format: str = "jpeg"  # output format for S3 objects, and for requests that name none
    output_bucket: str = ""  # "" writes next to the source, in the source's bucket
    output_prefix: str = "converted/"
    oversize: str = "error"  # a response above max_response_bytes: "error" (413) or "s3" (presigned URL)
    oversize_bucket: str = ""  # "" uses output_bucket
    oversize_prefix: str = "oversize/"
    url_expires: int = 900  # seconds a presigned URL stays valid
    max_response_bytes: int = LAMBDA_RESPONSE_LIMIT  # the whole JSON response, base64 body included
    metrics: bool = True  # one CloudWatch Embedded Metric Format line per invocation that converted
    metrics_namespace: str = "heicconv"  # the CloudWatch namespace of those metrics


_KEYS = (
    "format",
    "output_bucket",
    "output_prefix",
    "oversize",
    "oversize_bucket",
    "oversize_prefix",
    "url_expires",
    "max_response_bytes",
    "metrics",
    "metrics_namespace",
)


def load() -> LambdaSettings:
    """Read and validate the ``[lambda]`` settings; raises ``ConfigError`` naming the bad key."""
    s = Section("lambda")
    s.check_keys(_KEYS + LAMBDA_CALLER_KEYS)  # the table also holds the keys of the `lambda` backend that calls it
    d = LambdaSettings()
    cfg = LambdaSettings(
        format=s.output_format("format", d.format),
        output_bucket=s.string("output_bucket", d.output_bucket).strip(),
        output_prefix=s.string("output_prefix", d.output_prefix).lstrip("/"),
        oversize=s.choice("oversize", d.oversize, ("error", "s3")),
        oversize_bucket=s.string("oversize_bucket", d.oversize_bucket).strip(),
        oversize_prefix=s.string("oversize_prefix", d.oversize_prefix).lstrip("/"),
        url_expires=s.integer("url_expires", d.url_expires, 1),
        max_response_bytes=s.integer("max_response_bytes", d.max_response_bytes, 1024),
        metrics=s.flag("metrics", d.metrics),
        metrics_namespace=s.string("metrics_namespace", d.metrics_namespace).strip() or d.metrics_namespace,
    )
    if cfg.oversize == "s3" and not (cfg.oversize_bucket or cfg.output_bucket):
        raise ConfigError(
            "lambda.oversize: 's3' needs a bucket; set HEICCONV_LAMBDA_OVERSIZE_BUCKET or HEICCONV_LAMBDA_OUTPUT_BUCKET"
        )
    return cfg
