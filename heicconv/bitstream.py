"""What an HEVC stream says about its own picture size, read from the decoder configuration.

A HEIF file declares each image's size twice: in its ``ispe`` property, which heicconv's limits
read, and in the HEVC sequence parameter set the decoder really uses. A hostile or broken file
can declare 64x64 in ``ispe`` and code 40000x40000: decoders then allocate for the coded size
(pillow-heif runs out of memory, others fail after decoding). Reading the SPS lets heicconv
refuse the mismatch, and apply its limits to the coded size, before any decoder runs.
"""

from __future__ import annotations

__all__ = ["hevc_picture_size"]

_SPS = 33  # nal_unit_type of a sequence parameter set
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


def _sps_size(nal: bytes) -> tuple[int, int]:
    bits = _Bits(_rbsp(nal[2:]))  # after the two-byte NAL unit header
    bits.u(4)  # sps_video_parameter_set_id
    sub_layers = bits.u(3)
    bits.u(1)
    bits.u(96)  # general profile, tier, compatibility and constraint flags, level
    present = [(bits.u(1), bits.u(1)) for _ in range(sub_layers)]
    if sub_layers:
        bits.u(2 * (8 - sub_layers))
    for profile, level in present:
        bits.u(88 * profile + 8 * level)
    bits.ue()  # sps_seq_parameter_set_id
    chroma = bits.ue()
    if chroma == 3 and bits.u(1):  # separate colour planes: each is coded as monochrome
        chroma = 0
    width, height = bits.ue(), bits.ue()
    if bits.u(1):  # conformance window: the decoded picture is cropped to it
        left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
        unit_w, unit_h = _CHROMA_UNITS.get(chroma, (1, 1))
        width -= unit_w * (left + right)
        height -= unit_h * (top + bottom)
    return width, height


def hevc_picture_size(hvcc: bytes) -> tuple[int, int] | None:
    """The size of the picture an ``hvcC`` configuration's SPS decodes to, or None if it carries no SPS.

    Raises ``ValueError`` if the SPS is malformed.
    """
    if len(hvcc) < 23:
        return None
    pos = 23
    for _ in range(hvcc[22]):  # numOfArrays
        if pos + 3 > len(hvcc):
            return None
        nal_type = hvcc[pos] & 0x3F
        count = int.from_bytes(hvcc[pos + 1 : pos + 3], "big")
        pos += 3
        for _ in range(count):
            if pos + 2 > len(hvcc):
                return None
            length = int.from_bytes(hvcc[pos : pos + 2], "big")
            nal = hvcc[pos + 2 : pos + 2 + length]
            pos += 2 + length
            if nal_type == _SPS and len(nal) == length:
                return _sps_size(nal)
    return None
