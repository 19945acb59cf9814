"""The ``ffmpeg`` backend: FFmpeg's HEVC decoder (PyAV) for 8-bit HEIC photos, pillow-heif for everything else.

A HEIC photo is HEVC-coded YCbCr 4:2:0, and a JPEG is YCbCr 4:2:0 too. For HEIC -> JPEG this backend
decodes the tiles with FFmpeg (``_hevc``: a decoder per thread, several tiles at once) and hands the planes to
libjpeg-turbo (simplejpeg) without the round trip through RGB that every other route makes: that round trip,
and libde265 being slower than FFmpeg's decoder, are most of what a conversion costs. A picture of two rows
of tiles or more is encoded a row at a time (strips joined with restart markers), in a thread beside the
decoder, so the encode overlaps the decoding and memory stays bounded by a few strips. A resized picture is
resized in YCbCr by FFmpeg's scaler (``_ycbcr``) before it is encoded; PNG, WebP, TIFF and AVIF get the
scaler's RGB, encoded by Pillow.

Whatever this route does not do (HEIC output, alpha, 10/12-bit, crops, other colour matrices, AVIF and
non-HEIF inputs, thumbnails, sRGB conversion, data FFmpeg refuses but that decodes to one picture) runs the
pillow backend's pipeline, and the report says so. The picture is the same either way
(tests/test_equivalence.py, tests/test_corpus.py).
"""

from __future__ import annotations

import io
import struct
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..container import output_edits
from ..errors import DecodeError, EncodeError, HeicconvError
from . import _damage, _hevc, _ycbcr, threads
from ._native import zeroed_allocations
from .contract import Job, Result, first_line
from .pillow import PillowBackend

__all__ = ["STRIP_PIXELS", "FfmpegBackend"]

#: Pictures at least this large (pixels) are decoded and encoded a row of tiles at a time, if their tiles make
#: two rows or more; smaller ones whole. Every size: a strip's JPEG encode overlaps the decoding of the next
#: rows (a second core at work on one photo), and memory stays bounded by a few strips.
STRIP_PIXELS = 0
#: Strips decoded but not yet encoded, at most: the decoder waits for the encoder beyond that (memory bound).
_PENDING_STRIPS = 2
_SOF0, _DHT, _SOS, _EOI = 0xC0, 0xC4, 0xDA, 0xD9
_MAX_RESTART_INTERVAL = 0xFFFF  # DRI's field is 16 bits: MCUs per strip
_OUTPUTS = frozenset({"jpeg", "png", "webp", "tiff", "avif"})  # what Pillow writes from the RGB picture
_XMP_MAX = 65_504  # what one APP1 segment holds after the XMP namespace header (Pillow's limit too)


class FfmpegBackend(PillowBackend):
    """FFmpeg's HEVC decoder for 8-bit HEIC photos (straight into libjpeg-turbo for JPEG); the pillow backend for
    the rest."""

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
            except _hevc.Refused as exc:
                why = self._refused(job, exc)
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
        if job.fmt not in _OUTPUTS:
            return f"{job.fmt} output (the FFmpeg route writes {', '.join(sorted(_OUTPUTS)).upper()})"
        if src.alpha or src.grayscale or src.bit_depth != 8 or job.depth != 8:
            return "alpha, grayscale or more than 8 bits"
        if job.thumbnail is not None:
            return "the embedded thumbnail is decoded instead"
        if job.to_srgb and job.source_icc is not None:
            return "conversion to sRGB"
        if job.fmt == "jpeg" and job.xmp is not None and len(job.xmp) > _XMP_MAX:
            return "XMP larger than a JPEG segment"
        return None

    def _refused(self, job: Job, refusal: _hevc.Refused) -> str:
        """After FFmpeg refused the picture: why libheif decodes it instead, or ``DecodeError`` if the data is
        damaged. Each tile FFmpeg refuses on its own is decoded by FFmpeg concealing and by libheif; where the two
        make different pictures, the data is damaged (every backend's output would be a decoder's guess)."""
        import numpy as np

        src = job.source
        assert src.container is not None and src.item is not None
        geo = _hevc.geometry(src.container, src.item, src.data)
        refused = []
        for index, tile in enumerate(geo.tiles):
            if _hevc.decode_tile(geo, src.data, src.container, index, strict=True) is not None:
                continue
            refused.append(index + 1)
            where = f"tile {index + 1} of {len(geo.tiles)}" if len(geo.tiles) > 1 else "the image"
            # An 8-bit 4:2:0 tile (geometry() lets no other through) is within what FFmpeg's decoder reads: one it
            # makes no picture of even when concealing errors cannot be parsed, whatever libheif makes of it.
            lenient = _hevc.decode_tile(geo, src.data, src.container, index, strict=False)
            if lenient is None:
                raise DecodeError(f"the HEVC data is damaged: {where} cannot be parsed ({refusal})")
            try:
                with zeroed_allocations():
                    theirs = np.asarray(self._heif.open_heif(io.BytesIO(job.heif_input(tile)))[0].to_pillow())
            except Exception as exc:  # libheif's own error: both decoders refuse it
                raise DecodeError(
                    f"the HEVC data is damaged: {where} is refused by FFmpeg ({refusal}) and by libheif "
                    f"({first_line(exc)})"
                ) from exc
            if _hevc.disagree(src.item, lenient, theirs):
                raise DecodeError(
                    f"the HEVC data is damaged: {where} is refused by FFmpeg and decodes to another picture on "
                    f"libheif ({refusal})"
                )
        if not refused:
            return f"{refusal}, though it decodes each tile on its own"
        return f"{refusal} (tile(s) {', '.join(map(str, refused))}), and libheif decodes the same picture from them"

    def _run_ffmpeg(self, job: Job) -> Result:
        src = job.source
        assert src.container is not None and src.item is not None
        geo = _hevc.geometry(src.container, src.item, src.data)
        size = (src.width, src.height)
        resized = job.size != size
        strip_rows = 0 if resized or job.fmt != "jpeg" else self._strip_rows(geo, src.orientation)
        count = self.threads or threads.threads()
        what = f"decoded by FFmpeg ({len(geo.tiles)} tile(s), {count} thread(s));"
        try:
            ahead = _damage.read_ahead(src) if count > 1 else None  # a single image: libde265 reads it meanwhile
            strips = _hevc.decode_strips(src.item, geo, src.data, src.container, count, src.orientation, ahead)
            if job.fmt == "jpeg":
                jpeg, how = self._jpeg(strips, job, strip_rows, count)
            else:
                img = _ycbcr.rgb(_ycbcr.frame(strips, size), job.size, threads=count)
        except (HeicconvError, _hevc.NotHandled, _hevc.Refused):
            raise
        except Exception as exc:  # FFmpeg's and libjpeg-turbo's own errors
            raise self._library_error(exc, job, decoding=not _is_encoder_error(exc)) from exc
        if job.fmt != "jpeg":
            scaled = "resized (Lanczos) and " if resized else ""
            job.note("decoder", f"{what} {scaled}converted to RGB by FFmpeg's scaler, encoded by Pillow")
            try:
                return job.result(self.save(img, job), self.name)
            except HeicconvError:
                raise
            except Exception as exc:
                raise self._library_error(exc, job, decoding=False) from exc
        if (written := _jpeg_size(jpeg)) != job.size:
            raise EncodeError("the JPEG is {}x{}, not {}x{}".format(*written, *job.size))
        jpeg = output_edits.jpeg_add_metadata(jpeg, job.icc, job.exif, job.xmp)
        scaled = "resized by FFmpeg's scaler (Lanczos) in YCbCr, " if resized else ""
        job.note("decoder", f"{what} {scaled}its YCbCr written to JPEG without a conversion to RGB, {how}")
        return job.result(jpeg, self.name)

    def _jpeg(self, strips: Iterator[_hevc.Strip], job: Job, strip_rows: int, count: int) -> tuple[bytes, str]:
        """The JPEG of the decoded planes, and how it was written."""
        import simplejpeg

        src, quality = job.source, job.options.quality
        if strip_rows:
            pieces = _encoded(_even(strips, strip_rows), quality, overlap=count > 1)
            how = f"encoded in {len(pieces)} strips of {strip_rows} rows joined with restart markers"
            return _join_strips(pieces, (src.width, src.height), strip_rows), how
        if job.size == (src.width, src.height):
            y, cb, cr = _whole(strips, job.size)
            return simplejpeg.encode_jpeg_yuv_planes(_ycbcr.even_luma(y), cb, cr, quality), "4:2:0, encoded whole"
        # As the pillow backend writes a resized picture: chroma at full resolution from quality 90 up.
        full = quality >= 90
        whole = _ycbcr.frame(strips, (src.width, src.height))
        y, cb, cr = _ycbcr.planes(whole, job.size, full_chroma=full, threads=count)
        return simplejpeg.encode_jpeg_yuv_planes(y, cb, cr, quality), f"{'4:4:4' if full else '4:2:0'}, encoded whole"

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


def _encoded(strips: Iterator[tuple[Any, Any, Any]], quality: int, *, overlap: bool) -> list[bytes]:
    """Each strip's JPEG. With ``overlap``, one thread encodes (libjpeg-turbo releases Python's lock) while this
    one goes on feeding the decoder, so that encoding costs no wall time but the last strip's; the decoder
    waits when ``_PENDING_STRIPS`` strips are waiting for the encoder."""
    import simplejpeg

    encode = simplejpeg.encode_jpeg_yuv_planes
    if not overlap:
        return [encode(y, cb, cr, quality) for y, cb, cr in strips]
    out: list[bytes] = []
    pending: deque[Future[bytes]] = deque()
    with ThreadPoolExecutor(1, thread_name_prefix="heicconv-jpeg") as pool:
        try:
            for y, cb, cr in strips:
                pending.append(pool.submit(encode, y, cb, cr, quality))
                if len(pending) > _PENDING_STRIPS:
                    out.append(pending.popleft().result())
            out.extend(f.result() for f in pending)
        finally:
            for f in pending:  # the decoder failed: what it had decoded is not worth encoding
                f.cancel()
    return out


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


def _even(strips: Iterator[_hevc.Strip], rows: int) -> Iterator[tuple[Any, Any, Any]]:
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
