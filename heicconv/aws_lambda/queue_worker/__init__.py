"""``heicconv worker``: convert the photos an SQS queue of S3 notifications names (the container route).

The queue receives the same messages the Lambda handler reads through SQS: S3 notifications sent
straight to the queue, through SNS (with or without raw message delivery) or through EventBridge.
Each object takes the path the Lambda handler takes (:mod:`heicconv.aws_lambda.s3_objects`): the
same loop guard, output key, options and bytes. Install with ``pip install 'heicconv[worker]'``.
See :mod:`heicconv.aws_lambda.queue_worker.worker` for how messages are received, renewed, deleted and
released, and docs/deployment.md for running it on ECS or Kubernetes.
"""

from __future__ import annotations

from .settings import WorkerSettings, load

__all__ = ["WorkerSettings", "load", "work"]


def work(*, drain: bool = False, **overrides: object) -> int:
    """Run the worker until the queue is empty (``drain``) or SIGTERM; returns the exit status.

    ``overrides`` win over ``[worker]`` and ``HEICCONV_WORKER_*``; the output format, bucket and
    prefix are the Lambda handler's settings (``HEICCONV_LAMBDA_FORMAT``, ...).
    """
    from ...api.workers import cap_malloc_arenas
    from ...config import settings as core_settings
    from ...config.logs import setup_logging
    from ...errors import BackendUnavailableError
    from ..settings import load as load_output

    try:
        import boto3  # noqa: F401  (imported later, per client: without it the first S3 call would name the lambda extra)

        from .worker import QueueWorker
    except ImportError as exc:
        raise BackendUnavailableError(
            f"the queue worker needs boto3 and prometheus-client ({exc}); "
            "install them with pip install 'heicconv[worker]'"
        ) from exc

    core_settings()  # a bad HEICCONV_* value or config file stops the start, naming the key
    settings = load(**overrides)
    setup_logging(settings.log_level, settings.log_format)  # heicconv's lines; botocore's stay the root logger's
    output = load_output()
    cap_malloc_arenas()
    return QueueWorker(settings, output, drain=drain).run()
