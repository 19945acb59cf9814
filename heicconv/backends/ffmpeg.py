"""The ``ffmpeg`` backend: FFmpeg's HEVC decoder (PyAV) for HEIC -> JPEG, pillow-heif for everything else.

A HEIC photo is HEVC-coded YCbCr 4:2:0, and a JPEG is YCbCr 4:2:0 too. For HEIC -> JPEG this backend
decodes the tiles with FFmpeg (``_hevc``) and hands the planes to libjpeg-turbo (simplejpeg) without the
round trip through RGB that every other route makes: that round trip, and libde265 being slower than
FFmpeg's decoder, are most of what a conversion costs. Large pictures are decoded and encoded a row of
tiles at a time (strips joined with restart markers), so memory stays bounded by a strip.

Whatever this route does not do (other outputs, resizing, alpha, 10/12-bit, crops, other colour matrices,
AVIF and non-HEIF inputs, thumbnails, sRGB conversion) runs the pillow backend's pipeline, and the
report says so. The picture is the same either way (tests/test_equivalence.py, tests/test_corpus.py).
"""

from __future__ import annotations

import struct
from typing import Any

from ..container import output_edits
from ..errors import EncodeError, HeicconvError
from . import _hevc, threads
from .contract import Job, Result
from .pillow import PillowBackend

__all__ = ["STRIP_PIXELS", "FfmpegBackend"]

#: Pictures at least this large (pixels) are decoded and encoded a row of tiles at a time; smaller ones whole.
STRIP_PIXELS = 16_000_000
_SOF0, _DHT, _SOS, _EOI = 0xC0, 0xC4, 0xDA, 0xD9
_MAX_RESTART_INTERVAL = 0xFFFF  # DRI's field is 16 bits: MCUs per strip
_XMP_MAX = 65_504  # what one APP1 segment holds after the XMP namespace header (Pillow's limit too)


class FfmpegBackend(PillowBackend):
    """FFmpeg's HEVC decoder straight into libjpeg-turbo for HEIC -> JPEG; the pillow backend for the rest."""

    name = "ffmpeg"

    def __init__(self, threads: int | None = None) -> None:
        import av  # noqa: F401  (missing: the registry's install hint)
        import simplejpeg  # noqa: F401

        super().__init__()
        #: FFmpeg's decoder threads per conversion; None: this process's share of the CPUs (``threads.threads``).
        self.threads = threads
        self.strip_pixels = STRIP_PIXELS

    def versions(self) -> dict[str, str]:
        import av
        import simplejpeg

        return {
            **super().versions(),
            "pyav": av.__version__,
            "ffmpeg": str(getattr(av, "ffmpeg_version_info", "")),
            "simplejpeg": simplejpeg.__version__,
        }

    def run(self, job: Job) -> Result:
        why = self._not_for_ffmpeg(job)
        if why is None:
            try:
                return self._run_ffmpeg(job)
            except _hevc.NotHandled as exc:
                why = str(exc)
        job.note("decoder", f"decoded by pillow-heif (libheif), not FFmpeg: {why}")
        return super().run(job)

    @staticmethod
    def _not_for_ffmpeg(job: Job) -> str | None:
        """Why this job does not go through FFmpeg, or None if it does."""
        src = job.source
        if job.original is not None:
            return "an HDR (PQ or HLG) source, rendered SDR by heicconv"
        if src.info.format != "heic" or src.container is None or src.item is None:
            return f"{src.info.format} input"
        if job.fmt != "jpeg":
            return f"{job.fmt} output (the FFmpeg route writes JPEG)"
        if job.size != (src.width, src.height):
            return "resizing"
        if src.alpha or src.grayscale or src.bit_depth != 8:
            return "alpha, grayscale or more than 8 bits"
        if job.thumbnail is not None:
            return "the embedded thumbnail is decoded instead"
        if job.to_srgb and job.source_icc is not None:
            return "conversion to sRGB"
        if job.xmp is not None and len(job.xmp) > _XMP_MAX:
            return "XMP larger than a JPEG segment"
        return None

    def _run_ffmpeg(self, job: Job) -> Result:
        import simplejpeg

        src = job.source
        assert src.container is not None and src.item is not None
        geo = _hevc.geometry(src.container, src.item, src.data)
        strip_rows = self._strip_rows(geo, src.orientation)
        quality = job.options.quality
        count = self.threads or threads.threads()
        try:
            strips = _hevc.decode_strips(src.item, geo, src.data, src.container, count, src.orientation)
            if strip_rows:
                pieces = [
                    simplejpeg.encode_jpeg_yuv_planes(y, cb, cr, quality) for y, cb, cr in _even(strips, strip_rows)
                ]
                jpeg = _join_strips(pieces, (src.width, src.height), strip_rows)
                how = f"encoded in {len(pieces)} strips of {strip_rows} rows joined with restart markers"
            else:
                y, cb, cr = _whole(strips, (src.width, src.height))
                jpeg = simplejpeg.encode_jpeg_yuv_planes(y, cb, cr, quality)
                how = "encoded whole"
        except (HeicconvError, _hevc.NotHandled):
            raise
        except Exception as exc:  # FFmpeg's and libjpeg-turbo's own errors
            raise self._library_error(exc, job, decoding=not _is_encoder_error(exc)) from exc
        if (size := _jpeg_size(jpeg)) != (src.width, src.height):
            raise EncodeError("the JPEG is {}x{}, not {}x{}".format(*size, src.width, src.height))
        jpeg = output_edits.jpeg_add_metadata(jpeg, job.icc, job.exif, job.xmp)
        job.note(
            "decoder",
            f"decoded by FFmpeg ({len(geo.tiles)} tile(s), {count} thread(s)); its YCbCr 4:2:0 written to "
            f"JPEG without a conversion to RGB, {how}",
        )
        return job.result(jpeg, self.name)

    def _strip_rows(self, geo: _hevc.Geometry, orientation: int) -> int:
        """Rows per strip if this picture is encoded in strips, else 0.

        A strip is a band of tiles (``_hevc.bands``), so it must be whole 16-row JPEG blocks, at most 65,535
        blocks (the restart interval's field), and an even size, so that 4:2:0 chroma rows stay paired
        where a partial band meets a whole one.
        """
        width, height = geo.size
        turned = orientation >= 5
        rows = geo.tile[0] if turned else geo.tile[1]
        out_width = height if turned else width
        bands = geo.cols if turned else geo.rows
        if bands < 2 or width * height < self.strip_pixels or width % 2 or height % 2:
            return 0
        if rows % 16 or -(-out_width // 16) * (rows // 16) > _MAX_RESTART_INTERVAL:
            return 0
        return rows


def _is_encoder_error(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("simplejpeg")


def _whole(strips: Any, size: tuple[int, int]) -> tuple[Any, Any, Any]:
    """The strips as three whole planes."""
    import numpy as np

    width, height = size
    cw, ch = (width + 1) // 2, (height + 1) // 2
    y = np.empty((height, width), np.uint8)
    cb = np.empty((ch, cw), np.uint8)
    cr = np.empty((ch, cw), np.uint8)
    for s in strips:
        top, ctop = s.top, s.top // 2
        y[top : top + s.y.shape[0]] = s.y
        cb[ctop : ctop + s.cb.shape[0]] = s.cb
        cr[ctop : ctop + s.cr.shape[0]] = s.cr
    return y, cb, cr


def _even(strips: Any, rows: int) -> Any:
    """The upright picture's bands cut into strips of exactly ``rows`` rows (the last one may be shorter)."""
    import numpy as np

    pending: tuple[Any, Any, Any] | None = None
    for s in strips:
        planes = (s.y, s.cb, s.cr)
        if pending is not None:
            planes = (
                np.concatenate((pending[0], s.y)),
                np.concatenate((pending[1], s.cb)),
                np.concatenate((pending[2], s.cr)),
            )
        while planes[0].shape[0] >= rows:
            half = rows // 2
            yield planes[0][:rows], planes[1][:half], planes[2][:half]
            planes = (planes[0][rows:], planes[1][half:], planes[2][half:])
        pending = planes if planes[0].shape[0] else None
    if pending is not None:
        yield pending


def _segments(jpeg: bytes) -> tuple[list[tuple[int, int, int]], int]:
    """(marker, start, end) of each marker segment up to and including SOS, and where the scan's data starts."""
    if jpeg[:2] != b"\xff\xd8":
        raise EncodeError("libjpeg-turbo did not write a JPEG")
    found = []
    pos = 2
    while pos + 4 <= len(jpeg) and jpeg[pos] == 0xFF:
        marker = jpeg[pos + 1]
        length = struct.unpack_from(">H", jpeg, pos + 2)[0]
        found.append((marker, pos, pos + 2 + length))
        pos += 2 + length
        if marker == _SOS:
            return found, pos
    raise EncodeError("libjpeg-turbo wrote a JPEG without a scan")


def _jpeg_size(jpeg: bytes) -> tuple[int, int]:
    for marker, start, _ in _segments(jpeg)[0]:
        if marker == _SOF0:
            height, width = struct.unpack_from(">HH", jpeg, start + 5)
            return width, height
    raise EncodeError("libjpeg-turbo wrote a JPEG without a frame header")


def _join_strips(pieces: list[bytes], size: tuple[int, int], strip_rows: int) -> bytes:
    """One baseline JPEG from strips encoded separately with the same tables.

    Each strip is a whole number of block rows, so its scan data ends at a block boundary; restart
    markers between the strips reset the DC predictors as a new strip's encoder did, and the restart
    interval (DRI) is one strip's blocks. The first strip's header serves for all, its height set to the
    picture's; the other strips' headers must be the same but for the height (libjpeg-turbo writes the
    standard tables for a given quality), or the strips could not share it.
    """
    width, height = size
    if len(pieces) == 1:
        return pieces[0]
    segments, scan = _segments(pieces[0])
    header = bytearray(pieces[0][:scan])
    for marker, start, _ in segments:
        if marker == _SOF0:
            struct.pack_into(">H", header, start + 5, height)
    expected = _header_without_size(pieces[0])
    interval = -(-width // 16) * (strip_rows // 16)
    dri = b"\xff\xdd\x00\x04" + struct.pack(">H", interval)
    sos_start = segments[-1][1]
    out = [bytes(header[:sos_start]), dri, bytes(header[sos_start:])]
    for i, piece in enumerate(pieces):
        if _header_without_size(piece) != expected:
            raise EncodeError("libjpeg-turbo wrote the strips with different tables; they cannot be joined")
        if piece[-2:] != b"\xff\xd9":
            raise EncodeError("a strip's JPEG does not end with its end-of-image marker")
        if i:
            out.append(bytes((0xFF, 0xD0 + (i - 1) % 8)))
        out.append(piece[_segments(piece)[1] : -2])
    out.append(b"\xff\xd9")
    return b"".join(out)


def _header_without_size(jpeg: bytes) -> bytes:
    """The tables and scan header of a JPEG (DQT, DHT, SOF without its height, SOS), to compare strips."""
    parts = []
    for marker, start, end in _segments(jpeg)[0]:
        if marker == _SOF0:
            parts.append(jpeg[start : start + 5] + jpeg[start + 7 : end])
        elif marker in (0xDB, _DHT, _SOS):
            parts.append(jpeg[start:end])
    return b"".join(parts)
