"""``python -m heicconv.bench PATH...``: the same as ``heicconv bench``."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":  # guarded so doctest collection can import this module
    raise SystemExit(main())
