"""The service's worker pool: admission, and what happens to a conversion that runs too long or crashes.

The process pool (the default) runs each conversion in a worker process that is killed when its
request's time is up; these tests check that against a real ``heicconv serve`` by looking for the
worker processes in ``/proc``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from heicconv.server.settings import ServerSettings
from heicconv.testing.fixtures import make_heic
from heicconv.testing.plugin import require_module

require_module("starlette", "server")

from test_server import Server, _json, slow_backend_env, start_server, stop_server  # noqa: E402

from heicconv.server.app import Pool  # noqa: E402  (after the check: it needs starlette)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads worker processes from /proc")


def worker_pids(server: Server) -> set[int]:
    """The server's conversion worker processes (multiprocessing's spawned children)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == server.proc.pid and b"spawn_main" in cmdline:
            found.add(int(entry))
    return found


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(condition: Any, what: str, tries: int = 1000) -> None:
    for _ in range(tries):
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


def health(server: Server) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(server.request("GET", "/health")[2])
    return body


SLOW = make_heic(size=(1200, 900))  # the ``slow`` backend sleeps before converting it
SMALL = make_heic(size=(64, 48))


def test_admission_counts_running_and_waiting() -> None:
    pool = Pool(ServerSettings(workers=1, queue=1, pool="thread"))
    try:
        assert pool.try_acquire() and pool.try_acquire()
        assert not pool.try_acquire() and pool.saturated
        pool.release()
        assert pool.try_acquire()
    finally:
        pool.shutdown()


def test_a_timed_out_conversion_is_stopped_and_the_pool_recovers(tmp_path: Path) -> None:
    srv = start_server(slow_backend_env(tmp_path, 120), "--workers", "1", "--queue", "0", "--timeout", "1")
    try:
        assert health(srv)["pool"] == "process"  # the default
        (before,) = worker_pids(srv)
        started = time.monotonic()
        payload = _json(*srv.post("/convert?format=png", SLOW), 504)
        assert time.monotonic() - started < 60  # answered at the timeout, not when the work would end
        assert payload["error"] == "timeout" and "its worker was stopped" in payload["message"]
        # The work itself ends: the worker that ran it is killed and a fresh one takes its place.
        wait_for(lambda: not alive(before), "the timed-out worker exits")
        wait_for(lambda: health(srv)["inflight"] == 0, "the slot is freed")
        # The replacement imports heicconv before it takes work; on a loaded machine that can take longer
        # than this service's 1 s timeout, so a request may time out (504) while it starts, and hold the
        # one slot (429) until it has.
        for _ in range(100):
            status, headers, _ = srv.post("/convert?format=png", SMALL)
            if status not in (429, 504):
                break
            time.sleep(0.1)
        (after,) = worker_pids(srv)
    finally:
        stop_server(srv)
    assert status == 200 and headers["content-type"] == "image/png"
    assert after != before


def test_a_crashed_worker_fails_one_request_and_the_pool_recovers(tmp_path: Path) -> None:
    srv = start_server(slow_backend_env(tmp_path, 120), "--workers", "1", "--queue", "0")
    try:
        (worker,) = worker_pids(srv)
        answers: list[tuple[int, dict[str, str], bytes]] = []
        request = threading.Thread(target=lambda: answers.append(srv.post("/convert?format=png", SLOW)))
        request.start()
        wait_for(lambda: health(srv)["inflight"] == 1, "the conversion starts")
        os.kill(worker, signal.SIGSEGV)  # what a crash in a native decoder does
        request.join(60)
        crashed = _json(*answers[0], 422)
        status, _, _ = srv.post("/convert?format=png", SMALL)
    finally:
        stop_server(srv)
    assert crashed["error"] == "undecodable" and "exit code -11" in crashed["message"]
    assert status == 200


def test_a_thread_cannot_be_stopped_so_its_slot_stays_taken_until_it_ends(tmp_path: Path) -> None:
    flags = ("--pool", "thread", "--workers", "1", "--queue", "0", "--timeout", "0.5")
    srv = start_server(slow_backend_env(tmp_path, 4), *flags)
    try:
        payload = _json(*srv.post("/convert?format=png", SLOW), 504)
        assert "it runs on in its thread" in payload["message"]
        busy = srv.post("/convert?format=png", SMALL)  # the slot is still the slow conversion's
        wait_for(lambda: health(srv)["inflight"] == 0, "the thread's conversion ends", tries=6000)
        status = srv.post("/convert?format=png", SMALL)[0]
    finally:
        stop_server(srv)
    assert _json(*busy, 429)["error"] == "busy"
    assert status == 200
