"""Backends installed the way a third-party package installs one (an entry point), for tests that need a
backend to misbehave in a process the test does not control: the service's or a pool's spawned workers."""

from __future__ import annotations

import os
from pathlib import Path

# Each sleeps, crashes or hangs inside ``run`` for photos 1000 pixels wide or more, as HEICCONV_TEST_FAULT
# says, and converts smaller ones at once (to show that the pool still works afterwards).
_SOURCE = """
import os
import signal
import time

from heicconv.backends.pillow import PillowBackend


class FaultyBackend(PillowBackend):
    name = "faulty"

    def run(self, job):
        if job.source.width >= 1000:
            fault = os.environ["HEICCONV_TEST_FAULT"]
            if fault == "crash":
                os.kill(os.getpid(), signal.SIGSEGV)
            time.sleep(float(fault))
        return super().run(job)
"""


def install_backend(directory: Path, name: str, source: str, cls: str) -> dict[str, str]:
    """Install module ``{name}_backend`` (``source``, defining class ``cls``) as backend ``name`` in
    ``directory``, with the entry point a package would declare; returns the environment (``PYTHONPATH``,
    ``HEICCONV_BACKEND``) in which a new process finds and selects it."""
    (directory / f"{name}_backend.py").write_text(source)
    info = directory / f"heicconv_{name}_backend-1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: heicconv-{name}-backend\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[heicconv.backends]\n{name} = {name}_backend:{cls}\n")
    path = os.pathsep.join(filter(None, [str(directory), os.environ.get("PYTHONPATH", "")]))
    return {"HEICCONV_BACKEND": name, "PYTHONPATH": path}


def faulty_backend_env(directory: Path, fault: str) -> dict[str, str]:
    """Environment in which backend ``faulty`` exists: ``fault`` is ``"crash"`` (SIGSEGV, as a native decoder's
    crash) or a number of seconds to sleep before converting a photo 1000 pixels wide or more."""
    return {**install_backend(directory, "faulty", _SOURCE, "FaultyBackend"), "HEICCONV_TEST_FAULT": fault}
