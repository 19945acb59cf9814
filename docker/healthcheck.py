"""The containers' HEALTHCHECK: exit 0 when the service's ``GET /health`` answers 200, else 1.

Standard library only (the slim images have no curl). The port is the one the
service listens on, ``HEICCONV_SERVER_PORT`` (default 8000).
"""

from __future__ import annotations

import os
import sys
import urllib.request


def main() -> int:
    port = os.environ.get("HEICCONV_SERVER_PORT", "8000")
    url = f"http://127.0.0.1:{port}/health"
    try:
        with urllib.request.urlopen(url, timeout=float(os.environ.get("HEICCONV_HEALTHCHECK_TIMEOUT", "4"))) as resp:
            return 0 if resp.status == 200 else 1
    except Exception as exc:  # any failure is "unhealthy"; say why in `docker inspect`
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
