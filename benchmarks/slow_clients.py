"""What stalled uploads do to ``heicconv serve``: a real service, raw sockets that stop mid-body.

    python benchmarks/slow_clients.py [--stalled 2] [--addresses 1] [--seconds 20] [--serve-args "--body-timeout 10"]

The service runs with ``--workers 1 --queue 1`` (plus ``--serve-args``). ``--stalled`` clients send
their headers and 100 bytes of a 100 KB body, then nothing; they come from ``--addresses`` client
addresses (127.0.0.2, 127.0.0.3, ...: Linux routes all of 127/8 to this machine), the well-behaved
client from 127.0.0.1. Meanwhile that client converts a 640x480 HEIC to JPEG again and again for
``--seconds``, and ``/health`` is polled. The report gives the well-behaved client's statuses and
latencies (and how long after the stalled clients connected its first 200 came), what ``/health``
(and ``/ready``) said, and when and how each stalled client was answered.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shlex
import socket
import statistics
import subprocess
import sys
import threading
import time


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "image/heic"} if body else {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def stall(port: int, source: str, start: float, answers: list[tuple[float, str]]) -> None:
    """From ``source``: send headers and 100 bytes of body, then wait for whatever the server does."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=600, source_address=(source, 0))
    head = f"POST /convert HTTP/1.1\r\nHost: x\r\nContent-Type: image/heic\r\nContent-Length: {100_000}\r\n\r\n"
    sock.sendall(head.encode() + bytes(100))
    data = b""
    with sock:
        while chunk := sock.recv(65536):
            data += chunk
    status = data.split(b" ", 2)[1].decode() if data else "closed without an answer"
    answers.append((round(time.monotonic() - start, 1), status))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stalled", type=int, default=2)
    parser.add_argument("--addresses", type=int, default=1, help="client addresses the stalled clients come from")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--serve-args", default="", help="more flags for heicconv serve")
    parser.add_argument("--wait", type=float, default=15, help="seconds to wait for the stalled clients' answers")
    args = parser.parse_args(argv)
    from heicconv.testing.fixtures import make_heic

    photo = make_heic(size=(640, 480), quality=80)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEICCONV_")}
    env["HEICCONV_BACKEND"] = "pillow"
    cmd = [sys.executable, "-m", "heicconv", "serve", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", "1", "--queue", "1", "--log-level", "warning", *shlex.split(args.serve_args)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                if request(port, "POST", "/convert", photo)[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        start = time.monotonic()
        answers: list[tuple[float, str]] = []
        sources = [f"127.0.{2 + n // 250}.{2 + n % 250}" for n in range(args.addresses)]
        stalls = [
            threading.Thread(target=stall, args=(port, sources[n % args.addresses], start, answers), daemon=True)
            for n in range(args.stalled)
        ]
        for t in stalls:
            t.start()
        time.sleep(0.5)
        statuses: dict[int, int] = {}
        latencies: list[float] = []
        health: dict[str, int] = {}
        first_200: float | None = None
        while time.monotonic() - start < args.seconds:
            t0 = time.monotonic()
            status, _ = request(port, "POST", "/convert?format=jpeg", photo)
            latencies.append(time.monotonic() - t0)
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200 and first_200 is None:
                first_200 = time.monotonic() - start
            for path in ("/health", "/ready"):
                code, body = request(port, "GET", path)
                said = json.loads(body).get("status", "?") if code != 404 else "no such route"
                health[f"{path} {code} {said}"] = health.get(f"{path} {code} {said}", 0) + 1
        for t in stalls:
            t.join(max(0.0, args.seconds + args.wait - (time.monotonic() - start)))
    finally:
        proc.terminate()
        try:
            proc.wait(15)
            stopped = "on SIGTERM"
        except subprocess.TimeoutExpired:  # a graceful shutdown waits for open requests
            proc.kill()
            proc.wait(15)
            stopped = "only by SIGKILL (SIGTERM waited for the stalled requests)"
    ok = sorted(latencies)
    report = {
        "serve_args": args.serve_args,
        "stalled_clients": args.stalled,
        "stalled_addresses": args.addresses,
        "first_200_after_s": round(first_200, 2) if first_200 is not None else None,
        "well_behaved_requests": len(latencies),
        "statuses": statuses,
        "latency_p50_ms": round(statistics.median(ok) * 1000, 1) if ok else None,
        "latency_max_ms": round(ok[-1] * 1000, 1) if ok else None,
        "health_and_ready": health,
        "stalled_answered_at_s": sorted(answers),
        "stalled_not_answered": args.stalled - len(answers),
        "server_stopped": stopped,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
