"""heicconv: convert HEIC/HEIF photos to JPEG, PNG, WebP, AVIF, TIFF or HEIC through interchangeable backends.

>>> import heicconv
>>> from heicconv.testing.fixtures import make_heic
>>> jpeg = heicconv.convert(make_heic(), "jpeg", heicconv.Options(quality=85))
>>> heicconv.probe(jpeg).format
'jpeg'

Importing heicconv imports no image library; backends load on first use.
"""

from __future__ import annotations

import sys

from . import config
from .api.calls import (
    convert,
    convert_async,
    convert_with_report,
    convert_with_report_async,
    list_backends,
    probe,
    select,
    selected_backend,
)
from .backends.contract import Backend, Capabilities, Feature, Job, Note, PipelineBackend, Result
from .backends.registry import BackendStatus, register_backend, unregister_backend
from .config import configure
from .container.info import ImageInfo
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
    UnsupportedInputError,
    UnsupportedOutputError,
)
from .options import Limits, Options, formats

# heicconv.formats is public (``import heicconv.formats`` and ``from heicconv.formats import detect``
# work); its module lives with the options, as heicconv.options.formats.
sys.modules[f"{__name__}.formats"] = formats

__version__ = "0.2.0"

__all__ = [
    "Backend",
    "BackendConflictError",
    "BackendConflictWarning",
    "BackendStatus",
    "BackendUnavailableError",
    "Capabilities",
    "ConfigError",
    "DecodeError",
    "EncodeError",
    "Feature",
    "HeicconvError",
    "ImageInfo",
    "Job",
    "LimitExceededError",
    "Limits",
    "Note",
    "Options",
    "PipelineBackend",
    "Result",
    "TimeoutError",
    "UnsupportedFormatError",
    "UnsupportedInputError",
    "UnsupportedOutputError",
    "__version__",
    "config",
    "configure",
    "convert",
    "convert_async",
    "convert_with_report",
    "convert_with_report_async",
    "formats",
    "list_backends",
    "probe",
    "register_backend",
    "select",
    "selected_backend",
    "unregister_backend",
]
