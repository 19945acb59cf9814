"""Receiving request bodies so that slow clients cannot starve the service.

A body takes an upload slot while it arrives: at most ``uploads`` at once, and at most
``uploads_per_client`` from one client address, beyond that 429 at once. It must arrive within
``body_timeout`` seconds, and at ``min_upload_rate`` KiB/s or faster with ``upload_grace`` seconds
to spare (after ``t`` seconds, at least ``(t - upload_grace) * min_upload_rate`` must have come),
else 408 and the connection is closed: a client sending a byte a second holds its slot for about
``upload_grace`` seconds, not ``body_timeout`` (Apache's ``RequestReadTimeout body=...,MinRate=``
works the same way; nginx's ``client_body_timeout`` only bounds the gap between two reads).

The grace period is for a service with a slot to spare. When every slot is taken and another body
arrives, the body furthest below ``min_upload_rate`` that has been arriving for a second or more
gives up its slot at once (408), so slow clients from many addresses cannot hold every slot for the
grace period either. The event loop is the only thread that touches the slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from .settings import ServerSettings

__all__ = ["Admission", "TooSlow", "Upload", "Uploads", "read_body"]

#: How long a body has been arriving before it can lose its slot to another for being slow.
EVICT_AFTER_S = 1.0


class TooSlow(Exception):
    """The body fell below the minimum rate (``reason`` "too_slow", or "evicted" when another needed its slot)
    or took longer than ``body_timeout`` ("body_timeout")."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Admission:
    """How long a body may take: the whole of it, and its rate with the grace period to spare."""

    body_timeout: float
    min_rate: float  # bytes per second; 0: no minimum
    grace: float  # seconds a body may be behind the minimum rate

    @classmethod
    def of(cls, settings: ServerSettings) -> Admission:
        return cls(settings.body_timeout, settings.min_upload_rate * 1024, settings.upload_grace)

    def deadline(self, started: float, received: int) -> tuple[float, TooSlow]:
        """When the next chunk must have arrived, and the error if it has not.

        >>> rule = Admission(body_timeout=60, min_rate=1024, grace=5)
        >>> [(round(at), late.reason) for at, late in (rule.deadline(0, n) for n in (0, 20480, 10**6))]
        [(5, 'too_slow'), (25, 'too_slow'), (60, 'body_timeout')]
        """
        whole = started + self.body_timeout
        late = TooSlow("body_timeout", f"the request body did not arrive within {self.body_timeout:g} s")
        if self.min_rate <= 0:
            return whole, late
        # By then, the bytes received so far are exactly `grace` seconds behind the minimum rate.
        slow = started + self.grace + received / self.min_rate
        if slow >= whole:
            return whole, late
        return slow, TooSlow("too_slow", self.too_slow(received, slow - started))

    def too_slow(self, received: int, seconds: float) -> str:
        return (
            f"the request body arrived slower than {self.min_rate / 1024:g} KiB/s ({received} bytes in {seconds:.1f} s)"
        )


@dataclass(eq=False)
class Upload:
    """One body being received: who sends it, since when, how much has come, and whether it lost its slot."""

    client: str
    started: float
    received: int = 0
    evicted: asyncio.Event = field(default_factory=asyncio.Event)
    released: bool = False


@dataclass
class Uploads:
    """The upload slots: bodies being received, in all and per client address."""

    limit: int
    per_client: int  # 0: no limit per client
    admission: Admission
    active: list[Upload] = field(default_factory=list)
    by_client: dict[str, int] = field(default_factory=dict)

    @property
    def in_use(self) -> int:
        return len(self.active)

    @property
    def full(self) -> bool:
        return self.in_use >= self.limit

    def admit(self, client: str) -> Upload | tuple[str, str]:
        """Take a slot for ``client`` (a slow body's, if every slot is taken), or say why not: the reason
        (``per_client``, ``uploads_full``) and the 429's message."""
        if self.per_client and self.by_client.get(client, 0) >= self.per_client:
            busy = f"this client already sends {self.per_client} request bodies at once; retry when one has arrived"
            return "per_client", busy
        now = time.monotonic()
        if self.full:
            victim = self._slowest(now)
            if victim is None:
                return "uploads_full", f"{self.limit} request bodies are being received; retry shortly"
            victim.evicted.set()
            self.release(victim)
        upload = Upload(client, now)
        self.active.append(upload)
        self.by_client[client] = self.by_client.get(client, 0) + 1
        return upload

    def release(self, upload: Upload) -> None:
        if upload.released:
            return
        upload.released = True
        self.active.remove(upload)
        left = self.by_client[upload.client] - 1
        if left:
            self.by_client[upload.client] = left
        else:
            del self.by_client[upload.client]

    def _slowest(self, now: float) -> Upload | None:
        """The body furthest below the minimum rate among those arriving for ``EVICT_AFTER_S`` or more."""
        rate = self.admission.min_rate
        behind = [
            (u.received / (now - u.started), u)
            for u in self.active
            if rate > 0 and now - u.started >= EVICT_AFTER_S and u.received < rate * (now - u.started)
        ]
        return min(behind, key=lambda pair: pair[0])[1] if behind else None


async def _next(chunks: AsyncIterator[bytes]) -> bytes | None:
    try:
        return await anext(chunks)
    except StopAsyncIteration:
        return None


async def read_body(chunks: AsyncIterator[bytes], limit: int, admission: Admission, upload: Upload) -> bytes | None:
    """The body, or ``None`` as soon as it passes ``limit`` bytes; :class:`TooSlow` if it arrives too slowly."""
    parts: list[bytes] = []
    while True:
        deadline, late = admission.deadline(upload.started, upload.received)
        reading = asyncio.ensure_future(_next(chunks))
        evicted = asyncio.ensure_future(upload.evicted.wait())
        done, _ = await asyncio.wait(
            (reading, evicted), timeout=max(0.0, deadline - time.monotonic()), return_when=asyncio.FIRST_COMPLETED
        )
        evicted.cancel()
        if reading not in done:
            reading.cancel()
            with contextlib.suppress(BaseException):  # the read is abandoned: whatever it ends with
                await reading
            if upload.evicted.is_set():
                seconds = time.monotonic() - upload.started
                message = admission.too_slow(upload.received, seconds) + ", and another request needed its slot"
                raise TooSlow("evicted", message)
            raise late
        chunk = reading.result()
        if chunk is None:
            return b"".join(parts)
        upload.received += len(chunk)
        if upload.received > limit:
            return None
        parts.append(chunk)
