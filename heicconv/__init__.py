"""heicconv: convert HEIC/HEIF photos to JPEG, PNG, WebP, AVIF, TIFF or HEIC through interchangeable backends.

>>> import heicconv
>>> from heicconv.testing.fixtures import make_heic
>>> jpeg = heicconv.convert(make_heic(), "jpeg", heicconv.Options(quality=85))
>>> heicconv.probe(jpeg).format
'jpeg'

Importing heicconv imports no image library; backends load on first use.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
import warnings
from typing import Any

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
from .backends.contract import AsyncBackend, Backend, Capabilities, Feature, Job, Note, PipelineBackend, Result
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

# Modules the API reference of 0.2 named, moved in 0.3 (issue 22): the old paths still import, with a
# DeprecationWarning, until 0.4 (docs/compatibility.md).
_MOVED = {"heicconv.isolated": "heicconv.api.workers", "heicconv.registry": "heicconv.backends.registry"}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self) -> None:
        self.spec_of: dict[str, importlib.machinery.ModuleSpec | None] = {}

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        return importlib.util.spec_from_loader(fullname, self) if fullname in _MOVED else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        warnings.warn(
            f"{spec.name} moved to {_MOVED[spec.name]} in heicconv 0.3; the old path goes in 0.4",
            DeprecationWarning,
            stacklevel=2,
        )
        module = importlib.import_module(_MOVED[spec.name])
        self.spec_of[module.__name__] = module.__spec__  # the import machinery sets the old name's spec on it
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: the module was imported by its new name, whose spec it keeps."""
        module.__spec__ = self.spec_of[module.__name__]


sys.meta_path.append(_MovedModules())

__version__ = "0.2.0"

__all__ = [
    "AsyncBackend",
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
