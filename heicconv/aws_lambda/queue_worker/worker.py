"""The queue worker's loop: receive, convert in isolated processes, delete only what is written.

Threads, each with one job:

- the **poller** long-polls the queue for at most as many messages as there are free slots, so no
  message waits hidden behind another's conversion;
- ``jobs`` **handlers** read each message's S3 objects (:func:`heicconv.aws_lambda.s3_events.objects_in_body`)
  and convert each (:func:`heicconv.aws_lambda.s3_objects.convert_object`), the conversion in a process of
  an :class:`heicconv.api.workers.IsolatedConverter`; the message is deleted once every object is written
  or skipped, and left alone otherwise, so it comes back after its visibility timeout and, after the
  queue's ``maxReceiveCount``, goes to the dead-letter queue;
- the **heartbeat** renews the visibility timeout of every message being converted, every third
  of that timeout, so a slow conversion is never handed to a second worker;
- an optional **health** server answers ``GET /health`` with the counters, and ``GET /metrics`` with
  them and the conversions' figures in Prometheus's text format (:class:`WorkerMetrics`).

On SIGTERM or SIGINT the poller stops; conversions under way get ``stop_timeout`` seconds to end,
and whatever is still in flight then is released (visibility timeout 0), so another worker takes it
at once. Nothing is deleted before its output is written, so nothing is lost either way.
"""

from __future__ import annotations

import json
import logging
import queue
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ... import Limits, Options, Result
from ...api import web as webapi
from ...api.calls import selected_backend
from ...api.metrics import CONTENT_TYPE, ConversionMetrics
from ...api.workers import IsolatedConverter
from ...config.logs import REQUEST_ID
from ...errors import ConfigError, HeicconvError
from ...options import formats
from .. import aws
from ..s3_events import Unrecognised, objects_in_body
from ..s3_objects import convert_object, is_transient
from ..settings import LambdaSettings
from .settings import WorkerSettings

__all__ = ["Counters", "QueueWorker", "WorkerMetrics"]

log = logging.getLogger("heicconv.aws_lambda.queue_worker")


@dataclass
class Counters:
    """What the worker has done since it started (served as ``GET /health``)."""

    polls: int = 0
    received: int = 0
    deleted: int = 0  # messages whose every object was converted or skipped
    failed: int = 0  # messages left for redelivery
    released: int = 0  # messages handed back at shutdown
    renewed: int = 0  # visibility timeouts extended (one a message each time)
    receive_errors: int = 0  # receives from the queue that failed
    converted: int = 0  # objects
    skipped: int = 0
    object_failures: int = 0  # objects that failed (their messages are left for redelivery)
    started: float = field(default_factory=time.time)
    last_poll: float = 0.0


class WorkerMetrics(ConversionMetrics):
    """``GET /metrics`` of the worker: the conversions' figures the service counts too, and the worker's
    :class:`Counters`, read when Prometheus scrapes (one count, served as JSON and as metrics)."""

    def __init__(self, worker: QueueWorker) -> None:
        super().__init__()
        c = worker.counters

        def read(name: str) -> Any:
            return lambda: getattr(c, name)

        self.watch(
            {
                "heicconv_queue_messages_received": ("Messages received from the queue", read("received")),
                "heicconv_queue_messages_deleted": (
                    "Messages deleted: every object they name converted or skipped",
                    read("deleted"),
                ),
                "heicconv_queue_messages_failed": (
                    "Messages left for redelivery (then the dead-letter queue): an object failed, or unreadable",
                    read("failed"),
                ),
                "heicconv_queue_messages_released": (
                    "Messages handed back to the queue at shutdown (visibility timeout 0)",
                    read("released"),
                ),
                "heicconv_queue_visibility_extensions": (
                    "Visibility timeouts extended for messages being converted",
                    read("renewed"),
                ),
                "heicconv_queue_receive_errors": ("Receives from the queue that failed", read("receive_errors")),
                "heicconv_queue_objects_converted": ("S3 objects converted and written", read("converted")),
                "heicconv_queue_objects_skipped": (
                    "S3 objects skipped (the worker's own outputs, outputs already written)",
                    read("skipped"),
                ),
                "heicconv_queue_objects_failed": ("S3 objects that failed", read("object_failures")),
            },
            counters=True,
        )
        self.watch(
            {
                "heicconv_queue_messages_in_flight": ("Messages received and not yet done", worker.in_flight),
                "heicconv_queue_jobs": ("Conversions at once at most (--jobs)", lambda: worker.settings.jobs),
            }
        )


@dataclass
class _Message:
    id: str
    handle: str
    body: str
    receive_count: str
    released: bool = False


class QueueWorker:
    """Converts the S3 objects named by the messages of one SQS queue; ``run()`` returns the exit status."""

    def __init__(self, settings: WorkerSettings, output: LambdaSettings, *, drain: bool = False) -> None:
        self.settings = settings
        self.output = output
        self.drain = drain
        self.counters = Counters()
        self._stop = threading.Event()
        self._lock = threading.Condition()
        self._inflight: dict[str, _Message] = {}
        self._work: queue.Queue[_Message | None] = queue.Queue()
        self._poller_done = threading.Event()
        self._hurry = threading.Event()  # a second signal: release what is in flight now
        self._finished = threading.Event()
        self._pool: IsolatedConverter | None = None
        self._health: ThreadingHTTPServer | None = None
        self.metrics = WorkerMetrics(self)
        try:
            self._backend = selected_backend()[0]
        except HeicconvError:  # the conversions fail and say why; the figures name no backend
            self._backend = "unknown"

    # --- life cycle -------------------------------------------------------------------------------------

    def run(self) -> int:
        """Work until the queue is empty (``drain``) or a signal stops it; 0 done, 1 messages left to retry."""
        s = self.settings
        self._sqs = aws.sqs()  # both clients before any thread: building one is not thread-safe
        aws.s3()
        self._check_queue()
        self._pool = IsolatedConverter(s.jobs, timeout=s.timeout, memory_mb=s.memory_mb)
        self._describe_build()
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self._start_health()
            threads = [
                threading.Thread(target=self._handler, name=f"heicconv-job-{i}", daemon=True) for i in range(s.jobs)
            ]
            threads.append(threading.Thread(target=self._heartbeat, name="heicconv-heartbeat", daemon=True))
            poller = threading.Thread(target=self._poller, name="heicconv-poller", daemon=True)
            for thread in [*threads, poller]:
                thread.start()
            log.info("worker: %s, %d job(s)%s", s.queue, s.jobs, ", until the queue is empty" if self.drain else "")
            while not self._stop.is_set() and not self._poller_done.is_set():
                self._stop.wait(0.2)
            self._shut_down(poller)
        finally:
            self._finished.set()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if self._health is not None:
                self._health.shutdown()
            self._pool.close()
        c = self.counters
        log.info(
            "worker stopped: %d message(s) received, %d deleted, %d left for redelivery, %d released",
            c.received, c.deleted, c.failed, c.released,
        )  # fmt: skip
        return 1 if self.drain and c.failed else 0

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._stop.is_set():
            self._hurry.set()
        log.info("worker: %s received, stopping", signal.Signals(signum).name)
        self._stop.set()
        with self._lock:
            self._lock.notify_all()

    def _check_queue(self) -> None:
        """Fail at start, with the reason, when the queue cannot be read (a wrong URL, no permission)."""
        try:
            self._sqs.get_queue_attributes(QueueUrl=self.settings.queue, AttributeNames=["VisibilityTimeout"])
        except Exception as exc:
            if is_transient(exc):
                log.warning("worker: the queue did not answer yet (%s); polling anyway", exc)
                return
            raise ConfigError(f"cannot read the queue {self.settings.queue}: {type(exc).__name__}: {exc}") from exc

    def _shut_down(self, poller: threading.Thread) -> None:
        """Let conversions under way end within ``stop_timeout``, then release what is still in flight."""
        deadline = time.monotonic() + self.settings.stop_timeout
        with self._lock:
            while self._inflight and time.monotonic() < deadline and not self._hurry.is_set():
                self._lock.wait(min(0.2, max(0.0, deadline - time.monotonic())))
            left = [m for m in self._inflight.values() if not m.released]
            for message in left:
                message.released = True
        self._release(left)
        for _ in range(self.settings.jobs):
            self._work.put(None)
        # A receive under way returns within wait_time; whatever it brings is released by the poller.
        poller.join(self.settings.wait_time + 5)

    # --- the threads --------------------------------------------------------------------------------------

    def _poller(self) -> None:
        s = self.settings
        failures = 0
        try:
            while not self._stop.is_set():
                with self._lock:
                    while len(self._inflight) >= s.jobs and not self._stop.is_set():
                        self._lock.wait(0.5)
                    free = s.jobs - len(self._inflight)
                if self._stop.is_set():
                    return
                try:
                    answer = self._sqs.receive_message(
                        QueueUrl=s.queue,
                        MaxNumberOfMessages=min(10, free),
                        WaitTimeSeconds=s.wait_time,
                        VisibilityTimeout=s.visibility_timeout,
                        MessageSystemAttributeNames=["ApproximateReceiveCount"],
                    )
                except Exception as exc:  # the queue or the network: wait and try again; /health shows it
                    failures += 1
                    with self._lock:
                        self.counters.receive_errors += 1
                    log.error("worker: receiving from the queue failed (%s: %s)", type(exc).__name__, exc)
                    self._stop.wait(min(2.0**failures, 20.0))
                    continue
                failures = 0
                messages = [
                    _Message(m["MessageId"], m["ReceiptHandle"], m.get("Body", ""),
                             m.get("Attributes", {}).get("ApproximateReceiveCount", "?"))
                    for m in answer.get("Messages", [])
                ]  # fmt: skip
                with self._lock:
                    self.counters.polls += 1
                    self.counters.last_poll = time.time()
                    self.counters.received += len(messages)
                    if self._stop.is_set():  # arrived after the signal: hand them straight back
                        self._release(messages)
                        return
                    for message in messages:
                        self._inflight[message.id] = message
                for message in messages:
                    self._work.put(message)
                if self.drain and not messages:
                    with self._lock:
                        while self._inflight and not self._stop.is_set():
                            self._lock.wait(0.5)
                        if not self._inflight:
                            log.info("worker: the queue is empty")
                            return
        finally:
            self._poller_done.set()

    def _handler(self) -> None:
        while True:
            message = self._work.get()
            if message is None:
                return
            handling = REQUEST_ID.set(message.id)  # every line logged about it carries the message id
            try:
                self._handle(message)
            finally:
                REQUEST_ID.reset(handling)

    def _handle(self, message: _Message) -> None:
        try:
            ok = self._convert(message)
        except Exception:  # a bug here must not kill the thread, nor delete the message
            log.exception("worker: message %s", message.id)
            ok = False
        with self._lock:
            self._inflight.pop(message.id, None)
            released = message.released
            self._lock.notify_all()
        if released:
            return
        if ok:
            self._delete(message)
        else:
            with self._lock:
                self.counters.failed += 1

    def _convert(self, message: _Message) -> bool:
        """Convert every object the message names; ``True`` when each was written or skipped."""
        try:
            objects = objects_in_body(message.body, message.id)
        except Unrecognised as exc:
            log.error("message %s (receive %s): %s; left for redelivery, then the dead-letter queue",
                      message.id, message.receive_count, exc)  # fmt: skip
            return False
        ok = True
        for obj in objects:
            outcome = convert_object(obj, self.output, convert=self._convert_isolated)
            with self._lock:
                if outcome.status == "converted":
                    self.counters.converted += 1
                elif outcome.status == "skipped":
                    self.counters.skipped += 1
                else:
                    self.counters.object_failures += 1
            if outcome.status == "skipped":
                log.info("message %s: s3://%s/%s skipped: %s", message.id, obj.bucket, obj.key, outcome.reason)
            elif outcome.failed:
                ok = False
                then = "tried again" if outcome.transient else "the dead-letter queue once maxReceiveCount is reached"
                log.error(
                    "message %s (receive %s): s3://%s/%s failed (%s): left for redelivery, then %s",
                    message.id, message.receive_count, obj.bucket, obj.key, outcome.error["error"], then,
                )  # fmt: skip
        return ok

    def _convert_isolated(self, data: bytes, fmt: str, options: Options, limits: Limits) -> Result:
        """Convert in a worker process, and count it (as the service counts its own)."""
        assert self._pool is not None
        source = formats.label(data)
        started = time.perf_counter()
        try:
            result = self._pool.convert_with_report(data, fmt, options, limits=limits)
        except Exception as exc:
            seconds = time.perf_counter() - started
            self.metrics.count_conversion(self._backend, source, fmt, type(exc).__name__, seconds, len(data), None)
            self.metrics.count_restart(exc)
            raise
        seconds = time.perf_counter() - started
        self.metrics.count_conversion(result.backend, source, fmt, "ok", seconds, len(data), len(result.data))
        return result

    def in_flight(self) -> int:
        """Messages received and not yet deleted, left or released."""
        with self._lock:
            return len(self._inflight)

    def _describe_build(self) -> None:
        try:
            described = webapi.health()
            backend, versions = str(described["backend"]), described["versions"]
        except Exception:  # the conversions say what is wrong; the build info still names the version
            backend, versions = self._backend, {}
        self.metrics.describe_build(backend, versions)

    def _heartbeat(self) -> None:
        """Keep messages under conversion hidden: renew their visibility every third of the timeout."""
        period = max(1.0, self.settings.visibility_timeout / 3)
        while not self._finished.wait(period):
            with self._lock:
                renew = [m for m in self._inflight.values() if not m.released]
            for batch in _chunks(renew, 10):
                self._change_visibility(batch, self.settings.visibility_timeout)

    # --- SQS ------------------------------------------------------------------------------------------------

    def _delete(self, message: _Message) -> None:
        try:
            self._sqs.delete_message(QueueUrl=self.settings.queue, ReceiptHandle=message.handle)
        except Exception as exc:  # it comes back and is converted again (same key, same bytes): nothing lost
            log.error("message %s: converted, but deleting it failed (%s); it will be converted again", message.id, exc)
            with self._lock:
                self.counters.failed += 1
            return
        with self._lock:
            self.counters.deleted += 1

    def _release(self, messages: list[_Message]) -> None:
        """Hand messages back to the queue now (visibility 0) rather than after their visibility timeout."""
        for batch in _chunks(messages, 10):
            self._change_visibility(batch, 0)
        if messages:
            log.info("worker: released %d message(s) to the queue", len(messages))
        with self._lock:
            self.counters.released += len(messages)

    def _change_visibility(self, messages: list[_Message], seconds: int) -> None:
        entries = [
            {"Id": str(i), "ReceiptHandle": m.handle, "VisibilityTimeout": seconds} for i, m in enumerate(messages)
        ]
        try:
            answer = self._sqs.change_message_visibility_batch(QueueUrl=self.settings.queue, Entries=entries)
        except Exception as exc:
            log.error("worker: changing the visibility of %d message(s) failed: %s", len(messages), exc)
            return
        failed = answer.get("Failed", [])
        for failure in failed:
            log.error("worker: changing a message's visibility failed: %s", failure.get("Message", failure))
        if seconds:
            with self._lock:
                self.counters.renewed += len(messages) - len(failed)

    # --- health -----------------------------------------------------------------------------------------------

    def health(self) -> tuple[int, dict[str, Any]]:
        """``(status, body)`` of ``GET /health``: 200 while the poller runs and has polled lately, else 503."""
        with self._lock:
            c = self.counters
            inflight = len(self._inflight)
            body: dict[str, Any] = {
                "queue": self.settings.queue,
                "jobs": self.settings.jobs,
                "in_flight": inflight,
                "polls": c.polls,
                "received": c.received,
                "deleted": c.deleted,
                "failed": c.failed,
                "released": c.released,
                "converted": c.converted,
                "skipped": c.skipped,
                "uptime_s": round(time.time() - c.started, 1),
                "last_poll_s": round(time.time() - c.last_poll, 1) if c.last_poll else None,
            }
        # A poll ends within wait_time; with every slot busy the poller waits for a free one instead.
        stale = self.settings.wait_time + 30
        since = time.time() - (c.last_poll or c.started)
        if self._stop.is_set():
            return 200, {"status": "stopping", **body}
        if self._poller_done.is_set() and not self.drain:
            return 503, {"status": "stopped", **body}
        if since > stale and inflight < self.settings.jobs:
            return 503, {"status": "stalled", **body}
        return 200, {"status": "ok", **body}

    def _start_health(self) -> None:
        if not self.settings.health_port:
            return
        worker = self

        class Health(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0].rstrip("/")
                content_type = "application/json"
                if path == "/metrics":
                    status, data, content_type = 200, worker.metrics.exposition(), CONTENT_TYPE
                else:
                    status, body = worker.health() if path in ("/health", "") else (404, {"error": "not_found"})
                    data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:  # probes every few seconds would flood the log
                pass

        self._health = ThreadingHTTPServer((self.settings.health_host, self.settings.health_port), Health)
        self._health.daemon_threads = True
        threading.Thread(target=self._health.serve_forever, name="heicconv-health", daemon=True).start()
        host, port = self._health.server_address[:2]
        log.info("worker: health on http://%s:%s/health, metrics on /metrics", host, port)


def _chunks(items: list[_Message], size: int) -> Iterator[list[_Message]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
