"""``heicconv worker`` as a real process against moto's S3 and SQS server on loopback.

S3 itself (moto) sends the notifications: the bucket is configured to notify the queue, so the
messages are the ones S3 writes, keys form-encoded. The queue has a dead-letter queue
(``maxReceiveCount`` 1), so a message the worker leaves for redelivery is seen moving there.
moto and boto3 come with the ``test`` extra; where ``HEICCONV_REQUIRE_BACKENDS`` is set (CI) a
missing one fails these tests instead of skipping them.
"""

from __future__ import annotations

import http.client
import io
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, unquote_plus

import pytest
from PIL import Image
from plugin_backends import faulty_backend_env
from test_lambda import moto_server

from heicconv.errors import ConfigError
from heicconv.testing.fixtures import make_heic

_names = itertools.count()


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """moto's server (S3 and SQS on one port) on 127.0.0.1; the environment points boto3 at it."""
    with moto_server("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SQS") as url:
        yield url


@pytest.fixture
def aws(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    import boto3

    monkeypatch.setenv("HEICCONV_BACKEND", "pillow")
    return boto3.client("s3"), boto3.client("sqs")


def make_queue(sqs: Any, *, visibility: int = 30) -> tuple[str, str]:
    """A queue whose messages move to a dead-letter queue after one failed receive: (queue URL, DLQ URL)."""
    n = next(_names)
    dlq = sqs.create_queue(QueueName=f"dead-{n}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "1"})
    attributes = {"RedrivePolicy": policy, "VisibilityTimeout": str(visibility)}
    return sqs.create_queue(QueueName=f"uploads-{n}", Attributes=attributes)["QueueUrl"], dlq


def make_bucket(s3: Any, sqs: Any, queue: str | None = None) -> str:
    """A bucket; with ``queue``, S3 notifies it of every object created."""
    bucket = f"photos-{next(_names)}"
    s3.create_bucket(Bucket=bucket)
    if queue:
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        config = {"QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]}
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)
    return bucket


def s3_notification(bucket: str, key: str) -> str:
    return json.dumps(
        {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key), "size": 1}},
                }
            ]
        }
    )


def counts(sqs: Any, queue: str) -> tuple[int, int]:
    """(visible, in flight) messages of a queue."""
    a = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


def worker(queue: str, *args: str, env: dict[str, str] | None = None, **popen: Any) -> subprocess.Popen[str]:
    """The real command line, as a container would run it."""
    cmd = [sys.executable, "-m", "heicconv", "worker", "--queue", queue, "--wait-time", "1", *args]
    environment = {**os.environ, **(env or {})}
    return subprocess.Popen(cmd, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str]:
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def jpeg_size(s3: Any, bucket: str, key: str) -> tuple[int, int]:
    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["ContentType"] == "image/jpeg"
    with Image.open(io.BytesIO(got["Body"].read())) as img:
        assert img.format == "JPEG"
        return img.size


def test_drain_converts_deletes_and_leaves_the_bad_for_the_dead_letter_queue(aws: tuple[Any, Any]) -> None:
    s3, sqs = aws
    queue, dlq = make_queue(sqs, visibility=3)
    bucket = make_bucket(s3, sqs, queue)
    heic = make_heic(size=(64, 48))
    good = ["up/IMG 0001 (2).HEIC", "up/a+b.heic", "up/plain.heic"]
    for key in good:
        s3.put_object(Bucket=bucket, Key=key, Body=heic)
    s3.put_object(Bucket=bucket, Key="up/cut.heic", Body=heic[:300])
    # The other envelopes the Lambda handler reads from SQS: SNS (without raw delivery) and EventBridge.
    other = make_bucket(s3, sqs)
    s3.put_object(Bucket=other, Key="sns photo.heic", Body=heic)
    s3.put_object(Bucket=other, Key="eventbridge photo.heic", Body=heic)
    sqs.send_message(
        QueueUrl=queue,
        MessageBody=json.dumps({"Type": "Notification", "Message": s3_notification(other, "sns photo.heic")}),
    )
    eventbridge = {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": other}, "object": {"key": "eventbridge photo.heic", "size": len(heic)}},
    }
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(eventbridge))
    sqs.send_message(QueueUrl=queue, MessageBody="this is not a notification")

    code, err = finish(worker(queue, "--drain", "-j", "2", "--visibility-timeout", "3"))

    assert code == 1, err  # messages were left for redelivery
    for key in good:
        assert jpeg_size(s3, bucket, "converted/" + key.rsplit(".", 1)[0] + ".jpg") == (64, 48)
    for key in ("converted/sns photo.jpg", "converted/eventbridge photo.jpg"):
        assert jpeg_size(s3, other, key) == (64, 48)
    listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert "converted/up/cut.jpg" not in listed
    # Everything converted (or skipped: the notifications of the worker's own outputs) is deleted;
    # only the corrupted photo's message and the unreadable one are left, hidden until redelivery.
    assert counts(sqs, queue) == (0, 2)
    assert "up/cut.heic" in err and "undecodable" in err and "left for redelivery" in err
    time.sleep(3.5)  # their visibility timeout: they come back, and their next receive moves them on
    assert sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0).get("Messages", []) == []
    dead = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    bodies = sorted((m["Body"] for m in dead), key=len)
    assert len(bodies) == 2 and bodies[0] == "this is not a notification"
    assert json.loads(bodies[1])["Records"][0]["s3"]["object"]["key"] == quote_plus("up/cut.heic")


def test_a_notification_delivered_twice_is_converted_once(aws: tuple[Any, Any]) -> None:
    """SQS delivers at least once: the second delivery finds the output written from the same source and skips it."""
    s3, sqs = aws
    queue, _ = make_queue(sqs)
    bucket = make_bucket(s3, sqs)
    s3.put_object(Bucket=bucket, Key="twice.heic", Body=make_heic(size=(64, 48)))
    for _ in range(2):
        sqs.send_message(QueueUrl=queue, MessageBody=s3_notification(bucket, "twice.heic"))
    code, err = finish(worker(queue, "--drain", "-j", "1"))
    assert code == 0, err
    assert err.count("skipped: already converted from this source") == 1, err
    assert "2 message(s) received, 2 deleted, 0 left for redelivery" in err and counts(sqs, queue) == (0, 0)
    assert jpeg_size(s3, bucket, "converted/twice.jpg") == (64, 48)


def test_the_heartbeat_keeps_a_slow_conversion_hidden(aws: tuple[Any, Any], tmp_path: Path) -> None:
    s3, sqs = aws
    queue, dlq = make_queue(sqs, visibility=6)
    bucket = make_bucket(s3, sqs, queue)
    s3.put_object(Bucket=bucket, Key="slow.heic", Body=make_heic(size=(1200, 900)))
    # The conversion takes 14 s, more than twice the 6 s visibility timeout: without the heartbeat the
    # message would be visible again (and, with maxReceiveCount 1, go to the dead-letter queue) meanwhile.
    proc = worker(queue, "--drain", "--visibility-timeout", "6", env=faulty_backend_env(tmp_path, "14"))
    try:
        deadline = time.monotonic() + 60
        while counts(sqs, queue) != (0, 1):  # received: hidden while it converts
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the worker never received the notification"
            time.sleep(0.2)
        received, seen = time.monotonic(), []
        while time.monotonic() - received < 12:
            seen.append(counts(sqs, queue))
            time.sleep(0.5)
        code, err = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert set(seen) == {(0, 1)}, seen
    assert code == 0, err
    assert jpeg_size(s3, bucket, "converted/slow.jpg") == (1200, 900)
    # The photo's message is deleted; what may be left is S3's notification of the worker's own output,
    # if it arrived after the drain's last receive (a worker that keeps running skips it).
    left = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
    keys = [unquote_plus(json.loads(m["Body"])["Records"][0]["s3"]["object"]["key"]) for m in left]
    assert set(keys) <= {"converted/slow.jpg"}, keys
    assert sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=0).get("Messages", []) == []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _health(port: int) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/health")
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


@pytest.mark.parametrize("stop_timeout", ["0", "20"], ids=["release", "finish"])
def test_sigterm_mid_batch_loses_nothing(aws: tuple[Any, Any], stop_timeout: str) -> None:
    s3, sqs = aws
    queue, _ = make_queue(sqs, visibility=60)  # a message still hidden after exit would stay so for a minute
    bucket = make_bucket(s3, sqs)
    keys = [f"batch/photo {i}.heic" for i in range(12)]
    heic = make_heic(size=(320, 240))
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=heic)
        sqs.send_message(QueueUrl=queue, MessageBody=s3_notification(bucket, key))
    port = _free_port()
    env = {"HEICCONV_LAMBDA_FORMAT": "avif"}  # the slowest encoder: a conversion is under way when the signal lands
    proc = worker(queue, "-j", "1", "--health-port", str(port), "--stop-timeout", stop_timeout, env=env)
    deadline = time.monotonic() + 40
    checked = False
    while True:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
        try:
            status, health = _health(port)
        except OSError:
            time.sleep(0.1)
            continue
        if not checked:
            # The images' HEALTHCHECK (docker/healthcheck.py) reads the same port when the worker runs there.
            check = [sys.executable, str(Path(__file__).parent.parent / "docker" / "healthcheck.py")]
            env_check = {**os.environ, "HEICCONV_SERVER_PORT": str(port)}
            assert subprocess.run(check, env=env_check, timeout=30).returncode == 0
            checked = True
            continue
        if health["deleted"] >= 1 and health["in_flight"] >= 1:
            break
        time.sleep(0.05)
    assert status == 200 and health["status"] == "ok" and health["jobs"] == 1
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    assert code == 0, err

    summary = err.strip().splitlines()[-1]
    deleted = int(summary.split(" deleted")[0].rsplit(" ", 1)[1])
    written = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="converted/").get("Contents", [])}
    visible, hidden = counts(sqs, queue)
    # Every message is either done (its output written, then deleted) or back in the queue at once.
    # A released conversion may still have written its output: it is converted again (at least once).
    assert hidden == 0
    assert 1 <= deleted < len(keys)
    assert visible == len(keys) - deleted
    assert deleted <= len(written) <= deleted + 1
    released = int(summary.split(" released")[0].rsplit(" ", 1)[1])
    if stop_timeout == "0":
        assert released >= 1  # the conversion under way was handed back, not waited for
    else:
        # It was allowed to finish and was deleted; only a message a receive brought after the signal is released.
        assert len(written) == deleted and released <= 1
    # A second worker picks up the rest: every photo converted exactly once in all.
    code, err = finish(worker(queue, "--drain", env=env))
    assert code == 0, err
    written = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="converted/")["Contents"]}
    assert written == {"converted/" + k.replace(".heic", ".avif") for k in keys}
    assert counts(sqs, queue) == (0, 0)


def test_one_photo_gives_the_same_bytes_on_every_route(aws: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """S3 -> Lambda handler, S3 -> SQS -> worker and a Batch Operations task: same backend and options, same bytes."""
    from heicconv.aws_lambda import handler

    s3, sqs = aws
    queue, _ = make_queue(sqs)
    bucket = make_bucket(s3, sqs)
    key = "in/IMG 0042.HEIC"
    s3.put_object(Bucket=bucket, Key=key, Body=make_heic(size=(160, 120)))
    monkeypatch.setenv("HEICCONV_QUALITY", "77")

    monkeypatch.setenv("HEICCONV_LAMBDA_OUTPUT_PREFIX", "lambda/")
    answer = handler(json.loads(s3_notification(bucket, key)), None)
    assert answer["results"][0]["status"] == "converted", answer

    sqs.send_message(QueueUrl=queue, MessageBody=s3_notification(bucket, key))
    code, err = finish(worker(queue, "--drain", env={"HEICCONV_LAMBDA_OUTPUT_PREFIX": "worker/"}))
    assert code == 0, err

    monkeypatch.setenv("HEICCONV_LAMBDA_OUTPUT_PREFIX", "batch/")
    task = {"taskId": "t1", "s3Key": quote_plus(key), "s3VersionId": None, "s3Bucket": bucket}
    batch = handler({"invocationSchemaVersion": "2.0", "invocationId": "i", "job": {"id": "j"}, "tasks": [task]}, None)
    assert batch["results"][0]["resultCode"] == "Succeeded", batch

    outputs = [
        s3.get_object(Bucket=bucket, Key=f"{route}/in/IMG 0042.jpg")["Body"].read()
        for route in ("lambda", "worker", "batch")
    ]
    assert outputs[0][:3] == b"\xff\xd8\xff"
    assert outputs[0] == outputs[1] == outputs[2]


def test_a_queue_it_cannot_read_stops_the_start(aws: tuple[Any, Any], endpoint: str) -> None:
    code, err = finish(worker(f"{endpoint}/123456789012/no-such-queue", "--drain"))
    assert code == 2
    assert "cannot read the queue" in err and "no-such-queue" in err
    code, err = finish(worker("", "--drain"))
    assert code == 2 and "the SQS queue URL is required" in err


def test_the_region_comes_from_aws_region_alone_or_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore reads AWS_DEFAULT_REGION only; a container platform may set AWS_REGION alone."""
    from heicconv.aws_lambda import aws

    monkeypatch.setattr(aws, "_clients", {})
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    assert aws.sqs().meta.region_name == "eu-west-3"
    monkeypatch.setattr(aws, "_clients", {})
    monkeypatch.delenv("AWS_REGION")
    with pytest.raises(ConfigError, match="AWS_DEFAULT_REGION"):
        aws.sqs()


def _metrics(port: int) -> tuple[str, str]:
    """``GET /metrics`` of the worker's health port: (Content-Type, text)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        assert resp.status == 200
        return resp.getheader("Content-Type", ""), resp.read().decode()
    finally:
        conn.close()


def test_metrics_count_messages_objects_and_conversions(aws: tuple[Any, Any]) -> None:
    """One count: what /health says as JSON, /metrics says to Prometheus, with the service's conversion figures."""
    from test_server_observability import metric

    import heicconv
    from heicconv.aws_lambda.queue_worker import load
    from heicconv.aws_lambda.queue_worker.worker import QueueWorker
    from heicconv.aws_lambda.settings import load as load_output

    s3, sqs = aws
    queue, _ = make_queue(sqs, visibility=3)
    bucket = make_bucket(s3, sqs)  # no notifications from S3: the test sends exactly these three
    heic = make_heic(size=(64, 48))
    s3.put_object(Bucket=bucket, Key="good.heic", Body=heic)
    s3.put_object(Bucket=bucket, Key="cut.heic", Body=heic[:300])
    for key in ("good.heic", "cut.heic"):
        sqs.send_message(QueueUrl=queue, MessageBody=s3_notification(bucket, key))
    sqs.send_message(QueueUrl=queue, MessageBody="this is not a notification")

    settings = load(queue=queue, jobs=1, wait_time=1, visibility_timeout=3)
    worker = QueueWorker(settings, load_output(), drain=True)
    assert worker.run() == 1  # two messages left for redelivery
    text = worker.metrics.exposition().decode()

    assert metric(text, "heicconv_queue_messages_received_total") == 3
    assert metric(text, "heicconv_queue_messages_deleted_total") == 1
    assert metric(text, "heicconv_queue_messages_failed_total") == 2
    assert metric(text, "heicconv_queue_objects_converted_total") == 1
    assert metric(text, "heicconv_queue_objects_failed_total") == 1
    assert metric(text, "heicconv_queue_messages_in_flight") == 0
    ok = {"backend": "pillow", "input_format": "heic", "output_format": "jpeg"}
    assert metric(text, "heicconv_conversions_total", outcome="ok", **ok) == 1
    assert metric(text, "heicconv_conversions_total", outcome="DecodeError", input_format="heic") == 1
    assert metric(text, "heicconv_conversion_seconds_count", backend="pillow", output_format="jpeg") == 2  # both
    assert metric(text, "heicconv_input_bytes_total") == len(heic) + 300
    written = s3.get_object(Bucket=bucket, Key="converted/good.jpg")["ContentLength"]
    assert metric(text, "heicconv_output_bytes_total") == written
    assert metric(text, "heicconv_build_info", version=heicconv.__version__, backend="pillow") == 1


def test_metrics_on_the_health_port_count_worker_restarts_and_renewals(aws: tuple[Any, Any], tmp_path: Path) -> None:
    """/metrics beside /health; and JSON log lines, each about a message carrying its id as request_id."""
    s3, sqs = aws
    queue, _ = make_queue(sqs, visibility=3)  # renewed every second while the conversion runs
    bucket = make_bucket(s3, sqs)
    s3.put_object(Bucket=bucket, Key="slow.heic", Body=make_heic(size=(1200, 900)))
    message_id = sqs.send_message(QueueUrl=queue, MessageBody=s3_notification(bucket, "slow.heic"))["MessageId"]
    port = _free_port()
    env = faulty_backend_env(tmp_path, "30")  # far beyond --timeout: the worker process is stopped
    args = (
        "-j",
        "1",
        "--health-port",
        str(port),
        "--timeout",
        "2",
        "--visibility-timeout",
        "3",
        "--log-format",
        "json",
    )
    proc = worker(queue, *args, env=env)
    from test_server_observability import metric

    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
            try:
                content_type, text = _metrics(port)
            except OSError:
                time.sleep(0.2)
                continue
            if metric(text, "heicconv_worker_restarts_total", cause="timeout") >= 1:
                break
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        code, err = finish(proc)
    assert code == 0, err
    assert content_type.startswith("text/plain; version=")
    assert metric(text, "heicconv_conversions_total", backend="faulty", outcome="TimeoutError") == 1
    assert metric(text, "heicconv_queue_visibility_extensions_total") >= 1  # 2 s of conversion: renewed at 1 s
    assert metric(text, "heicconv_queue_messages_received_total") == 1
    assert metric(text, "heicconv_build_info", backend="faulty") == 1
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert lines[-1]["message"].startswith("worker stopped: ") and "request_id" not in lines[-1]
    failed = [line for line in lines if line["level"] == "error" and "slow.heic failed" in line["message"]]
    assert failed and {line["request_id"] for line in failed} == {message_id}


def test_without_boto3_the_worker_names_its_own_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import heicconv
    from heicconv.aws_lambda.queue_worker import work

    monkeypatch.setitem(sys.modules, "boto3", None)  # as if boto3 were not installed
    with pytest.raises(heicconv.BackendUnavailableError, match=r"pip install 'heicconv\[worker\]'"):
        work(queue="http://127.0.0.1:9/queue", drain=True)
