"""Throughput of ``heicconv worker`` through S3 and SQS (moto on loopback), against converting from disk.

    python benchmarks/queue_worker.py [--photos 48] [--jobs 1,2] [--format jpeg] [--repeat 1]

The photos are the corpus's readable ones (``$HEICCONV_CORPUS/real`` and ``synthetic``, those the
worker's 50 MP endpoint default admits), cycled to ``--photos`` objects; without a corpus,
generated ones. For each ``-j`` value: upload them to a moto bucket, send one S3 notification per
object to a moto queue, run the real ``python -m heicconv worker --drain -j N`` and time it. The
worker's start (Python, boto3, the worker processes) is timed on an empty queue and reported
apart. The baseline converts the same bytes from disk in this process (``heicconv.convert_with_report``,
the same options), one at a time and, for ``-j 2``, in an ``IsolatedConverter`` of N processes.
"Overhead per message" is (worker time without start - baseline time) / photos: S3 get and put,
SQS receive and delete, the isolated process's pipe. Reports figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import heicconv
from heicconv.api.web import endpoint_settings
from heicconv.api.workers import IsolatedConverter

_AWS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}


def photos(count: int) -> list[tuple[str, bytes]]:
    """(name, bytes) of ``count`` photos the endpoint defaults admit, cycling the corpus."""
    _, limits = endpoint_settings()
    found: list[tuple[str, bytes]] = []
    corpus = os.environ.get("HEICCONV_CORPUS")
    if corpus:
        for sub in ("real", "synthetic"):
            for path in sorted((Path(corpus) / sub).glob("*")):
                data = path.read_bytes()
                try:
                    info = heicconv.probe(data)
                except heicconv.HeicconvError:
                    continue
                if info.width * info.height <= limits.max_pixels:
                    found.append((path.name, data))
    if not found:
        from heicconv.testing.fixtures import make_heic

        found = [
            (f"generated-{w}x{h}.heic", make_heic(size=(w, h))) for w, h in ((1024, 768), (2048, 1536), (640, 480))
        ]
    return [(f"{i:03d} {found[i % len(found)][0]}", found[i % len(found)][1]) for i in range(count)]


def from_disk(items: list[tuple[str, bytes]], fmt: str, jobs: int) -> float:
    options, limits = endpoint_settings()
    start = time.perf_counter()
    if jobs == 1:
        for _, data in items:
            heicconv.convert_with_report(data, fmt, options, limits=limits)
        return time.perf_counter() - start
    with IsolatedConverter(jobs, timeout=300) as pool, ThreadPoolExecutor(jobs) as threads:
        start = time.perf_counter()
        list(threads.map(lambda item: pool.convert_with_report(item[1], fmt, options, limits=limits), items))
        return time.perf_counter() - start


def run_worker(queue: str, jobs: int, env: dict[str, str]) -> float:
    cmd = [sys.executable, "-m", "heicconv", "worker", "--queue", queue, "--drain", "--wait-time", "1", "-j", str(jobs)]
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"worker exited {done.returncode}:\n{done.stderr[-3000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=48)
    parser.add_argument("--jobs", default="1,2")
    parser.add_argument("--format", default="jpeg")
    parser.add_argument("--repeat", type=int, default=1, help="runs per figure; the best is kept")
    args = parser.parse_args()

    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    os.environ.update(_AWS, AWS_ENDPOINT_URL=url)
    env = {**os.environ, "HEICCONV_LAMBDA_FORMAT": args.format}
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    items = photos(args.photos)
    s3.create_bucket(Bucket="bench")
    for name, data in items:
        s3.put_object(Bucket="bench", Key=f"in/{name}", Body=data)
    empty = sqs.create_queue(QueueName="empty")["QueueUrl"]
    startup = min(run_worker(empty, 1, env) for _ in range(args.repeat))
    report: dict[str, Any] = {
        "photos": len(items),
        "distinct": len({data for _, data in items}),
        "megabytes": round(sum(len(d) for _, d in items) / 1e6, 1),
        "format": args.format,
        "worker_start_s": round(startup, 2),
        "runs": [],
    }
    for jobs in (int(j) for j in args.jobs.split(",")):
        worker_times = []
        for attempt in range(args.repeat):
            queue = sqs.create_queue(QueueName=f"bench-{jobs}-{attempt}", Attributes={"VisibilityTimeout": "300"})[
                "QueueUrl"
            ]
            for name, _ in items:
                record = {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                          "s3": {"bucket": {"name": "bench"}, "object": {"key": quote_plus(f"in/{name}")}}}  # fmt: skip
                sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"Records": [record]}))
            worker_times.append(run_worker(queue, jobs, env))
        worker = min(worker_times)
        disk = min(from_disk(items, args.format, jobs) for _ in range(args.repeat))
        net = worker - startup
        report["runs"].append(
            {
                "jobs": jobs,
                "worker_s": round(worker, 2),
                "worker_photos_per_s": round(len(items) / net, 2),
                "disk_s": round(disk, 2),
                "disk_photos_per_s": round(len(items) / disk, 2),
                "overhead_ms_per_message": round(1000 * (net - disk) / len(items), 1),
            }
        )
    server.stop()
    print(json.dumps(report, indent=2))
    print()
    print(f"{report['photos']} photos ({report['distinct']} distinct, {report['megabytes']} MB) to {args.format}; "
          f"worker start {report['worker_start_s']} s (excluded below)")  # fmt: skip
    print("| -j | worker photos/s | from disk photos/s | overhead per message |")
    print("| --- | --- | --- | --- |")
    for r in report["runs"]:
        cells = [r["jobs"], r["worker_photos_per_s"], r["disk_photos_per_s"], f"{r['overhead_ms_per_message']} ms"]
        print("| " + " | ".join(str(c) for c in cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
