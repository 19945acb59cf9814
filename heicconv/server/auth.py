"""Who may use the service: the tokens of ``[server] token`` and ``token_file``, compared in constant time.

A client sends a token as ``Authorization: Bearer <token>``, or as it is in the header that
``[server] auth_header`` names (the ``http`` backend's ``[http] auth_header``, e.g. ``X-Api-Key``).
Several tokens are accepted at once, so that a token can be rotated without a moment when a client
is refused: add the new one, move the clients, remove the old one. ``token_file`` (one token a
line, ``#`` comments; a mounted secret) is re-read when it changes, so a rotation needs no restart.
Standard library only.

>>> tokens = Tokens(("s3cret-token-for-the-doctest",))
>>> tokens.allows({"authorization": "Bearer s3cret-token-for-the-doctest"})
True
>>> tokens.allows({"authorization": "Bearer guess"}), tokens.allows({})
(False, False)
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from ..errors import ConfigError

__all__ = ["MIN_LENGTH", "Tokens", "check_header_name", "parse_tokens"]

log = logging.getLogger("heicconv.server")

#: A token shorter than this is refused at start: it could be guessed (``openssl rand -hex 32`` gives 64).
MIN_LENGTH = 16

_TOKEN = re.compile(r"[\x21-\x7e]+")  # visible ASCII: what a header value carries without quoting
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
#: How often a token file's modification time is looked at, at most.
_RECHECK_S = 1.0


def parse_tokens(text: str, where: str) -> tuple[str, ...]:
    """The tokens in ``text``: separated by commas or new lines, ``#`` starts a comment; each checked.

    >>> parse_tokens("new-token-0123456789, old-token-0123456789", "the doctest")
    ('new-token-0123456789', 'old-token-0123456789')
    """
    found: list[str] = []
    for line in text.splitlines():
        for item in line.partition("#")[0].split(","):
            token = item.strip()
            if not token:
                continue
            if not _TOKEN.fullmatch(token):
                raise ConfigError(f"server.token: a token may hold only visible ASCII characters (in {where})")
            if len(token) < MIN_LENGTH:
                raise ConfigError(
                    f"server.token: a token of {len(token)} characters is too easy to guess; use at least "
                    f"{MIN_LENGTH} (openssl rand -hex 32 gives 64) (in {where})"
                )
            found.append(token)
    return tuple(found)


def check_header_name(name: str) -> str:
    """``name`` as a lower-case header name, or ``ConfigError`` for ``[server] auth_header``."""
    if name and not _HEADER_NAME.fullmatch(name):
        raise ConfigError(f"server.auth_header: {name!r} is not an HTTP header name")
    return name.lower()


class Tokens:
    """The accepted tokens: ``fixed`` ones, and those of ``file``, re-read when its modification time changes.

    With no token at all, :attr:`required` is false and every request is allowed.
    """

    def __init__(self, fixed: tuple[str, ...] = (), file: str = "", header: str = "") -> None:
        self.fixed = fixed
        self.file = Path(file) if file else None
        self.header = check_header_name(header)
        self._lock = threading.Lock()
        self._from_file: tuple[str, ...] = ()
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0
        if self.file is not None:
            self._read_file(at_start=True)
            if not self._from_file:
                raise ConfigError(f"server.token_file: {self.file} holds no token")

    @property
    def required(self) -> bool:
        return bool(self.fixed or self.file)

    def current(self) -> tuple[str, ...]:
        """Every token accepted now (the file re-read if it changed since the last look)."""
        if self.file is not None and time.monotonic() - self._checked >= _RECHECK_S:
            self._read_file(at_start=False)
        return self.fixed + self._from_file

    def allows(self, headers: Mapping[str, str]) -> bool:
        """Whether the lower-case ``headers`` carry an accepted token; true for every request when none is set."""
        if not self.required:
            return True
        offered = []
        scheme, _, credential = headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() == "bearer":
            offered.append(credential.strip())
        if self.header:
            offered.append(headers.get(self.header, "").strip())
        accepted = self.current()
        allowed = False
        for given in offered:
            for token in accepted:  # every pair compared, in constant time, whatever matched before
                allowed |= hmac.compare_digest(given.encode("utf-8", "replace"), token.encode())
        return allowed

    def _read_file(self, *, at_start: bool) -> None:
        assert self.file is not None
        with self._lock:
            self._checked = time.monotonic()
            try:
                stat = os.stat(self.file)
                stamp = (stat.st_mtime_ns, stat.st_size)
                if stamp == self._stamp:
                    return
                tokens = parse_tokens(self.file.read_text(encoding="utf-8"), str(self.file))
            except (OSError, UnicodeDecodeError, ConfigError) as exc:
                if at_start:
                    raise ConfigError(f"server.token_file: cannot read {self.file}: {exc}") from exc
                # A secret being replaced can be missing for a moment: keep the tokens read last.
                log.warning("server.token_file: cannot read %s (%s); the tokens read last stay valid", self.file, exc)
                return
            if not tokens and not at_start:
                log.warning("server.token_file: %s holds no token now; the tokens read last stay valid", self.file)
                return
            if not at_start:
                log.info("server.token_file: %s changed; %d token(s) accepted", self.file, len(tokens))
            self._from_file, self._stamp = tokens, stamp
