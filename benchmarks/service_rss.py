"""Resident memory of ``heicconv serve`` over many requests, in the configurations heicconv ships.

    python benchmarks/service_rss.py [--requests 1000] [--configs pillow,vips,wand,serve] [--pool thread]

Each configuration is a real ``python -m heicconv serve`` process on a loopback port, started with
the ``ENV`` lines of ``docker/Dockerfile.<name>`` (``serve`` is the bare command with no
environment at all, as ``pip install 'heicconv[server]'`` users run it). Clients send
``--requests`` conversions, ``--clients`` at a time, cycling through the corpus's real photos
(``$HEICCONV_CORPUS/real``) or, without it, generated ones of 1 to 12 MP, to JPEG, WebP and PNG.
RSS is the sum over the server and its worker processes, read from ``/proc`` after a warm-up and
every ``--every`` requests. Flat means the last figure is close to the one after the warm-up. The
service's timeout is raised (``--serve-args``) so that a slow, shared machine does not turn requests
into 504s, which in the process pool would also replace workers and hide their growth.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = ("/convert?format=jpeg", "/convert?format=webp&max_size=2048", "/convert?format=png&max_size=1024")


def dockerfile_env(name: str) -> dict[str, str]:
    """The variables the image's ``ENV`` lines set (later lines win), without host and port."""
    text = (ROOT / "docker" / f"Dockerfile.{name}").read_text(encoding="utf-8")
    env: dict[str, str] = {}
    for match in re.finditer(r"^ENV\s+((?:.*\\\n)*.*)$", text, re.M):
        for word in shlex.split(match.group(1).replace("\\\n", " ")):
            key, _, value = word.partition("=")
            env[key] = value
    env.pop("HEICCONV_SERVER_HOST", None)
    env.pop("HEICCONV_SERVER_PORT", None)
    return env


def photos() -> list[bytes]:
    corpus = os.environ.get("HEICCONV_CORPUS")
    if corpus:
        real = Path(corpus, "real")
        names = ("pug.heic", "xiaomi.heic", "arrow.heic", "iphone16promax_ios18.heic", "nokia_alpha.heic", "cat.hif")
        found = [(real / n).read_bytes() for n in names if (real / n).is_file()]
        if found:
            return found
    from heicconv.testing.fixtures import make_heic

    return [make_heic(size=s, quality=80) for s in ((4032, 3024), (1600, 1200), (3000, 2000), (1024, 768))]


def tree_rss_mb(pid: int) -> float:
    """RSS of ``pid`` and every descendant, in MB."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            with open(f"/proc/{p}/statm", encoding="ascii") as fh:
                total += int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            continue
    return total / (1024 * 1024)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def post(port: int, path: str, body: bytes) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "image/heic"})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def run(config: str, args: argparse.Namespace, images: list[bytes]) -> dict[str, object]:
    port = free_port()
    image_env = dockerfile_env(config) if config != "serve" else {}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEICCONV_", "MALLOC_"))}
    env.update(image_env)
    cmd = [sys.executable, "-m", "heicconv", "serve", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--log-level", "warning", "--workers", str(args.workers)]
    if args.pool:
        cmd += ["--pool", args.pool]
    cmd += shlex.split(args.serve_args)
    log = open(args.server_log, "ab") if args.server_log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            try:
                if post(port, "/convert?format=jpeg", images[-1]) == 200:
                    break
            except OSError:
                time.sleep(0.1)
        statuses: dict[int | str, int] = {}
        curve: list[tuple[int, float]] = []
        lock = threading.Lock()
        counter = iter(range(args.warmup + args.requests))
        done = [0]

        def client() -> None:
            for i in counter:
                try:
                    status: int | str = post(port, REQUESTS[i % len(REQUESTS)], images[i % len(images)])
                except OSError as exc:  # counted, so that a failing run shows instead of ending early
                    status = type(exc).__name__
                with lock:
                    statuses[status] = statuses.get(status, 0) + 1
                    done[0] += 1
                    n = done[0] - args.warmup
                    if n == 0 or (n > 0 and n % args.every == 0):
                        curve.append((n, round(tree_rss_mb(proc.pid), 1)))
                        print(f"  {config}: {n} requests, {curve[-1][1]} MB", file=sys.stderr, flush=True)

        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - start
    finally:
        proc.terminate()
        proc.wait(30)
        if args.server_log:
            log.close()  # type: ignore[union-attr]
    after_warmup = curve[0][1]
    end = curve[-1][1]
    return {
        "config": config,
        "pool": args.pool or "default",
        "env": image_env,
        "statuses": statuses,
        "seconds": round(elapsed, 1),
        "rss_after_warmup_mb": after_warmup,
        "rss_end_mb": end,
        "rss_max_mb": max(v for _, v in curve),
        "curve": curve,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--configs", default="pillow,vips,wand,serve")
    parser.add_argument("--pool", choices=("thread", "process"), help="default: the configuration's own")
    parser.add_argument("--serve-args", default="--timeout 600", help="more flags for heicconv serve")
    parser.add_argument("--server-log", help="append the service's output to this file")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    images = photos()
    results = []
    head = f"RSS after {args.warmup} warm-up requests (MB) | after {args.requests} (MB) | max (MB)"
    print(f"| configuration | pool | {head} | statuses |")
    print("|---|---|---:|---:|---:|---|")
    for config in args.configs.split(","):
        r = run(config, args, images)
        results.append(r)
        print(
            f"| {config} | {r['pool']} | {r['rss_after_warmup_mb']} | {r['rss_end_mb']} | {r['rss_max_mb']} "
            f"| {r['statuses']} |",
            flush=True,
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
