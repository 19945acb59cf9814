"""The bytes of a file: reading and writing HEIF/AVIF (ISOBMFF) and JPEG, without decoding pixels.

What an input holds (:mod:`.info`), its boxes (:mod:`.isobmff`, :mod:`.mini`), whether its coded data
is whole (:mod:`.completeness`, :mod:`.bitstream`), its colour, EXIF and XMP (:mod:`.colour`,
:mod:`.exif`, :mod:`.xmp`), its gain map (:mod:`.gainmap`), and the edits made to an encoder's output
bytes (:mod:`.output_edits`, :mod:`.sixteen_bit`, :mod:`.ultrahdr`).
"""
