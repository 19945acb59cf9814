"""Every error heicconv raises, under one root.

Each class also subclasses the builtin a caller would naturally catch, so
``except ValueError`` keeps working for code that does not know heicconv.
A backend library's own exception is never raised past heicconv: it is chained
as ``__cause__``.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping

__all__ = [
    "HTTP_ERRORS",
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
    "from_http",
]


class HeicconvError(Exception):
    """Root of every heicconv error."""

    #: On an error that :class:`heicconv.api.workers.IsolatedConverter` raises about its worker rather than about
    #: the input's conversion: ``"timeout"``, ``"memory"`` (the cap), ``"died"`` (a crash or the OOM killer)
    #: or ``"bug"`` (an exception that was not a heicconv error). ``None`` everywhere else.
    worker_event: str | None = None


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
    """A conversion ran past its wall-clock budget (see ``heicconv.api.workers``)."""


#: The HTTP status and error code of each heicconv error class, on every HTTP route (docs/errors.md), and
#: back: a remote backend (``http``, ``lambda``) raises the class of the code the remote answered with; where
#: two classes share a code, the one listed first. An exception takes the entry of the nearest class in its
#: MRO; anything else is a 500 ``internal``.
HTTP_ERRORS: Mapping[type[HeicconvError], tuple[int, str]] = {
    ConfigError: (400, "bad_request"),
    LimitExceededError: (413, "too_large"),
    UnsupportedInputError: (415, "unsupported_format"),
    UnsupportedFormatError: (415, "unsupported_format"),
    UnsupportedOutputError: (400, "unsupported_output"),
    DecodeError: (422, "undecodable"),
    EncodeError: (500, "encode_failed"),
    HeicconvError: (500, "failed"),
    BackendUnavailableError: (503, "backend_unavailable"),
    BackendConflictError: (503, "backend_unavailable"),
    TimeoutError: (504, "timeout"),
}

#: Codes the routes answer with that no error class has: a request the service itself refused.
_ROUTE_CODES: Mapping[str, type[HeicconvError]] = {
    "response_too_large": LimitExceededError,  # the Lambda handler: the output exceeds a synchronous response
    "body_timeout": TimeoutError,
    "busy": BackendUnavailableError,
    "staging_failed": BackendUnavailableError,  # the Lambda handler could not write a staged output
    "misconfigured": BackendUnavailableError,
    "unauthorized": ConfigError,  # the service wants a token this caller does not send (http.token)
    "not_found": ConfigError,
    "method_not_allowed": ConfigError,
}


def from_http(status: int, code: str, message: str) -> HeicconvError:
    """The error a heicconv HTTP route's answer ``{"error": code, "message": ..., "status": ...}`` stands for.

    >>> type(from_http(422, "undecodable", "the file is truncated")).__name__
    'DecodeError'
    >>> type(from_http(415, "unsupported_format", "not an image")).__name__
    'UnsupportedInputError'
    """
    for kind, (_, known) in HTTP_ERRORS.items():
        if known == code:
            return kind(message)
    route = _ROUTE_CODES.get(code)
    if route is not None:
        return route(message)
    if status in (408, 504):
        return TimeoutError(message)
    return LimitExceededError(message) if status == 413 else HeicconvError(message)
