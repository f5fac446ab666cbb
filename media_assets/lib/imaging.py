"""Decoding images for models and previews: reduced, and under one pixel limit and one
memory bound.

Models see 224-512 px. A 250-megapixel PNG decoded whole takes a gigabyte (Pillow keeps
RGB as 4 bytes a pixel). So no image over `FULL_DECODE_PIXELS` is ever decoded whole:
- a JPEG is decoded at reduced scale (its DCT scaling, through `draft`);
- a PNG (non-interlaced, 8-bit grey, grey+alpha, RGB, RGBA or palette: what nearly every
  large PNG is) is decoded in bands of about `BAND_PIXELS`, each reduced as it comes, by
  Pillow's own decoder: each band is handed to it as a small PNG stream that starts with
  the band's previous row, since PNG filters refer to the row above;
- any other format that large is refused (`TooLargeToDecode`) with the reason.
Below the bound an image is decoded whole, then reduced (`Image.reduce`), then converted.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

from PIL import Image

DEFAULT_MAX_PIXELS = 250_000_000
FULL_DECODE_PIXELS = 64_000_000  # decoded whole at most: ~256 MB (README "Memory bounds")
BAND_PIXELS = 2_000_000          # one PNG band: ~8 MB decoded, plus twice its raw rows
_PNG_BYTES_PER_PIXEL = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4, "P": 1}  # by raw mode
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class TooLargeToDecode(OSError):
    """An image over FULL_DECODE_PIXELS in a format that can only be decoded whole."""


def apply_pixel_limit(max_pixels: int) -> None:
    """The one pixel limit, for every image this process opens. Pillow warns above it and
    refuses at twice it; the probe refuses anything above it, with its own message, so a
    file the probe accepted always decodes in the model steps too."""
    Image.MAX_IMAGE_PIXELS = max_pixels


def png_bands_ok(img: Image.Image) -> bool:
    """Whether `img` (opened, not loaded) can be decoded in bands."""
    tile = img.tile
    return (img.format == "PNG" and len(tile) == 1 and tile[0][0] == "zip"
            and tuple(tile[0][1]) == (0, 0, *img.size) and not img.info.get("interlace")
            and tile[0][3] in _PNG_BYTES_PER_PIXEL and img.mode == tile[0][3])


def decode_mode(img: Image.Image) -> str:
    """How `img` (opened, not loaded) is decoded: "whole", "draft" (JPEG at reduced
    scale), "bands" (PNG), or "refuse" (too large for a format decoded only whole)."""
    if img.format == "JPEG":
        return "draft"
    if img.size[0] * img.size[1] <= FULL_DECODE_PIXELS:
        return "whole"
    return "bands" if png_bands_ok(img) else "refuse"


def too_large_message(img: Image.Image) -> str:
    w, h = img.size
    return (f"a {w}x{h} {img.format} image ({w * h / 1e6:.0f} megapixels): above "
            f"{FULL_DECODE_PIXELS / 1e6:.0f} megapixels only JPEG and non-interlaced 8-bit "
            "PNG are decoded (at reduced scale, or in bands); this one would be decoded "
            "whole, so it is refused to bound memory")


def _idat(fp, path: str) -> Iterator[bytes]:
    """The PNG's compressed image data, chunk by chunk (checksums checked), 1 MB at most
    at a time."""
    fp.seek(0)
    if fp.read(8) != _PNG_SIGNATURE:
        raise OSError(f"{path}: not a PNG file")
    while True:
        head = fp.read(8)
        if len(head) < 8:
            raise OSError("truncated PNG: the file ends before its image data does")
        length, kind = struct.unpack(">I4s", head)
        if kind == b"IEND":
            return
        if kind != b"IDAT":
            fp.seek(length + 4, 1)
            continue
        crc = zlib.crc32(kind)
        left = length
        while left:
            data = fp.read(min(left, 1 << 20))
            if not data:
                raise OSError("truncated PNG: the file ends inside its image data")
            crc = zlib.crc32(data, crc)
            left -= len(data)
            yield data
        stored = fp.read(4)
        if len(stored) < 4 or struct.unpack(">I", stored)[0] != crc:
            raise OSError("broken PNG file: an image data chunk fails its checksum")


def png_bands(img: Image.Image, rows_multiple: int = 1,
              ) -> Iterator[tuple[int, int, Image.Image]]:
    """(first row, rows, band) for the whole of a PNG `png_bands_ok` accepts, decoded a band
    at a time: memory is a band, not the image. The band's own rows start at its row
    `rows` from the bottom, i.e. after the one row of context at its top (all but the
    first band); bands hold a multiple of `rows_multiple` rows (but the last), so a
    reduction by that factor matches the whole image's."""
    w, h = img.size
    rawmode = img.tile[0][3]
    row = 1 + w * _PNG_BYTES_PER_PIXEL[rawmode]
    per_band = max(1, BAND_PIXELS // w)
    per_band = max(rows_multiple, per_band // rows_multiple * rows_multiple)
    source = _idat(img.fp, img.filename or "image")
    inflate = zlib.decompressobj()
    previous = None  # the last row of the band before, unfiltered, as the file has it
    y = 0
    while y < h:
        n = min(per_band, h - y)
        need, parts, have = n * row, [], 0
        while have < need:
            data = inflate.unconsumed_tail or next(source, b"")
            if not data:
                raise OSError(f"truncated PNG: image data ends at row {y + have // row} of {h}")
            part = inflate.decompress(data, need - have)
            parts.append(part)
            have += len(part)
        # A band as a PNG stream of its own: the previous row, unfiltered (filter 0), then
        # the band's rows as stored; level 0 only frames them, it does not compress.
        frame = zlib.compressobj(0)
        stream = [frame.compress(b"\x00" + previous)] if previous is not None else []
        stream += [frame.compress(p) for p in parts] + [frame.flush()]
        del parts
        extra = 1 if previous is not None else 0
        band = Image.new(img.mode, (w, n + extra))
        decoder = Image._getdecoder(img.mode, "zip", rawmode)
        decoder.setimage(band.im, (0, 0, w, n + extra))
        done = err = 0
        for piece in stream:
            done, err = decoder.decode(piece)
            if done < 0 or err < 0:
                break
        decoder.cleanup()
        del stream
        if done >= 0 or err < 0:
            raise OSError(f"broken PNG file: image data cannot be decoded at row {y}")
        previous = band.crop((0, n + extra - 1, w, n + extra)).tobytes("raw", rawmode)
        if img.mode == "P":
            band.palette = img.palette.copy()
            band.palette.dirty = 1
            if "transparency" in img.info:
                band.info["transparency"] = img.info["transparency"]
        yield y, extra, band
        y += n


def check_decodes(img: Image.Image) -> None:
    """Decode all of `img` (opened, not loaded) as `open_reduced` would, keeping nothing:
    what proves the file is not truncated or corrupt, in bounded memory."""
    mode = decode_mode(img)
    if mode == "refuse":
        raise TooLargeToDecode(too_large_message(img))
    if mode == "bands":
        for _ in png_bands(img):
            pass  # each band is decoded, then dropped
        return
    if mode == "draft":
        img.draft("RGB", (1024, 1024))
    img.load()


def open_reduced(path: str, side: int) -> Image.Image:
    """An RGB image no larger than `side` x `side`, decoded within the memory bound (see
    the module): at reduced scale, in bands, or whole when small enough."""
    with Image.open(path) as img:
        mode = decode_mode(img)
        if mode == "refuse":
            raise TooLargeToDecode(too_large_message(img))
        if mode == "draft":
            img.draft("RGB", (side, side))
        factor = max(img.size) // (2 * side)
        if mode == "bands":
            out = _reduced_bands(img, max(1, factor))
        else:
            out = img.reduce(factor) if factor >= 2 else img  # reduce() loads, then subsamples
            out = out.convert("RGB")
    out.thumbnail((side, side))
    return out


def _reduced_bands(img: Image.Image, factor: int) -> Image.Image:
    w, h = img.size
    out = Image.new("RGB", (-(-w // factor), -(-h // factor)))
    for y, top, band in png_bands(img, factor):
        band = band if band.mode == "RGB" else band.convert("RGB")
        box = (0, top, w, band.height)
        out.paste(band.reduce(factor, box) if factor > 1 else band.crop(box), (0, y // factor))
    return out
