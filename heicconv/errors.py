"""Every error heicconv raises, under one root.

Each class also subclasses the builtin a caller would naturally catch, so
``except ValueError`` keeps working for code that does not know heicconv.
A backend library's own exception is never raised past heicconv: it is chained
as ``__cause__``.
"""

from __future__ import annotations

import builtins

__all__ = [
    "BackendConflictError",
    "BackendConflictWarning",
    "BackendUnavailableError",
    "ConfigError",
    "DecodeError",
    "EncodeError",
    "HeicconvError",
    "LimitExceededError",
    "TimeoutError",
    "UnsupportedFormatError",
    "UnsupportedInputError",
    "UnsupportedOutputError",
]


class HeicconvError(Exception):
    """Root of every heicconv error."""


class ConfigError(HeicconvError, ValueError):
    """A configuration key, value or backend name is wrong; the message says where it came from."""


class BackendUnavailableError(HeicconvError, ImportError):
    """A backend's library is missing or cannot read HEIC; the message says what to install."""


class BackendConflictError(BackendUnavailableError):
    """A backend is installed but cannot run in this process, because of a library the process loaded before."""


class BackendConflictWarning(RuntimeWarning):
    """Issued once per backend when it cannot run in this process for a :class:`BackendConflictError`."""


class UnsupportedFormatError(HeicconvError, ValueError):
    """A format heicconv or the backend cannot handle: one of the two subclasses says which side."""


class UnsupportedInputError(UnsupportedFormatError):
    """The input is not a format heicconv reads, or not one the chosen backend reads (HTTP 415)."""


class UnsupportedOutputError(UnsupportedFormatError):
    """The asked output cannot be written: an unknown format, one the backend cannot write, lossless JPEG,
    16 bits or alpha where the backend cannot write them (HTTP 400)."""


class DecodeError(HeicconvError, ValueError):
    """The input claims a supported format but cannot be decoded (corrupt, truncated, empty)."""


class EncodeError(HeicconvError, RuntimeError):
    """The backend failed to write the output."""


class LimitExceededError(HeicconvError, ValueError):
    """The input is larger than the configured limits (bytes, pixels, width or height)."""


class TimeoutError(HeicconvError, builtins.TimeoutError):
    """A conversion ran past its wall-clock budget (see ``heicconv.isolated``)."""
