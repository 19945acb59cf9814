"""A deadline for a request's line and headers, which uvicorn does not have.

uvicorn closes a keep-alive connection that stays idle, but a connection that sends its headers a
byte at a time (or nothing at all after connecting) is held open for as long as the client likes,
and each one costs a socket. :func:`protocol` gives uvicorn's h11 protocol with one addition: from
the moment a connection opens, or a new request on it begins, the headers must be complete within
``header_timeout`` seconds, else the client gets a 408 and the connection is closed (nginx's
``client_header_timeout``). The h11 protocol is the one uvicorn picks when httptools is not
installed, which ``heicconv[server]`` does not install.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["protocol"]


def _answer_408(seconds: float) -> bytes:
    message = f"the request line and headers did not arrive within {seconds:g} s"
    body = json.dumps({"error": "header_timeout", "message": message, "status": 408}).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def protocol(header_timeout: float, on_timeout: Callable[[], None] | None = None) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with a header deadline of ``header_timeout`` seconds; ``on_timeout`` is told of each."""

    class HeaderDeadline(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._header_timer is None and self.conn.their_state is h11.IDLE:
                self._arm()  # the first bytes of the next request on a kept-alive connection
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:  # the headers are complete (or the request failed)
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(header_timeout, self._headers_late)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_late(self) -> None:
            self._header_timer = None
            if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
                return
            if on_timeout is not None:
                on_timeout()
            self.transport.write(_answer_408(header_timeout))
            self.transport.close()

    return HeaderDeadline
