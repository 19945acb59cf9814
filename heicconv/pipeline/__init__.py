"""What the output is: decided once, from the source file, before any backend touches a pixel.

``plan`` reads the header, checks limits and capabilities, and decides the image, size,
orientation, alpha, bit depth, colour and metadata into a ``Job``; ``metadata`` holds the EXIF,
XMP and ICC policy it applies. :mod:`.run` is the one path of a conversion against a backend
(plan, tone map, run, gain map), blocking or on asyncio; :mod:`.hdr` and :mod:`.tonemap` are its HDR steps.
"""

from __future__ import annotations

from ..backends.contract import Job
from .planner import fit_size, plan

__all__ = ["Job", "fit_size", "plan"]
