"""The one place heicconv reaches boto3, imported only when an event needs S3 (or the queue worker, SQS)."""

from __future__ import annotations

import os
from typing import Any

from ..errors import BackendUnavailableError, ConfigError

__all__ = ["s3", "sqs"]

_clients: dict[tuple[str, str], Any] = {}


def s3() -> Any:
    """A cached S3 client (reused across warm invocations); honours ``AWS_ENDPOINT_URL_S3``."""
    return _client("s3")


def sqs() -> Any:
    """A cached SQS client (the queue worker's); honours ``AWS_ENDPOINT_URL_SQS``."""
    return _client("sqs")


def _client(service: str) -> Any:
    """boto3 reads the endpoint variables itself; they are part of the key so that a changed one takes effect.

    Create clients before starting threads: boto3's default session is not safe to share while it builds one.
    """
    endpoint = os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}") or os.environ.get("AWS_ENDPOINT_URL") or ""
    client = _clients.get((service, endpoint))
    if client is None:
        try:
            import boto3
        except ImportError as exc:
            raise BackendUnavailableError(
                f"{service.upper()} needs boto3; the Lambda runtime has it, elsewhere pip install 'heicconv[lambda]'"
            ) from exc
        # botocore reads AWS_DEFAULT_REGION only; Lambda sets both, some container platforms AWS_REGION alone.
        region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or None
        try:
            client = _clients[(service, endpoint)] = boto3.client(service, region_name=region)
        except Exception as exc:
            if type(exc).__name__ != "NoRegionError":
                raise
            raise ConfigError(
                f"{service.upper()} needs a region: set AWS_DEFAULT_REGION (or AWS_REGION, or a profile's region)"
            ) from exc
    return client
