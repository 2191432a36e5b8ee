"""A small dependency-free PNG reader and writer (8-bit grey, grey+alpha, RGB, RGBA; 16-bit read).

Writing uses filter type 0 on every scanline and zlib level 9. Reading accepts every
non-interlaced PNG with bit depth 8 or 16 (16-bit samples are reduced to their high byte) and
colour types 0 (grey), 2 (RGB), 3 (palette, 8-bit), 4 (grey+alpha) and 6 (RGBA), with all five
scanline filters. Interlaced (Adam7) files and bit depths below 8 are refused with a
:class:`PNGError`.
"""

from __future__ import annotations

import os
import struct
import zlib
from typing import Any

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_COLOUR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}


class PNGError(ValueError):
    """A file is not a PNG this module can read, or an array cannot be written as one."""


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(array: Any) -> bytes:
    """Encode a ``uint8`` array of shape (H, W), (H, W, 1), (H, W, 2), (H, W, 3) or (H, W, 4)."""
    arr = np.asarray(array)
    if arr.dtype != np.uint8:
        raise PNGError(f"PNG arrays must be uint8, got {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in _COLOUR_TYPE or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise PNGError(f"PNG arrays must be (H, W) or (H, W, 1..4), got shape {tuple(np.shape(array))}")
    height, width, channels = arr.shape
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOUR_TYPE[channels], 0, 0, 0)
    rows = np.concatenate([np.zeros((height, 1), np.uint8), arr.reshape(height, width * channels)], axis=1)
    body = zlib.compress(np.ascontiguousarray(rows).tobytes(), 9)
    return SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")


def write_png(path: str | os.PathLike, array: Any) -> None:
    """Write ``array`` (see :func:`encode_png`) to ``path`` atomically."""
    data = encode_png(array)
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def _unfilter(raw: np.ndarray, height: int, stride: int, bpp: int) -> np.ndarray:
    rows = raw.reshape(height, stride + 1)
    filters, data = rows[:, 0], rows[:, 1:].astype(np.int32)
    out = np.zeros((height, stride), dtype=np.int32)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(height):
        line, kind = data[y], int(filters[y])
        if kind == 0:
            cur = line
        elif kind == 2:  # Up
            cur = (line + prev) & 0xFF
        elif kind == 1:  # Sub: running sum over pixels, per byte lane
            lanes = line.reshape(-1, bpp)
            cur = (np.cumsum(lanes, axis=0) & 0xFF).reshape(-1)
        elif kind in (3, 4):  # Average / Paeth: sequential over pixels, vectorised over lanes
            lanes, up = line.reshape(-1, bpp), prev.reshape(-1, bpp)
            res = np.empty_like(lanes)
            left = np.zeros(bpp, dtype=np.int32)
            upleft = np.zeros(bpp, dtype=np.int32)
            for x in range(lanes.shape[0]):
                if kind == 3:
                    val = (lanes[x] + ((left + up[x]) >> 1)) & 0xFF
                else:
                    val = (lanes[x] + _paeth(left, up[x], upleft)) & 0xFF
                res[x] = val
                left, upleft = val, up[x]
            cur = res.reshape(-1)
        else:
            raise PNGError(f"unknown PNG filter type {kind} in row {y}")
        out[y] = cur
        prev = cur
    return out.astype(np.uint8)


def decode_png(data: bytes) -> np.ndarray:
    """Decode PNG bytes to a ``uint8`` array: (H, W) for grey, (H, W, C) otherwise.

    Palette images are expanded to RGB (or RGBA when the file has a ``tRNS`` chunk).
    """
    if not data.startswith(SIGNATURE):
        raise PNGError("not a PNG file (bad signature)")
    pos, header, palette, trns, idat = len(SIGNATURE), None, None, None, []
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length:
            raise PNGError("truncated PNG chunk")
        crc = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0]
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise PNGError(f"CRC mismatch in PNG chunk {kind!r}")
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"PLTE":
            palette = np.frombuffer(body, np.uint8).reshape(-1, 3)
        elif kind == b"tRNS":
            trns = np.frombuffer(body, np.uint8)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if header is None or not idat:
        raise PNGError("PNG without IHDR or IDAT")
    width, height, depth, ctype, _, _, interlace = header
    if ctype not in _CHANNELS or depth not in (8, 16) or (ctype == 3 and depth != 8):
        raise PNGError(f"unsupported PNG: colour type {ctype}, bit depth {depth}")
    if interlace:
        raise PNGError("interlaced PNGs are not supported")
    channels, nbytes = _CHANNELS[ctype], depth // 8
    bpp = channels * nbytes
    try:
        raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8)
    except zlib.error as exc:
        raise PNGError(f"corrupt PNG image data ({exc})") from None
    if raw.size != height * (width * bpp + 1):
        raise PNGError("PNG image data has the wrong size")
    pixels = _unfilter(raw, height, width * bpp, bpp).reshape(height, width, channels * nbytes)
    if nbytes == 2:
        pixels = pixels[..., 0::2]  # high byte of each big-endian sample
    if ctype == 3:
        if palette is None:
            raise PNGError("palette PNG without PLTE chunk")
        index = pixels[..., 0]
        rgb = palette[np.minimum(index, len(palette) - 1)]
        if trns is not None:
            alpha = np.full(256, 255, np.uint8)
            alpha[: len(trns)] = trns
            return np.concatenate([rgb, alpha[index][..., None]], axis=-1)
        return rgb
    return pixels[..., 0] if channels == 1 else np.ascontiguousarray(pixels)


def read_png(path: str | os.PathLike) -> np.ndarray:
    """Read a PNG file (see :func:`decode_png`)."""
    with open(path, "rb") as fh:
        return decode_png(fh.read())
