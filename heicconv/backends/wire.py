"""One HTTP/1.1 exchange, blocking or on an event loop: what the remote backends send their requests with.

The exchange is described once (:class:`_Reading` reads an answer from bytes as they arrive, whoever
receives them) and run two ways: :func:`exchange` on a blocking socket, :func:`exchange_async` on asyncio
streams, so ``heicconv.convert_async`` waits for a heicconv service, a Lambda Invoke or an S3 presigned URL
without holding a thread. Either way ``timeout`` bounds the whole exchange: connecting, the TLS handshake,
sending, and the answer's head and body, however slowly they arrive (on the blocking path, resolving a host
name is the system's, outside it). Standard library only. Failures are raised as they come (``TimeoutError``,
``OSError``, ``ssl.SSLError``, :class:`BrokenAnswer`); each backend says them in its words.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import socket
import ssl
import time
import urllib.parse
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import TypeVar

__all__ = [
    "Answer",
    "BrokenAnswer",
    "Endpoint",
    "Request",
    "drive",
    "drive_async",
    "exchange",
    "exchange_async",
    "target_of",
    "time_left",
]

_T = TypeVar("_T")

#: An answer's status line and headers larger than this are refused: no HTTP server sends such a head.
MAX_HEAD_BYTES = 64 * 1024
_PIECE = 64 * 1024  # bytes sent or received per socket call


@dataclass(frozen=True)
class Answer:
    """One HTTP answer from the remote: status, lower-case headers, body; ``tries``: the attempts it took."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    tries: int = 1


class BrokenAnswer(ValueError):
    """The remote's answer is not HTTP/1.1, or ends before its own framing says it does."""


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


#: One request: where, method, target (path and query), body, headers; the arguments of :func:`exchange`.
Request = tuple[Endpoint, str, str, bytes | None, Mapping[str, str]]


@functools.cache
def _system_context() -> ssl.SSLContext:
    """The system's CAs, loaded once: a context costs milliseconds to build, and presigned URLs come one by one."""
    return ssl.create_default_context()


def target_of(url: str) -> str:
    """The request target (path and query) of ``url``."""
    parts = urllib.parse.urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def time_left(deadline: float) -> float:
    """Seconds until ``deadline`` (a :func:`time.monotonic` time); ``TimeoutError`` once it has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise builtins.TimeoutError("timed out")
    return left


# -- the exchange, described once ----------------------------------------------------------------------------


def _request_bytes(
    endpoint: Endpoint, method: str, target: str, body: bytes | None, headers: Mapping[str, str]
) -> bytes:
    default_port = 443 if endpoint.context is not None else 80
    host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host  # an IPv6 address
    host = host if endpoint.port == default_port else f"{host}:{endpoint.port}"
    sent = {k.lower() for k in headers}
    head = [f"{method} {target} HTTP/1.1"]
    head += [f"Host: {host}"] if "host" not in sent else []
    head += ["Connection: close"]
    head += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("connection", "content-length")]
    if body is not None or method in ("POST", "PUT"):
        head.append(f"Content-Length: {len(body or b'')}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (body or b"")


class _Reading:
    """An HTTP/1.1 answer read from its bytes as they arrive: :meth:`feed` them, ``b""`` when the connection closes.

    >>> reading = _Reading("GET")
    >>> reading.feed(b"HTTP/1.1 200 OK\\r\\nContent-Length: 5\\r\\n\\r\\nhel") is None
    True
    >>> reading.feed(b"lo")
    Answer(status=200, headers={'content-length': '5'}, body=b'hello', tries=1)
    """

    def __init__(self, method: str) -> None:
        self._method = method
        self._buffer = bytearray()
        self._status = 0
        self._headers: dict[str, str] = {}
        self._framing = ""  # "" while the head is read, then "none", "length", "chunked" or "close"
        self._length = 0
        self._chunks: list[bytes] = []
        self._received = 0  # body bytes received, for the message of an answer that ends early

    def feed(self, data: bytes) -> Answer | None:
        """The whole answer once ``data`` completes it; ``None`` while more is to come."""
        closed = not data
        self._buffer += data
        while not self._framing:
            if not self._head(closed):
                return None
        body = self._body(closed)
        return None if body is None else Answer(self._status, self._headers, body)

    def _head(self, closed: bool) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEAD_BYTES:
                raise BrokenAnswer(f"its answer's head runs past {MAX_HEAD_BYTES} bytes")
            if closed:
                said = bytes(self._buffer[:60])
                raise BrokenAnswer(
                    f"it closed the connection before its answer's head ended (after {said!r})"
                    if said
                    else "it closed the connection without answering"
                )
            return False
        lines = self._buffer[:end].decode("latin-1").split("\r\n")
        del self._buffer[: end + 4]
        version, _, rest = lines[0].partition(" ")
        if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
            raise BrokenAnswer(f"its answer is not HTTP/1.1: {lines[0][:60]!r}")
        status = int(rest[:3])
        if 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
            return True
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        self._status, self._headers = status, headers
        if self._method == "HEAD" or status in (204, 304):
            self._framing = "none"
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            self._framing = "chunked"
        elif "content-length" in headers:
            if not headers["content-length"].isdigit():
                raise BrokenAnswer(f"its answer's Content-Length is {headers['content-length'][:40]!r}")
            self._framing, self._length = "length", int(headers["content-length"])
        else:
            self._framing = "close"
        return True

    def _body(self, closed: bool) -> bytes | None:
        if self._framing == "none":
            return b""
        if self._framing == "length":
            if len(self._buffer) >= self._length:
                return bytes(self._buffer[: self._length])
            if closed:
                raise BrokenAnswer(
                    f"its answer ended after {len(self._buffer):,} of the {self._length:,} bytes it declared"
                )
            return None
        if self._framing == "close":
            return bytes(self._buffer) if closed else None
        return self._chunked(closed)

    def _chunked(self, closed: bool) -> bytes | None:
        while True:
            line_end = self._buffer.find(b"\r\n")
            if line_end < 0:
                break
            size_text = bytes(self._buffer[:line_end]).split(b";")[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise BrokenAnswer(f"its chunked answer has a chunk size of {size_text[:20]!r}") from None
            if size == 0:
                if self._buffer.find(b"\r\n\r\n", line_end) < 0 and not closed:
                    return None  # the trailer section is still coming
                return b"".join(self._chunks)
            start, end = line_end + 2, line_end + 2 + size
            if len(self._buffer) < end + 2:
                break
            self._chunks.append(bytes(self._buffer[start:end]))
            self._received += size
            del self._buffer[: end + 2]
        if closed:
            raise BrokenAnswer(f"its chunked answer ended after {self._received:,} bytes, before its last chunk")
        return None


# -- two ways to run it -------------------------------------------------------------------------------------------


def exchange(
    endpoint: Endpoint, method: str, target: str, body: bytes | None, headers: Mapping[str, str], timeout: float
) -> Answer:
    """One request and its whole answer on a blocking socket, all within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    sock = _connect(endpoint, deadline)
    try:
        if endpoint.context is not None:
            sock.settimeout(time_left(deadline))  # the handshake is one operation: the timeout bounds all of it
            sock = endpoint.context.wrap_socket(sock, server_hostname=endpoint.host)
        data = memoryview(_request_bytes(endpoint, method, target, body, headers))
        while data:
            sock.settimeout(time_left(deadline))
            data = data[sock.send(data[:_PIECE]) :]
        reading = _Reading(method)
        answer = None
        while answer is None:
            sock.settimeout(time_left(deadline))
            answer = reading.feed(sock.recv(_PIECE))
        return answer
    finally:
        sock.close()


def _connect(endpoint: Endpoint, deadline: float) -> socket.socket:
    """A connection to the first of the host's addresses that accepts one by ``deadline`` (all of them share it)."""
    failure: OSError | None = None
    for family, kind, proto, _, address in socket.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(time_left(deadline))
            sock.connect(address)
            return sock
        except builtins.TimeoutError:
            sock.close()
            raise
        except OSError as exc:  # refused or unreachable there: the next address may answer
            sock.close()
            failure = exc
    raise failure or OSError(f"{endpoint.host} has no address")


async def exchange_async(
    endpoint: Endpoint, method: str, target: str, body: bytes | None, headers: Mapping[str, str], timeout: float
) -> Answer:
    """:func:`exchange` on the running event loop, all within ``timeout`` seconds."""
    return await asyncio.wait_for(_exchange(endpoint, method, target, body, headers), timeout)


async def _exchange(
    endpoint: Endpoint, method: str, target: str, body: bytes | None, headers: Mapping[str, str]
) -> Answer:
    tls = endpoint.context
    reader, writer = await asyncio.open_connection(
        endpoint.host, endpoint.port, ssl=tls, server_hostname=endpoint.host if tls else None
    )
    answer = None
    try:
        writer.write(_request_bytes(endpoint, method, target, body, headers))
        await writer.drain()
        reading = _Reading(method)
        while answer is None:
            answer = reading.feed(await reader.read(_PIECE))
        return answer
    finally:
        # Nothing here may wait: a TLS close waits up to 30 s for the remote's close_notify, past the timeout.
        if answer is None:
            writer.transport.abort()
        else:
            writer.close()  # the answer is whole: the TLS goodbye, if any, ends on its own


def drive(steps: Generator[Request, Answer, _T], deadline: float) -> _T:
    """Run ``steps``, a generator that yields requests and is sent their answers, with :func:`exchange`: every
    exchange by ``deadline`` (a :func:`time.monotonic` time). Its return value is the result."""
    try:
        request = next(steps)
        while True:
            request = steps.send(exchange(*request, time_left(deadline)))
    except StopIteration as done:
        result: _T = done.value
        return result


async def drive_async(steps: Generator[Request, Answer, _T], deadline: float) -> _T:
    """:func:`drive` with :func:`exchange_async`."""
    try:
        request = next(steps)
        while True:
            request = steps.send(await exchange_async(*request, time_left(deadline)))
    except StopIteration as done:
        result: _T = done.value
        return result
