"""The HTTP service behind ``heicconv serve`` (``pip install 'heicconv[server]'``).

Importing this package imports neither Starlette nor uvicorn: :mod:`.settings` uses the
standard library only (the transport-free request handling, shared with the Lambda handler, is
:mod:`heicconv.webapi`); :mod:`.app` and :func:`serve` load the web stack when the service starts.
"""

from __future__ import annotations

from typing import Any

from .. import isolated
from ..errors import BackendUnavailableError

__all__ = ["serve"]


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
    isolated.cap_malloc_arenas()
    app = create_app(settings)
    # One process: the pool inside it is what bounds CPU use (see docs/deployment.md).
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level, access_log=False)
