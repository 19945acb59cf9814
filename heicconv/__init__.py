"""heicconv: convert HEIC/HEIF photos to JPEG, PNG, WebP, AVIF and TIFF through interchangeable backends.

>>> import heicconv
>>> from heicconv.testing.fixtures import make_heic
>>> jpeg = heicconv.convert(make_heic(), "jpeg", heicconv.Options(quality=85))
>>> heicconv.probe(jpeg).format
'jpeg'

Importing heicconv imports no image library; backends load on first use.
"""

from __future__ import annotations

from . import config, formats
from .backends.base import Capabilities, Converter, Result
from .config import configure
from .core import convert, convert_with_report, list_backends, probe, select, selected_backend
from .errors import (
    BackendConflictError,
    BackendConflictWarning,
    BackendUnavailableError,
    ConfigError,
    DecodeError,
    EncodeError,
    HeicconvError,
    LimitExceededError,
    TimeoutError,
    UnsupportedFormatError,
)
from .info import ImageInfo
from .options import Limits, Options
from .registry import BackendStatus

__version__ = "0.1.0"

__all__ = [
    "BackendConflictError",
    "BackendConflictWarning",
    "BackendStatus",
    "BackendUnavailableError",
    "Capabilities",
    "ConfigError",
    "Converter",
    "DecodeError",
    "EncodeError",
    "HeicconvError",
    "ImageInfo",
    "LimitExceededError",
    "Limits",
    "Options",
    "Result",
    "TimeoutError",
    "UnsupportedFormatError",
    "__version__",
    "config",
    "configure",
    "convert",
    "convert_with_report",
    "formats",
    "list_backends",
    "probe",
    "select",
    "selected_backend",
]
