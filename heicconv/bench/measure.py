"""Run every selected backend on every image, each measurement in a fresh process.

``ru_maxrss`` is a high-water mark that never comes down, so a clean peak memory per image
needs a process per (backend, image, format); the same process start gives the cold-start
cost for free.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..backends import registry
from ..config import settings
from ..errors import ConfigError
from ..options import formats as _formats
from .cost import Workload

__all__ = ["BOOTSTRAP", "Bench", "Measurement", "find_images", "run"]

#: What a worker process runs: the clock starts before heicconv is imported.
BOOTSTRAP = (
    "import time; _started = time.time()\n"
    "import heicconv\n"
    "_imported = time.time()\n"
    "from heicconv.bench.worker import main\n"
    "raise SystemExit(main(_started, _imported))\n"
)

#: Called as ``progress(n, total, "backend image format")`` before the n-th measurement (from 1),
#: and with an empty label when all are done.
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Measurement:
    """One (image, backend, format): medians of ``runs`` warm conversions and the process's peak memory."""

    image: str
    backend: str
    format: str
    runs: int
    input_bytes: int = 0
    width: int = 0
    height: int = 0
    wall_s: float = 0.0  # median decode + encode wall time after the warm-up
    cpu_s: float = 0.0  # median CPU time (all threads)
    walls_s: tuple[float, ...] = ()
    cpus_s: tuple[float, ...] = ()
    first_s: float = 0.0  # the first (cold) conversion: also loads the backend library
    peak_rss_mb: float = 0.0
    base_rss_mb: float = 0.0  # after importing heicconv, before reading the image
    output_bytes: int = 0
    cold_start_s: float = 0.0  # process start to the end of the first conversion
    python_s: float = 0.0  # process start to the first line of Python
    import_s: float = 0.0  # import heicconv
    remote: str = ""  # where a remote backend converts ("http://10.0.0.5:8000"): the times are round trips
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def name(self) -> str:
        return Path(self.image).name

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6

    @property
    def ms_per_mp(self) -> float:
        return self.wall_s * 1000 / self.megapixels if self.megapixels else 0.0

    @property
    def cold_extra_s(self) -> float:
        """What a fresh process adds to a warm conversion."""
        return max(0.0, self.cold_start_s - self.wall_s)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(name=self.name, megapixels=self.megapixels, ms_per_mp=self.ms_per_mp, cold_extra_s=self.cold_extra_s)
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Measurement:
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        for key in ("walls_s", "cpus_s"):
            known[key] = tuple(known.get(key, ()))
        return cls(**known)


@dataclass
class Bench:
    """Everything one run measured, plus what it could not."""

    measurements: list[Measurement] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)  # backend -> why
    versions: dict[str, dict[str, str]] = field(default_factory=dict)  # backend -> library versions
    environment: dict[str, Any] = field(default_factory=dict)
    runs: int = 0

    def backends(self) -> list[str]:
        """Backends with at least one successful measurement, in the order they ran."""
        return list(dict.fromkeys(m.backend for m in self.measurements if m.ok))

    def local_backends(self) -> list[str]:
        """The measured backends that convert in this process: the only workloads a cost can be projected from."""
        remote = {m.backend for m in self.measurements if m.remote}
        return [b for b in self.backends() if b not in remote]

    def remotes(self) -> dict[str, str]:
        """Each measured remote backend and where it converts."""
        return {m.backend: m.remote for m in self.measurements if m.ok and m.remote}

    def workload(self, backend: str) -> Workload:
        """The average conversion of ``backend`` over every image and format measured."""
        ok = [m for m in self.measurements if m.ok and m.backend == backend]
        if not ok:
            raise ConfigError(f"backend {backend!r}: nothing was measured")
        return Workload(
            backend=backend,
            wall_s=statistics.fmean(m.wall_s for m in ok),
            cpu_s=statistics.fmean(m.cpu_s for m in ok),
            peak_rss_mb=max(m.peak_rss_mb for m in ok),
            cold_extra_s=statistics.median(m.cold_extra_s for m in ok),
            max_input_bytes=max(m.input_bytes for m in ok),
            max_output_bytes=max(m.output_bytes for m in ok),
            conversions=len(ok),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "environment": self.environment,
            "versions": self.versions,
            "unavailable": self.unavailable,
            "measurements": [m.to_dict() for m in self.measurements],
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Bench:
        return cls(
            [Measurement.from_dict(m) for m in raw.get("measurements", [])],
            dict(raw.get("unavailable", {})),
            dict(raw.get("versions", {})),
            dict(raw.get("environment", {})),
            int(raw.get("runs", 0)),
        )


def find_images(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files as given; directories searched (recursively) for ``.heic``, ``.heif`` and ``.hif`` files."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(
                p for p in sorted(path.rglob("*")) if p.is_file() and _formats.format_from_suffix(p.suffix) == "heic"
            )
        elif path.is_file():
            found.append(path)
        else:
            raise ConfigError(f"{raw}: no such file or directory")
    return list(dict.fromkeys(found))


def _environment() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from .. import __version__

    return {
        "heicconv": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "options": asdict(settings().options),
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }


def _measure_once(image: Path, backend: str, fmt: str, runs: int, timeout: float, scratch: Path) -> dict[str, Any]:
    result = scratch / f"result-{time.monotonic_ns()}.json"
    job = {"path": str(image), "backend": backend, "format": fmt, "runs": runs, "result": str(result)}
    job["spawned"] = time.time()  # last, so the clock starts as late as possible before the spawn
    try:
        done = subprocess.run(
            [sys.executable, "-c", BOOTSTRAP, json.dumps(job)],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:g} s"}
    try:
        raw: dict[str, Any] = json.loads(result.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        return {"error": f"worker exited with status {done.returncode}: {tail[0]}"}
    finally:
        result.unlink(missing_ok=True)
    return raw


def run(
    paths: Sequence[str | os.PathLike[str]],
    backends: Sequence[str] | None = None,
    formats: Sequence[str] = ("jpeg",),
    runs: int = 3,
    *,
    timeout: float = 900.0,
    progress: Progress | None = None,
) -> Bench:
    """Measure every backend on every image in every format, each in a fresh process.

    ``backends`` defaults to every known local backend (remote ones, ``http`` and ``lambda``, only when
    named: their times are round trips to the configured remote); those that cannot run here are listed
    in ``Bench.unavailable`` with the reason.
    """
    if runs < 1:
        raise ConfigError(f"runs: must be at least 1, got {runs}")
    names = list(backends) if backends else [n for n in registry.known_names() if not registry.is_remote(n)]
    for name in names:
        if name not in registry.registry():
            raise ConfigError(f"backend: unknown backend {name!r}; known: {', '.join(registry.known_names())}")
    fmts = [_formats.normalize(f) for f in formats]
    images = find_images(paths)
    if not images:
        raise ConfigError("no images to measure (directories are searched for .heic, .heif and .hif files)")
    bench = Bench(environment=_environment(), runs=runs)
    total, done = len(names) * len(images) * len(fmts), 0
    with tempfile.TemporaryDirectory(prefix="heicconv-bench-") as tmp:
        for backend in names:
            for image in images:
                for fmt in fmts:
                    done += 1
                    if progress:
                        progress(done, total, f"{backend} {image.name} {fmt}")
                    if backend in bench.unavailable:
                        continue
                    raw = _measure_once(image, backend, fmt, runs, timeout, Path(tmp))
                    if raw.get("unavailable"):
                        bench.unavailable[backend] = str(raw.get("error", ""))
                        continue
                    if "versions" in raw:
                        bench.versions[backend] = dict(raw.pop("versions"))
                    bench.measurements.append(
                        Measurement.from_dict(
                            {**raw, "image": str(image), "backend": backend, "format": fmt, "runs": runs}
                        )
                    )
    if progress:
        progress(total, total, "")
    return bench
