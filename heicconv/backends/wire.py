"""One HTTP/1.1 exchange, blocking or on an event loop: what the remote backends send their requests with.

Standard library only (``http.client``; asyncio streams), so ``heicconv.convert_async`` waits for a
heicconv service, a Lambda Invoke or an S3 presigned URL without holding a thread. Transport failures
are raised as they come (``OSError``, ``TimeoutError``, ``ssl.SSLError``); each backend says them in its words.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.client
import ssl
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from .remote import Answer

__all__ = ["Endpoint", "exchange", "exchange_async", "target_of"]


@dataclass(frozen=True)
class Endpoint:
    """Where requests go: scheme, host and port, and the TLS context for https."""

    host: str
    port: int
    context: ssl.SSLContext | None = None  # None: plain http

    @classmethod
    def of(cls, url: str, context: ssl.SSLContext | None = None) -> Endpoint:
        """The endpoint of ``url``; https uses ``context`` or the system's CAs.

        >>> Endpoint.of("http://127.0.0.1:9000/bucket/key?X-Amz-Signature=0").port
        9000
        """
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http:// or https:// URL, got {url[:80]!r}")
        tls = parts.scheme == "https"
        context = (context or _system_context()) if tls else None
        return cls(parts.hostname, parts.port or (443 if tls else 80), context)


@functools.cache
def _system_context() -> ssl.SSLContext:
    """The system's CAs, loaded once: a context costs milliseconds to build, and presigned URLs come one by one."""
    return ssl.create_default_context()


def target_of(url: str) -> str:
    """The request target (path and query) of ``url``."""
    parts = urllib.parse.urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def exchange(
    endpoint: Endpoint, method: str, target: str, body: bytes | None, headers: Mapping[str, str], timeout: float
) -> Answer:
    """One request and its whole answer, blocking for at most ``timeout`` seconds per socket operation."""
    conn: http.client.HTTPConnection
    if endpoint.context is not None:
        conn = http.client.HTTPSConnection(endpoint.host, endpoint.port, timeout=timeout, context=endpoint.context)
    else:
        conn = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=timeout)
    try:
        conn.request(method, target, body=body, headers=dict(headers))
        resp = conn.getresponse()
        return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


async def exchange_async(
    endpoint: Endpoint, method: str, target: str, body: bytes | None, headers: Mapping[str, str], timeout: float
) -> Answer:
    """:func:`exchange` on the running event loop; the whole exchange is bounded by ``timeout``."""
    return await asyncio.wait_for(_exchange(endpoint, method, target, body, headers), timeout)


async def _exchange(
    endpoint: Endpoint, method: str, target: str, body: bytes | None, headers: Mapping[str, str]
) -> Answer:
    tls = endpoint.context
    reader, writer = await asyncio.open_connection(
        endpoint.host, endpoint.port, ssl=tls, server_hostname=endpoint.host if tls else None
    )
    try:
        default_port = 443 if tls else 80
        host = endpoint.host if endpoint.port == default_port else f"{endpoint.host}:{endpoint.port}"
        sent = {k.lower() for k in headers}
        head = [f"{method} {target} HTTP/1.1"]
        head += [f"Host: {host}"] if "host" not in sent else []
        head += ["Connection: close"]
        head += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("connection", "content-length")]
        if body is not None or method in ("POST", "PUT"):
            head.append(f"Content-Length: {len(body or b'')}")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (body or b""))
        await writer.drain()
        status_line = (await reader.readline()).decode("latin-1")
        version, _, rest = status_line.partition(" ")
        if not version.startswith("HTTP/") or not rest[:3].isdigit():
            raise http.client.BadStatusLine(status_line)
        answer_headers: dict[str, str] = {}
        while True:
            line = (await reader.readline()).decode("latin-1")
            if line in ("\r\n", "\n", ""):
                break
            name, _, value = line.partition(":")
            answer_headers[name.strip().lower()] = value.strip()
        status = int(rest[:3])
        if method == "HEAD" or status in (204, 304):
            data = b""
        elif answer_headers.get("transfer-encoding", "").lower() == "chunked":
            data = await _read_chunked(reader)
        elif "content-length" in answer_headers:
            data = await reader.readexactly(int(answer_headers["content-length"]))
        else:
            data = await reader.read()
        return Answer(status, answer_headers, data)
    finally:
        writer.close()
        with contextlib.suppress(Exception):  # the answer is read; a close that fails costs nothing
            await writer.wait_closed()


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    while True:
        size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            await reader.readline()
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        await reader.readline()
