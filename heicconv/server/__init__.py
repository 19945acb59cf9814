"""The HTTP service behind ``heicconv serve`` (``pip install 'heicconv[server]'``).

Importing this package imports neither Starlette nor uvicorn: :mod:`.settings` and :mod:`.auth` use the
standard library only (the transport-free request handling, shared with the Lambda handler, is
:mod:`heicconv.api.web`); :mod:`.app` and :func:`serve` load the web stack when the service starts.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from ..api import workers as isolated
from ..errors import BackendUnavailableError
from .settings import ServerSettings

log = logging.getLogger("heicconv.server")

__all__ = ["open_to_others", "serve"]


def serve(**overrides: Any) -> None:
    """Run the service until interrupted; ``overrides`` win over ``[server]`` and ``HEICCONV_SERVER_*``."""
    try:
        import uvicorn

        from .app import create_app
        from .connections import protocol
    except ImportError as exc:
        raise BackendUnavailableError(
            f"the HTTP service needs uvicorn, starlette and prometheus-client ({exc}); "
            "install them with pip install 'heicconv[server]'"
        ) from exc
    from ..config import settings as core_settings
    from ..config.logs import setup_logging
    from .settings import load

    core_settings()  # a bad HEICCONV_* value or config file stops the start, naming the key
    settings = load(**overrides)
    setup_logging(settings.log_level, settings.log_format)
    warning = open_to_others(settings)
    if warning:
        log.warning(warning)
    isolated.cap_malloc_arenas()
    app = create_app(settings)
    metrics = app.state.metrics

    def headers_late() -> None:
        metrics.refused.labels("header_timeout").inc()
        log.info("header timeout", extra={"fields": {"refused": "header_timeout", "status": 408}})

    # One process: the pool inside it is what bounds CPU use (see docs/deployment.md).
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,  # setup_logging's handlers: JSON lines, or text on a terminal
        access_log=False,  # one line per request comes from the app, with its request id
        http=protocol(settings.header_timeout, headers_late),
    )


def open_to_others(settings: ServerSettings) -> str | None:
    """The warning to log when the service listens beyond this machine and asks for no token.

    >>> open_to_others(ServerSettings(host="127.0.0.1")) is None
    True
    >>> open_to_others(ServerSettings(host="0.0.0.0"))[:40]
    'heicconv serve listens on 0.0.0.0 and as'
    """
    if settings.token or settings.token_file:
        return None
    host = settings.host.strip("[]")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        loopback = False
    if loopback:
        return None
    return (
        f"heicconv serve listens on {settings.host} and asks for no token: anyone who reaches it can use it; "
        "set HEICCONV_SERVER_TOKEN or server.token_file (docs/operations.md)"
    )
