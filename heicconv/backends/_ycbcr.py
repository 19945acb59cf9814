"""The decoder's YCbCr planes resized and turned into RGB by FFmpeg's scaler (swscale, through PyAV).

The ffmpeg backend's planes are upright 8-bit YCbCr 4:2:0, full range, BT.601 (``_hevc``: JPEG's own). Resizing
them before any conversion touches half the samples an RGB picture has, and swscale's filters are vectorised:
on a 12 MP photo, Lanczos to 1600x1200 costs about 16 ms of CPU on the planes against about 160 ms for Pillow on
the RGB picture (docs/performance.md). Its Lanczos widens the kernel by the reduction, as Pillow's does, so the
two agree to about 55 dB PSNR; its conversion to RGB agrees with libheif's to about 50 dB.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import _hevc

__all__ = ["frame", "planes", "rgb"]

#: Every call describes its pictures as what they are: BT.601 full range, so that swscale converts nothing else.
_SPACE = {"src_colorspace": "ITU601", "dst_colorspace": "ITU601", "src_color_range": "JPEG", "dst_color_range": "JPEG"}


def frame(strips: Iterable[_hevc.Strip], size: tuple[int, int]) -> Any:
    """The strips as one ``yuv420p`` frame of ``size`` (each band written into the frame's planes once)."""
    import av
    import numpy as np

    width, height = size
    out: Any = av.VideoFrame(width, height, "yuv420p")
    views = [np.frombuffer(p, np.uint8).reshape(-1, p.line_size) for p in out.planes]
    for s in strips:
        for view, plane, top in zip(views, (s.y, s.cb, s.cr), (s.top, s.top // 2, s.top // 2), strict=True):
            view[top : top + plane.shape[0], : plane.shape[1]] = plane
    return out


def planes(source: Any, size: tuple[int, int], *, full_chroma: bool, threads: int) -> tuple[Any, Any, Any]:
    """``source`` (a :func:`frame`) resized to ``size`` with Lanczos: Y, Cb, Cr (numpy views), the chroma at half
    the size each way (4:2:0) or, with ``full_chroma``, at ``size`` (4:4:4)."""
    import numpy as np

    width, height = size
    out = _scaled(source, size, "yuv444p" if full_chroma else "yuv420p", threads)
    cw, ch = (width, height) if full_chroma else ((width + 1) // 2, (height + 1) // 2)
    shapes = ((width, height), (cw, ch), (cw, ch))
    y, cb, cr = (
        np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[:h, :w]
        for p, (w, h) in zip(out.planes, shapes, strict=True)
    )
    return y, cb, cr


def rgb(source: Any, size: tuple[int, int], *, threads: int) -> Any:
    """``source`` (a :func:`frame`) as a Pillow RGB image of ``size`` (resized with Lanczos if that differs)."""
    from PIL import Image

    out = _scaled(source, size, "rgb24", threads)
    plane = out.planes[0]
    return Image.frombuffer("RGB", size, plane, "raw", "RGB", plane.line_size, 1).copy()


def _scaled(source: Any, size: tuple[int, int], fmt: str, threads: int) -> Any:
    from av.video.reformatter import Interpolation

    # Without a resize, the chroma is only upsampled: bilinear, as libheif does.
    how = Interpolation.LANCZOS if size != (source.width, source.height) else Interpolation.BILINEAR
    return source.reformat(size[0], size[1], fmt, interpolation=how, threads=threads, **_SPACE)
