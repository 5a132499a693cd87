#!/usr/bin/python3
"""png_pixels.py FILE...: decode 8-bit RGB PNGs with zlib (every chunk's CRC
checked, the five row filters undone) and print, per file, the SHA-256 of its
pixels, its width and height, and how many bytes its IDAT data takes.
Exit status 1 when a file is not such a PNG."""
import hashlib
import struct
import sys
import zlib


def pixels(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG signature")
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        if zlib.crc32(kind + body) != crc:
            raise ValueError("bad CRC in chunk %r" % kind)
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + n
    w, h, depth, ctype, comp, filt, interlace = ihdr
    if (depth, ctype, comp, filt, interlace) != (8, 2, 0, 0, 0):
        raise ValueError("not an 8-bit RGB PNG")
    raw, stride, bpp = zlib.decompress(idat), w * 3, 3
    if len(raw) != h * (stride + 1):
        raise ValueError("wrong amount of image data")
    out, prev = bytearray(), bytearray(stride)
    for y in range(h):
        f, row = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = row[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                row[i] = (row[i] + a) & 255
            elif f == 2:
                row[i] = (row[i] + b) & 255
            elif f == 3:
                row[i] = (row[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            elif f != 0:
                raise ValueError("bad filter type %d" % f)
        out += row
        prev = row
    return hashlib.sha256(out).hexdigest(), w, h, len(idat)


status = 0
for path in sys.argv[1:]:
    try:
        digest, w, h, n = pixels(path)
        print("%s %dx%d idat=%d %s" % (digest, w, h, n, path))
    except (ValueError, OSError, zlib.error, TypeError, struct.error) as e:
        print("png_pixels: %s: %s" % (path, e), file=sys.stderr)
        status = 1
sys.exit(status)
