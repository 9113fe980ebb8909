"""Showing the login QR code of a ``scan`` event: in the terminal, as a PNG and as a link.

The code is drawn with ``qrcode`` (already required by wechaty-puppet); the PNG is written with
the standard library (zlib + struct), so no imaging library is needed.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "login.png"
>>> modules = qr_modules("https://login.weixin.qq.com/l/abc")
>>> write_png(modules, path, scale=2)
>>> read_png(path) == [[v for v in row for _ in range(2)] for row in modules for _ in range(2)]
True
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from urllib.parse import quote

import qrcode

BORDER = 2  # quiet zone, in modules
SCALE = 8  # pixels per module in the PNG


def qr_modules(data: str) -> list[list[bool]]:
    """The QR code of ``data`` as rows of modules, True = dark, quiet zone included."""
    code = qrcode.QRCode(border=BORDER, error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(data)
    code.make(fit=True)
    return [list(row) for row in code.get_matrix()]


def terminal_text(data: str) -> str:
    """The QR code drawn with half blocks, two modules per character row (dark on light)."""
    code = qrcode.QRCode(border=BORDER, error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(data)
    code.make(fit=True)
    out = io.StringIO()
    code.print_ascii(out=out, invert=True)
    return out.getvalue().rstrip("\n")


def write_png(modules: list[list[bool]], path: Path, scale: int = SCALE) -> None:
    """Write the modules as an 8-bit grayscale PNG, ``scale`` pixels per module."""
    rows = []
    for row in modules:
        line = b"\x00" + bytes(0 if dark else 255 for dark in row for _ in range(scale))
        rows.extend([line] * scale)
    height, width = len(rows), len(rows[0]) - 1

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
    png += chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + chunk(b"IEND", b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(png)
    tmp.replace(path)  # a viewer that has the file open never sees half of it


def read_png(path: Path) -> list[list[bool]]:
    """Read back a PNG ``write_png`` wrote: rows of pixels, True = dark (for tests)."""
    data = path.read_bytes()
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        (size,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + size]
        if kind == b"IHDR":
            width = struct.unpack(">I", body[:4])[0]
        elif kind == b"IDAT":
            idat += body
        pos += size + 12
    raw = zlib.decompress(idat)
    stride = width + 1
    return [[b == 0 for b in raw[i + 1 : i + stride]] for i in range(0, len(raw), stride)]


def login_url(data: str) -> str:
    """A link that shows the code: the data itself when it is a URL, else an image of it."""
    if data.startswith(("http://", "https://")):
        return data
    return f"https://wechaty.js.org/qrcode/{quote(data, safe='')}"
