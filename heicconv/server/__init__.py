"""The HTTP service behind ``heicconv serve`` (``pip install 'heicconv[server]'``).

Importing this package imports neither Starlette nor uvicorn: :mod:`.api` (the
transport-free request handling, shared with the Lambda handler) and
:mod:`.settings` use the standard library only; :mod:`.app` and :func:`serve`
load the web stack when the service starts.
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Any

from ..errors import BackendUnavailableError

__all__ = ["cap_malloc_arenas", "serve"]

#: glibc's arenas a long-running process may use; MALLOC_ARENA_MAX in the environment wins.
MALLOC_ARENAS = 2


def serve(**overrides: Any) -> None:
    """Run the service until interrupted; ``overrides`` win over ``[server]`` and ``HEICCONV_SERVER_*``."""
    try:
        import uvicorn

        from .app import create_app
    except ImportError as exc:
        raise BackendUnavailableError(
            f"the HTTP service needs uvicorn and starlette ({exc}); install them with pip install 'heicconv[server]'"
        ) from exc
    from ..config import settings as core_settings
    from .settings import load

    core_settings()  # a bad HEICCONV_* value or config file stops the start, naming the key
    settings = load(**overrides)
    cap_malloc_arenas()
    app = create_app(settings)
    # One process: the pool inside it is what bounds CPU use (see docs/deployment.md).
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level, access_log=False)


def cap_malloc_arenas() -> int | None:
    """Keep glibc from giving each conversion thread its own heap arena; returns the cap, or ``None`` off glibc.

    Freed image buffers stay in per-thread arenas, so a threaded service's RSS climbs for hundreds of
    requests (docs/deployment.md has the measurements). Capping the arenas here covers this process;
    exporting ``MALLOC_ARENA_MAX`` covers the worker processes it starts, which read it when they start.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        cap = int(os.environ.setdefault("MALLOC_ARENA_MAX", str(MALLOC_ARENAS)))
        libc = ctypes.CDLL("libc.so.6")
        m_arena_max = -8  # from glibc's malloc.h
        if libc.mallopt(m_arena_max, cap) != 1:
            return None
    except (OSError, AttributeError, ValueError):  # not glibc (musl has no arenas), or a bad MALLOC_ARENA_MAX
        return None
    return cap
