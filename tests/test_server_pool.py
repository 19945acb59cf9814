"""The service's worker pool on its own: admission, and recovery when a worker process dies."""

from __future__ import annotations

import asyncio
import os

import pytest

from heicconv.server import api
from heicconv.server.settings import ServerSettings
from heicconv.testing.fixtures import make_heic

pytest.importorskip("starlette", reason="pip install 'heicconv[server]'")

from heicconv.server.app import Pool  # after the skip: it needs starlette


def _crash(request: api.Request) -> api.Reply:
    os._exit(3)  # what a segfault in a native decoder looks like to the pool


def test_admission_counts_running_and_waiting() -> None:
    pool = Pool(ServerSettings(workers=1, queue=1))
    try:
        assert pool.try_acquire() and pool.try_acquire()
        assert not pool.try_acquire()
        pool.release()
        assert pool.try_acquire()
    finally:
        pool.shutdown()


def test_a_dead_worker_process_fails_one_request_and_the_pool_recovers() -> None:
    pool = Pool(ServerSettings(workers=1, queue=1, pool="process"))
    request = api.parse_request({"format": "png"}, {}, make_heic(size=(32, 24)))

    async def scenario() -> tuple[api.Reply, api.Reply]:
        assert pool.try_acquire()
        crashed = await pool.convert(request, _crash)
        assert pool.try_acquire()
        after = await pool.convert(request)
        return crashed, after

    try:
        crashed, after = asyncio.run(scenario())
    finally:
        pool.shutdown()
    assert crashed.status == 500 and b"worker_crashed" in crashed.body
    assert after.status == 200 and after.content_type == "image/png"
    assert pool.inflight == 0
