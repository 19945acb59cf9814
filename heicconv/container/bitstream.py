"""What an HEVC or AV1 stream says about itself, read without decoding: its picture size, and whether
its framing holds together.

A HEIF file declares each image's size twice: in its ``ispe`` property, which heicconv's limits
read, and in the HEVC sequence parameter set the decoder really uses. A hostile or broken file
can declare 64x64 in ``ispe`` and code 40000x40000: decoders then allocate for the coded size
(pillow-heif runs out of memory, others fail after decoding). Reading the SPS lets heicconv
refuse the mismatch, and apply its limits to the coded size, before any decoder runs.

The same streams, given damaged data, are decoded by some decoders into a picture with grey, green
or smeared regions, without an error. :func:`hevc_damage` and :func:`av1_damage` read an item's coded
data the way a decoder will and say what breaks its framing: units that do not fill the data exactly,
illegal unit headers, and zeros where coded data must be. A pass over the bytes, no decoding.

>>> nal = bytes([0x26, 0x01]) + bytes(range(1, 40))  # an IDR slice with a plausible payload
>>> hevc_damage(len(nal).to_bytes(4, "big") + nal)
''
>>> hevc_damage(len(nal).to_bytes(4, "big") + nal[:-8] + bytes(8))
'zero bytes inside NAL unit 1 (at byte 37 of 45)'
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "Av1Sequence",
    "Slices",
    "av1_damage",
    "av1_select_layer",
    "av1_sequence",
    "hevc_damage",
    "hevc_picture_size",
    "hevc_slices",
    "hvcc_arrays",
    "hvcc_units",
    "nal_units",
]

_SPS = 33  # nal_unit_type of a sequence parameter set
_PPS = 34  # and of a picture parameter set
_CHROMA_UNITS = {0: (1, 1), 1: (2, 2), 2: (2, 1), 3: (1, 1)}  # chroma_format_idc -> SubWidthC, SubHeightC


class _Bits:
    """An RBSP bit reader (emulation-prevention bytes already removed)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def u(self, n: int) -> int:
        value = 0
        for _ in range(n):
            byte = self.pos >> 3
            if byte >= len(self.data):
                raise ValueError("the SPS ends early")
            value = (value << 1) | ((self.data[byte] >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return value

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("an Exp-Golomb code in the SPS is too long")
        return (1 << zeros) - 1 + self.u(zeros)


def _rbsp(nal: bytes) -> bytes:
    out = bytearray()
    zeros = 0
    for byte in nal:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


@dataclass(frozen=True)
class _Sps:
    id: int
    sub_layers: int
    coded: tuple[int, int]  # pic_width/height_in_luma_samples
    size: tuple[int, int]  # cropped to the conformance window


def _sps_head(bits: _Bits) -> _Sps:
    """An SPS read up to its conformance window (``bits`` after the two-byte NAL unit header)."""
    bits.u(4)  # sps_video_parameter_set_id
    sub_layers = bits.u(3)
    bits.u(1)
    bits.u(96)  # general profile, tier, compatibility and constraint flags, level
    present = [(bits.u(1), bits.u(1)) for _ in range(sub_layers)]
    if sub_layers:
        bits.u(2 * (8 - sub_layers))
    for profile, level in present:
        bits.u(88 * profile + 8 * level)
    sps_id = bits.ue()
    chroma = bits.ue()
    if chroma == 3 and bits.u(1):  # separate colour planes: each is coded as monochrome
        chroma = 0
    coded = width, height = bits.ue(), bits.ue()
    if bits.u(1):  # conformance window: the decoded picture is cropped to it
        left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
        unit_w, unit_h = _CHROMA_UNITS.get(chroma, (1, 1))
        width -= unit_w * (left + right)
        height -= unit_h * (top + bottom)
    return _Sps(sps_id, sub_layers, coded, (width, height))


def _sps_size(nal: bytes) -> tuple[int, int]:
    return _sps_head(_Bits(_rbsp(nal[2:]))).size


@dataclass(frozen=True)
class Slices:
    """Where the slice segments of a coded picture begin: their addresses (ascending, the first 0) among its
    ``count`` coding tree blocks (CTBs) in raster order, ``columns`` to a row, each ``ctb`` pixels square."""

    ctb: int
    columns: int
    count: int
    starts: tuple[int, ...]


def hevc_slices(parameter_sets: list[bytes], units: list[bytes]) -> Slices | None:
    """Where the slice segments among ``units`` (one picture's NAL units) begin, read from the SPS, the PPS and
    each slice segment header; None if a parameter set or header cannot be read, or the picture is coded in
    HEVC tiles (whose CTBs are not decoded in raster order)."""
    sps: dict[int, tuple[int, int, int]] = {}  # id -> CTB log2 size, CTB columns, CTB count
    pps: dict[int, tuple[int, bool]] = {}  # id -> SPS id, dependent slice segments enabled
    try:
        for nal in [*parameter_sets, *units]:
            kind = (nal[0] >> 1) & 0x3F
            if kind == _SPS:
                sid, ctb, columns, count = _sps_ctbs(nal)
                sps[sid] = (ctb, columns, count)
            elif kind == _PPS:
                pid, sid, dependent, tiles = _pps_fields(nal)
                if tiles:
                    return None
                pps[pid] = (sid, dependent)
        starts = [_slice_address(nal, pps, sps) for nal in units if (nal[0] >> 1) & 0x3F in _HEVC_VCL]
    except (ValueError, KeyError, IndexError):
        return None
    if not starts or starts[0][1] != 0 or len({s[0] for s in starts}) != 1:
        return None
    ctb, columns, count = sps[starts[0][0]]
    return Slices(1 << ctb, columns, count, tuple(sorted({a for _, a in starts})))


def _sps_ctbs(nal: bytes) -> tuple[int, int, int, int]:
    """An SPS's id, CTB log2 size, CTBs to a row and CTBs in the picture."""
    bits = _Bits(_rbsp(nal[2:]))
    head = _sps_head(bits)
    bits.ue(), bits.ue()  # bit_depth_luma_minus8, bit_depth_chroma_minus8
    bits.ue()  # log2_max_pic_order_cnt_lsb_minus4
    ordering = bits.u(1)  # sps_sub_layer_ordering_info_present_flag
    for _ in range(head.sub_layers + 1 if ordering else 1):
        bits.ue(), bits.ue(), bits.ue()
    log2_min = bits.ue() + 3
    ctb = log2_min + bits.ue()
    if not 4 <= ctb <= 6:
        raise ValueError(f"a CTB size of 2^{ctb}")
    width, height = head.coded
    columns, rows = -(-width // (1 << ctb)), -(-height // (1 << ctb))
    return head.id, ctb, columns, columns * rows


def _pps_fields(nal: bytes) -> tuple[int, int, bool, bool]:
    """A PPS's id, its SPS's id, whether dependent slice segments are enabled, and whether tiles are."""
    bits = _Bits(_rbsp(nal[2:]))
    pid, sid = bits.ue(), bits.ue()
    dependent = bool(bits.u(1))
    bits.u(1), bits.u(3), bits.u(1), bits.u(1)  # output flag, extra header bits, sign hiding, cabac init
    bits.ue(), bits.ue(), bits.ue()  # default active L0 and L1 references, init_qp_minus26 (se: skipped alike)
    bits.u(1), bits.u(1)  # constrained intra prediction, transform skip
    if bits.u(1):  # cu_qp_delta_enabled_flag
        bits.ue()
    bits.ue(), bits.ue()  # Cb and Cr QP offsets (se)
    bits.u(1), bits.u(1), bits.u(1), bits.u(1)  # slice chroma QP offsets, weighted (bi)prediction, bypass
    return pid, sid, dependent, bool(bits.u(1))


def _slice_address(
    nal: bytes, pps: dict[int, tuple[int, bool]], sps: dict[int, tuple[int, int, int]]
) -> tuple[int, int]:
    """A slice segment's SPS id and address (its first CTB, in raster order)."""
    bits = _Bits(_rbsp(nal[2:40]))  # the fields read come first: a few bytes of a header, not the slice's data
    first = bits.u(1)
    if 16 <= (nal[0] >> 1) & 0x3F <= 23:
        bits.u(1)  # no_output_of_prior_pics_flag
    sid, dependent = pps[bits.ue()]
    if first:
        return sid, 0
    if dependent:
        bits.u(1)  # dependent_slice_segment_flag
    count = sps[sid][2]
    address = bits.u(max(1, (count - 1).bit_length()))
    if not 0 < address < count:
        raise ValueError(f"slice segment address {address} of {count}")
    return sid, address


def hevc_picture_size(hvcc: bytes) -> tuple[int, int] | None:
    """The size of the picture an ``hvcC`` configuration's SPS decodes to, or None if it carries no SPS.

    Raises ``ValueError`` if the SPS is malformed.
    """
    for nal in hvcc_units(hvcc):
        if (nal[0] >> 1) & 0x3F == _SPS:
            return _sps_size(nal)
    return None


def hvcc_units(hvcc: bytes) -> list[bytes]:
    """The NAL units (VPS, SPS, PPS, SEI) an ``hvcC`` configuration carries, as far as they are whole (up to the
    first one shorter than a NAL unit header)."""
    units, _ = hvcc_arrays(hvcc)
    short = next((n for n, unit in enumerate(units) if len(unit) < 2), len(units))
    return units[:short]


def hvcc_arrays(hvcc: bytes) -> tuple[list[bytes], str | None]:
    """Every NAL unit an ``hvcC`` configuration's arrays hold, in order (empty ones too), and, if the box ends
    before they do, where (``"its header"``, ``"its parameter sets"``, ``"a parameter set"``), else None."""
    units: list[bytes] = []
    if len(hvcc) < 23:
        return units, "its header"
    pos = 23
    for _ in range(hvcc[22]):  # numOfArrays
        if pos + 3 > len(hvcc):
            return units, "its parameter sets"
        count = int.from_bytes(hvcc[pos + 1 : pos + 3], "big")
        pos += 3
        for _ in range(count):
            length = int.from_bytes(hvcc[pos : pos + 2], "big")
            if pos + 2 + length > len(hvcc):
                return units, "a parameter set"
            units.append(hvcc[pos + 2 : pos + 2 + length])
            pos += 2 + length
    return units, None


def nal_units(data: bytes, length_size: int = 4) -> list[bytes]:
    """The NAL units of an HEVC item's data (each behind a ``length_size``-byte length), as far as they fit."""
    units = []
    pos = 0
    while pos + length_size <= len(data):
        length = int.from_bytes(data[pos : pos + length_size], "big")
        pos += length_size
        if length == 0 or pos + length > len(data):
            break
        units.append(data[pos : pos + length])
        pos += length
    return units


# Inside a NAL unit, emulation prevention rules out 00 00 00, 00 00 01 and 00 00 02 (an encoder writes
# 00 00 03 0x instead), so zeros where data should be (a file preallocated and never filled, a hole
# left by a failed write) always show as one of these.
_FORBIDDEN_IN_NAL = re.compile(b"\x00\x00[\x00-\x02]")
_HEVC_VCL = range(0, 32)
# nal_unit_type values H.265 reserves (table 7-1): no conforming encoder writes them.
_HEVC_RESERVED = frozenset([*range(10, 16), *range(22, 32), *range(41, 48)])


def hevc_damage(data: bytes, length_size: int = 4, *, coded: bool = True) -> str:
    """What breaks the framing of an HEVC item's data (NAL units, each behind a ``length_size``-byte length),
    or ``""`` if it holds together.

    Every unit must fit the data exactly, with a legal header (``forbidden_zero_bit`` clear, a type H.265
    does not reserve, a temporal id) and no run of zeros that emulation prevention rules out. ``coded``
    (an image item, not a configuration) also requires at least one picture slice.
    """
    pos = 0
    slices = 0
    count = 0
    while pos < len(data):
        count += 1
        if pos + length_size > len(data):
            return f"NAL unit {count}'s length field runs past the end of the data (byte {pos} of {len(data)})"
        length = int.from_bytes(data[pos : pos + length_size], "big")
        start, end = pos + length_size, pos + length_size + length
        if length < 2:
            return f"NAL unit {count} is {length} byte(s) long, shorter than its header (byte {pos:,} of {len(data):,})"
        if end > len(data):
            return (
                f"NAL unit {count} says it is {length:,} bytes long but the data ends {end - len(data):,} bytes "
                f"before it does (at byte {pos:,} of {len(data):,})"
            )
        why = _nal_header_damage(data[start], data[start + 1])
        if why:
            return f"NAL unit {count} {why} (at byte {pos:,} of {len(data):,})"
        zeros = _FORBIDDEN_IN_NAL.search(data, start, end)
        if zeros is not None or data[end - 1] == 0:
            at = zeros.start() if zeros is not None else end - 1
            return f"zero bytes inside NAL unit {count} (at byte {at:,} of {len(data):,})"
        if (data[start] >> 1) & 0x3F in _HEVC_VCL:
            slices += 1
        pos = end
    if coded and not slices:
        return "no coded picture data (no slice NAL unit)" if data else "no data at all"
    return ""


def _nal_header_damage(first: int, second: int) -> str:
    kind = (first >> 1) & 0x3F
    if first & 0x80:
        return "has its forbidden_zero_bit set"
    if kind in _HEVC_RESERVED:
        return f"has the reserved type {kind}"
    if second & 0x07 == 0:
        return "has a temporal id of -1 (nuh_temporal_id_plus1 is 0)"
    if 16 <= kind <= 23 and second & 0x07 != 1:
        return f"is an intra random access picture (type {kind}) with a temporal id above 0"
    return ""


_AV1_TYPES = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 15})  # the OBU types AV1 defines; 0 and 9-14 are reserved
_AV1_TILE_DATA = frozenset({4, 6})  # OBU_TILE_GROUP, OBU_FRAME
# AV1 has no emulation prevention, so a few zeros are ordinary; a run this long in arithmetic-coded tile
# data, or this many zeros ending it (the spec allows zero padding after a tile's trailing bit; encoders
# write none), is not something an encoder writes.
_AV1_ZERO_RUN = 128
_AV1_ZERO_END = 16


def av1_damage(data: bytes) -> str:
    """What breaks the framing of an AV1 item's data (OBUs), or ``""`` if it holds together.

    Every OBU must have a legal header (forbidden and reserved bits clear, a type AV1 defines) and fit the
    data exactly; the data must hold tile data, with no long run of zeros in it.
    """
    pos = 0
    count = 0
    tiles = 0
    while pos < len(data):
        count += 1
        header = data[pos]
        kind = (header >> 3) & 0x0F
        if header & 0x81 or kind not in _AV1_TYPES:
            return f"OBU {count} has an illegal header 0x{header:02X} (at byte {pos:,} of {len(data):,})"
        start = pos + 1 + ((header >> 2) & 1)  # the extension byte, if any
        if header & 0x02:  # obu_has_size_field
            size, start = _leb128(data, start)
            if size < 0:
                return f"OBU {count}'s size field runs past the end of the data (byte {pos:,} of {len(data):,})"
            end = start + size
        else:
            end = len(data)
        if end > len(data):
            return (
                f"OBU {count} says it is {end - start:,} bytes long but the data ends {end - len(data):,} bytes "
                f"before it does (at byte {pos:,} of {len(data):,})"
            )
        if kind in _AV1_TILE_DATA:
            tiles += 1
            at = data.find(bytes(_AV1_ZERO_RUN), start, end)
            if at < 0 and end - start >= _AV1_ZERO_END and not any(data[end - _AV1_ZERO_END : end]):
                at = end - _AV1_ZERO_END
            if at >= 0:
                return f"a run of zero bytes inside OBU {count}'s tile data (at byte {at:,} of {len(data):,})"
        pos = end
    if not tiles:
        return "no coded picture data (no tile data OBU)" if data else "no data at all"
    return ""


def _leb128(data: bytes, pos: int) -> tuple[int, int]:
    """An unsigned LEB128 value and the position after it; -1 if the data ends inside it."""
    value = 0
    for i in range(8):
        if pos + i >= len(data):
            return -1, pos
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, pos + i + 1
    return value, pos + 8


@dataclass(frozen=True)
class Av1Sequence:
    """What an AV1 sequence header says about the pictures: their largest size, and its operating points
    (each an ``operating_point_idc``: bits 8-11 the spatial layers it decodes, bits 0-7 the temporal ones;
    0 for a stream without layers)."""

    max_size: tuple[int, int]
    operating_points: tuple[int, ...]

    @property
    def layered(self) -> bool:
        return any(idc >> 8 & 0xE for idc in self.operating_points)  # a spatial layer above 0


def _obus(data: bytes) -> Iterator[tuple[int, int, int, int, int]]:
    """(type, spatial_id or -1, start, payload start, end) of each OBU; ``ValueError`` when the framing breaks."""
    pos = 0
    while pos < len(data):
        header = data[pos]
        kind, extended = (header >> 3) & 0x0F, bool(header & 0x04)
        if extended and pos + 1 >= len(data):
            raise ValueError("an OBU header ends early")
        spatial = (data[pos + 1] >> 3) & 3 if extended else -1
        start = pos + 1 + extended
        if header & 0x02:
            size, start = _leb128(data, start)
            if size < 0 or start + size > len(data):
                raise ValueError("an OBU runs past the end of the data")
            end = start + size
        else:
            end = len(data)
        yield kind, spatial, pos, start, end
        pos = end


def av1_sequence(data: bytes) -> Av1Sequence | None:
    """The sequence header of an AV1 item's data, or None if it has none; ``ValueError`` if it is malformed."""
    for kind, _, _, start, end in _obus(data):
        if kind == 1:
            return _sequence_header(data[start:end])
    return None


def _sequence_header(payload: bytes) -> Av1Sequence:
    bits = _Bits(payload)
    bits.u(4)  # seq_profile, still_picture
    if bits.u(1):  # reduced_still_picture_header: one operating point, no layers
        bits.u(5)
        points: tuple[int, ...] = (0,)
    else:
        decoder_model, delay_length = False, 0
        if bits.u(1):  # timing_info_present_flag
            bits.u(64)  # num_units_in_display_tick, time_scale
            if bits.u(1):  # equal_picture_interval: num_ticks_per_picture_minus_1, uvlc()
                zeros = 0
                while not bits.u(1):
                    zeros += 1
                    if zeros > 31:
                        raise ValueError("a uvlc code in the sequence header is too long")
                bits.u(zeros)
            decoder_model = bool(bits.u(1))
            if decoder_model:
                delay_length = bits.u(5) + 1
                bits.u(32 + 5 + 5)  # decoding tick, removal time and presentation time lengths
        display_delay = bits.u(1)
        found = []
        for _ in range(bits.u(5) + 1):
            idc, level = bits.u(12), bits.u(5)
            if level > 7:
                bits.u(1)  # seq_tier
            if decoder_model and bits.u(1):
                bits.u(2 * delay_length + 1)
            if display_delay and bits.u(1):
                bits.u(4)
            found.append(idc)
        points = tuple(found)
    width_bits, height_bits = bits.u(4) + 1, bits.u(4) + 1
    return Av1Sequence((bits.u(width_bits) + 1, bits.u(height_bits) + 1), points)


def av1_select_layer(data: bytes, operating_point: int, layer: int | None) -> bytes:
    """An AV1 item's data with only the OBUs a decoder needs to output spatial ``layer`` of ``operating_point``
    (``layer`` None: the highest layer that operating point decodes): what AVIF's ``a1op`` and ``lsel`` select.

    Any decoder then outputs that layer, whether it reads those properties or not (libheif 1.15 outputs the
    highest layer in the stream). ``ValueError`` if the data or the selection does not hold together.
    """
    sequence = av1_sequence(data)
    if sequence is None or not sequence.layered:
        return data
    if operating_point >= len(sequence.operating_points):
        raise ValueError(f"operating point {operating_point} of {len(sequence.operating_points)} is selected")
    spatial = sequence.operating_points[operating_point] >> 8 & 0xF
    top = spatial.bit_length() - 1 if layer is None else layer
    if top < 0 or not spatial >> top & 1:
        raise ValueError(f"layer {top} is not in operating point {operating_point}")
    kept = [
        data[s:e]
        for _, layer_id, s, _, e in _obus(data)
        if layer_id <= top and (layer_id < 0 or spatial >> layer_id & 1)
    ]
    return b"".join(kept)
