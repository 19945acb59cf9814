"""``python -m heicconv``: the same as the ``heicconv`` command."""

from __future__ import annotations

from heicconv.cli import main

if __name__ == "__main__":  # not when a "spawn" worker re-imports this module
    raise SystemExit(main())
