"""A load test a team can rerun: ``heicconv serve`` under 1, 2, 4 and 8 concurrent clients, with real photos.

    python benchmarks/load_test.py [--photos DIR] [--clients 1,2,4,8] [--seconds 20] [--query "format=jpeg&..."]
                                   [--url http://host:port] [--token T] [--serve-args "--workers 2"]
    python benchmarks/load_test.py --thumbor http://127.0.0.1:8888   # the same photos through thumbor

Without ``--url`` it starts ``heicconv serve`` on a loopback port (``--serve-args`` added, the
backend from ``HEICCONV_BACKEND``, default pillow) and stops it at the end; with ``--url`` it loads
a service that runs already (send ``--token`` if it asks for one). Each client posts the photos of
``--photos`` (default: the corpus's phone photos, ``$HEICCONV_CORPUS/real``) one after another,
round robin, for ``--seconds`` per step; the default request is what a web page asks for (a JPEG at
most 2048 pixels on its longer side, quality 85). Each step reports requests per second, p50 and
p99 latency, and the statuses; ``--json FILE`` writes the figures. Nothing here is asserted. Every
client comes from 127.0.0.1: beyond 8 clients, add ``--serve-args "--uploads-per-client 0"`` (or the
service answers the ninth body 429, as it would one address sending too many at once).

``--thumbor URL`` asks a running thumbor for the same outputs instead
(``GET /unsafe/fit-in/2048x2048/filters:format(jpeg):quality(85)/<photo>``), with its file loader's
root at the photos' folder: thumbor reads each photo from its disk where heicconv receives it in
the request, which favours thumbor a little. docs/performance.md gives thumbor's configuration.
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
import urllib.parse
from pathlib import Path
from typing import Any

#: Phone and camera photos of the corpus that every backend reads (docs/performance.md names them).
PHOTOS = ("pug.heic", "arrow.heic", "xiaomi.heic", "cat.hif", "nokia_alpha.heic", "L_exif_xmp_iptc.heic")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def call(url: urllib.parse.SplitResult, path: str, body: bytes | None, headers: dict[str, str]) -> int:
    """One request (POST with a body, else GET); its status once the whole answer is read."""
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80, timeout=300)
    try:
        if body is None:
            conn.request("GET", path, headers=headers)
        else:
            conn.request("POST", path, body=body, headers={"Content-Type": "application/octet-stream", **headers})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def step(send: Any, count: int, clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` threads calling ``send(i)`` (photo ``i`` of ``count``) for ``seconds``; latencies and statuses."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def client(n: int) -> None:
        i = n
        while time.monotonic() < end:
            t0 = time.perf_counter()
            status = send(i % count)
            elapsed = time.perf_counter() - t0
            i += 1
            with lock:
                statuses[str(status)] = statuses.get(str(status), 0) + 1
                if status == 200:
                    latencies.append(elapsed)

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - started
    return {
        "clients": clients,
        "requests_ok": len(latencies),
        "throughput_rps": round(len(latencies) / wall, 2),
        "p50_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
        "p99_ms": round(1000 * percentile(latencies, 0.99), 1) if latencies else None,
        "statuses": statuses,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    corpus = Path(os.environ.get("HEICCONV_CORPUS", "../shared/corpus")) / "real"
    parser.add_argument("--photos", type=Path, default=corpus, help=f"a folder of photos (default {corpus})")
    parser.add_argument("--clients", default="1,2,4,8")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--query", default="format=jpeg&max_size=2048&quality=85")
    parser.add_argument("--url", help="a service that runs already")
    parser.add_argument("--thumbor", help="a thumbor that runs already, its file loader rooted at --photos")
    parser.add_argument("--token", default="", help="sent as Authorization: Bearer")
    parser.add_argument("--serve-args", default="", help="more flags for heicconv serve")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    names = [n for n in PHOTOS if (args.photos / n).is_file()] or sorted(p.name for p in args.photos.iterdir())
    photos = [(args.photos / n).read_bytes() for n in names]
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    proc = None
    if args.thumbor:
        url = urllib.parse.urlsplit(args.thumbor)
        size = args.query.partition("max_size=")[2].partition("&")[0] or "2048"
        quality = args.query.partition("quality=")[2].partition("&")[0] or "85"
        paths = [f"/unsafe/fit-in/{size}x{size}/filters:format(jpeg):quality({quality})/{n}" for n in names]

        def send(i: int) -> int:
            return call(url, paths[i], None, headers)

    else:
        if args.url:
            url = urllib.parse.urlsplit(args.url)
        else:
            port = free_port()
            url = urllib.parse.urlsplit(f"http://127.0.0.1:{port}")
            env = {k: v for k, v in os.environ.items() if not k.startswith("HEICCONV_SERVER_")}
            env.setdefault("HEICCONV_BACKEND", "pillow")
            cmd = [sys.executable, "-m", "heicconv", "serve", "--host", "127.0.0.1", "--port", str(port)]
            cmd += ["--log-level", "warning", *shlex.split(args.serve_args)]
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        path = f"{url.path.rstrip('/')}/convert?{args.query}"

        def send(i: int) -> int:
            return call(url, path, photos[i], headers)

    try:
        for _ in range(600):  # the service is up, and each photo converts (a warm-up)
            try:
                if all(send(i) == 200 for i in range(len(photos))):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit("the service did not convert every photo")
        steps = [step(send, len(photos), int(c), args.seconds) for c in args.clients.split(",")]
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
    report = {
        "service": args.thumbor or args.url or f"heicconv serve {args.serve_args}".strip(),
        "query": args.query,
        "photos": names,
        "seconds_per_step": args.seconds,
        "cpus": os.cpu_count(),
        "steps": steps,
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
