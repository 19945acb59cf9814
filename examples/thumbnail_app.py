"""An application step that makes a web thumbnail from an uploaded photo, wherever heicconv runs.

The code names no backend: ``HEICCONV_BACKEND`` decides, and only the environment changes between
the three shapes (docs/deployment.md):

    HEICCONV_BACKEND=pillow python thumbnail_app.py sample.heic out.jpg
    HEICCONV_BACKEND=http HEICCONV_HTTP_URL=http://converter:8000 python thumbnail_app.py sample.heic out.jpg
    HEICCONV_BACKEND=lambda HEICCONV_LAMBDA_FUNCTION=heicconv:live python thumbnail_app.py sample.heic out.jpg

It converts with the async API, as an asyncio web application would, and handles heicconv's errors
the same way whatever the backend.
"""

from __future__ import annotations

import asyncio
import sys

import heicconv


async def thumbnail(upload: bytes) -> heicconv.Result:
    options = heicconv.Options(max_size=320, quality=80, metadata="strip-location")
    return await heicconv.convert_with_report_async(upload, "jpeg", options)


def main(source: str, target: str) -> int:
    with open(source, "rb") as fh:
        upload = fh.read()
    try:
        result = asyncio.run(thumbnail(upload))
    except heicconv.LimitExceededError as exc:
        print(f"too large: {exc}", file=sys.stderr)
        return 2
    except (heicconv.DecodeError, heicconv.UnsupportedInputError) as exc:
        print(f"not a photo we can read: {exc}", file=sys.stderr)
        return 2
    except heicconv.HeicconvError as exc:
        print(f"conversion failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    with open(target, "wb") as fh:
        fh.write(result.data)
    print(f"{result.width}x{result.height} by {result.backend}: {result.notes[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
