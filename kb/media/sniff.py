"""What an uploaded file really is: PNG, JPEG, GIF or WebP, and its size in pixels, read from its bytes.

Only the headers are read, never the pixels: the server decodes no image data, so a malformed
file cannot hurt it, and the declared dimensions are checked before any browser decodes the
image (a small file that unpacks into gigabytes of pixels is a "decompression bomb").
SVG is refused rather than sanitised: it is XML that can carry scripts, event handlers,
external references and CSS, and a help centre needs screenshots and photos, not vector art.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from kb.errors import MediaError

# Browsers' own limits are near this (WebP stops at 16,383); nothing a help article needs is larger.
MAX_SIDE = 16_384
NOT_AN_IMAGE = ("This file is not a PNG, JPEG, GIF or WebP image (kb checks the content, not the name). "
                "Save it in one of those formats and upload it again.")
SVG_REFUSED = ("SVG images are refused: they can contain scripts. Export the drawing as PNG and upload that.")
# JPEG frame headers (SOF0-SOF15 without DHT, JPG and DAC) carry the image's size.
JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
JPEG_NO_LENGTH = {0x01, 0xD8, *range(0xD0, 0xD8)}


@dataclass(frozen=True)
class ImageInfo:
    """The checked type and size of an image."""

    kind: str
    width: int
    height: int

    @property
    def content_type(self) -> str:
        """The MIME type to serve it with."""
        return f"image/{self.kind}"

    @property
    def extension(self) -> str:
        """The usual file-name extension of its type."""
        return {"jpeg": "jpg"}.get(self.kind, self.kind)


def sniff_image(data: bytes, *, max_pixels: int) -> ImageInfo:
    """The image's type and size from its bytes; MediaError if it is not an accepted, bounded image."""
    if not data:
        raise MediaError("The file is empty: choose an image file.")
    info = _read_header(data)
    check_dimensions(info.width, info.height, max_pixels)
    return info


def check_dimensions(width: int, height: int, max_pixels: int) -> None:
    """Refuse a width or height of zero, a side over MAX_SIDE, or more than ``max_pixels`` pixels."""
    if width < 1 or height < 1:
        raise MediaError("The image says it has no pixels: the file is damaged. Save it again and upload it.")
    if max(width, height) > MAX_SIDE or width * height > max_pixels:
        raise MediaError(f"The image is {width:,} × {height:,} pixels; the limit is {max_pixels / 1e6:g} megapixels "
                         f"and {MAX_SIDE:,} pixels a side. Make it smaller and upload it again.")


def _read_header(data: bytes) -> ImageInfo:
    """Dispatch on the magic bytes."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            return _png(data)
        if data.startswith(b"\xff\xd8\xff"):
            return _jpeg(data)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            return _gif(data)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp(data)
    except (struct.error, IndexError):
        raise MediaError("The image file is cut short or damaged: save it again and upload it.") from None
    if _looks_like_svg(data):
        raise MediaError(SVG_REFUSED)
    raise MediaError(NOT_AN_IMAGE)


def _looks_like_svg(data: bytes) -> bool:
    """An XML or SVG document, perhaps with a byte-order mark or leading blanks."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith(b"<") and b"<svg" in head


def _png(data: bytes) -> ImageInfo:
    """PNG: the first chunk must be IHDR, holding width and height (APNG frames stay inside them)."""
    if data[12:16] != b"IHDR":
        raise MediaError("The PNG file is damaged (no IHDR header): save it again and upload it.")
    width, height = struct.unpack(">II", data[16:24])
    return ImageInfo("png", width, height)


def _jpeg(data: bytes) -> ImageInfo:
    """JPEG: walk the marker segments up to the frame header (SOFn)."""
    pos = 2
    while True:
        while data[pos] != 0xFF:  # tolerate stray bytes between segments, as decoders do
            pos += 1
        while data[pos] == 0xFF:  # fill bytes
            pos += 1
        marker = data[pos]
        pos += 1
        if marker in JPEG_NO_LENGTH:
            continue
        if marker in (0xD9, 0xDA):
            raise MediaError("The JPEG file has no frame header: save it again and upload it.")
        (length,) = struct.unpack(">H", data[pos:pos + 2])
        if marker in JPEG_SOF:
            height, width = struct.unpack(">HH", data[pos + 3:pos + 7])
            return ImageInfo("jpeg", width, height)
        pos += length


def _gif(data: bytes) -> ImageInfo:
    """GIF: the logical screen, and every frame checked to lie inside it (frames can claim more)."""
    width, height = struct.unpack("<HH", data[6:10])
    pos = 13 + _colour_table_size(data[10])
    while data[pos] != 0x3B:  # trailer
        block = data[pos]
        if block == 0x21:  # extension: label, then sub-blocks
            pos = _skip_sub_blocks(data, pos + 2)
        elif block == 0x2C:  # image descriptor
            left, top, frame_w, frame_h = struct.unpack("<HHHH", data[pos + 1:pos + 9])
            if left + frame_w > width or top + frame_h > height:
                raise MediaError("A frame of this GIF is larger than the image itself: save it again and upload it.")
            pos = _skip_sub_blocks(data, pos + 10 + _colour_table_size(data[pos + 9]) + 1)
        else:
            raise MediaError("The GIF file is damaged: save it again and upload it.")
    return ImageInfo("gif", width, height)


def _colour_table_size(flags: int) -> int:
    """Bytes of a GIF colour table announced by a packed-fields byte (0 if there is none)."""
    return 3 * (2 << (flags & 0x07)) if flags & 0x80 else 0


def _skip_sub_blocks(data: bytes, pos: int) -> int:
    """The position after a chain of GIF data sub-blocks (each a length byte, ended by 0)."""
    while data[pos]:
        pos += data[pos] + 1
    return pos + 1


def _webp(data: bytes) -> ImageInfo:
    """WebP: lossy (VP8), lossless (VP8L) or extended (VP8X, whose canvas bounds every frame)."""
    if len(data) < 30:
        raise IndexError("cut short")
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return ImageInfo("webp", width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L" and data[20] == 0x2F:
        (bits,) = struct.unpack("<I", data[21:25])
        return ImageInfo("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return ImageInfo("webp", width, height)
    raise MediaError("The WebP file is damaged: save it again and upload it.")
