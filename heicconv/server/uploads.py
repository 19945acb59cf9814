"""Receiving request bodies so that slow clients cannot starve the service.

A body takes an upload slot while it arrives: at most ``uploads`` at once, and at most
``uploads_per_client`` from one client address, beyond that 429 at once. It must arrive within
``body_timeout`` seconds, and at ``min_upload_rate`` KiB/s or faster with ``upload_grace`` seconds
to spare (after ``t`` seconds, at least ``(t - upload_grace) * min_upload_rate`` must have come),
else 408 and the connection is closed: a client sending a byte a second holds its slot for about
``upload_grace`` seconds, not ``body_timeout`` (Apache's ``RequestReadTimeout body=...,MinRate=``
works the same way; nginx's ``client_body_timeout`` only bounds the gap between two reads). The
event loop is the only thread that touches these counters.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from .settings import ServerSettings

__all__ = ["Admission", "TooSlow", "Uploads", "read_body"]


class TooSlow(Exception):
    """The body fell below the minimum rate (``reason`` "too_slow") or took longer than ``body_timeout``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Uploads:
    """The upload slots: bodies being received, in all and per client address."""

    limit: int
    per_client: int  # 0: no limit per client
    in_use: int = 0
    by_client: dict[str, int] = field(default_factory=dict)

    def admit(self, client: str) -> str | None:
        """Take a slot for ``client``, or say why not (the 429 message)."""
        if self.in_use >= self.limit:
            return f"{self.limit} request bodies are being received; retry shortly"
        if self.per_client and self.by_client.get(client, 0) >= self.per_client:
            return f"this client already sends {self.per_client} request bodies at once; retry when one has arrived"
        self.in_use += 1
        self.by_client[client] = self.by_client.get(client, 0) + 1
        return None

    def release(self, client: str) -> None:
        self.in_use -= 1
        left = self.by_client[client] - 1
        if left:
            self.by_client[client] = left
        else:
            del self.by_client[client]

    @property
    def full(self) -> bool:
        return self.in_use >= self.limit


@dataclass(frozen=True)
class Admission:
    """How long a body may take: the whole of it, and its rate once the grace period has passed."""

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
        rate = f"{self.min_rate / 1024:g} KiB/s"
        return slow, TooSlow(
            "too_slow", f"the request body arrived slower than {rate} ({received} bytes in {slow - started:.1f} s)"
        )


async def read_body(chunks: AsyncIterator[bytes], limit: int, admission: Admission) -> bytes | None:
    """The body, or ``None`` as soon as it passes ``limit`` bytes; :class:`TooSlow` if it arrives too slowly."""
    started = time.monotonic()
    parts: list[bytes] = []
    size = 0
    while True:
        deadline, late = admission.deadline(started, size)
        try:
            chunk = await asyncio.wait_for(anext(chunks), max(0.0, deadline - time.monotonic()))
        except StopAsyncIteration:
            return b"".join(parts)
        except asyncio.TimeoutError:
            raise late from None
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
