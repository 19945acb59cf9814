"""The one place the handler reaches boto3, imported only when an event needs S3."""

from __future__ import annotations

import os
from typing import Any

from ..errors import BackendUnavailableError

__all__ = ["s3"]

_clients: dict[str, Any] = {}


def s3() -> Any:
    """A cached S3 client (reused across warm invocations); honours ``AWS_ENDPOINT_URL_S3``."""
    key = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or ""
    client = _clients.get(key)
    if client is None:
        try:
            import boto3
        except ImportError as exc:
            raise BackendUnavailableError(
                "S3 events need boto3; the Lambda runtime has it, elsewhere pip install 'heicconv[lambda]'"
            ) from exc
        client = _clients[key] = boto3.client("s3")
    return client
