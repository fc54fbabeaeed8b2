"""Attachments for the Messages API tests, made in the test so their bytes are known: a PNG of
random pixels, a small PDF, and the description the fake Anthropic API (and the fake CLI) give
an attachment that reached the model: ` [image base64 image/png 68 bytes sha256:63ef318d]`."""
import base64
import hashlib
import random
import struct
import zlib


def png(width=8, height=8, seed=1):
    """An RGB PNG of `width` x `height` random pixels (incompressible: its size is about
    3 * width * height bytes)."""
    rng = random.Random(seed)
    rows = b"".join(b"\x00" + rng.randbytes(3 * width) for _ in range(height))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def pdf(text="hello from a test"):
    """A one-page PDF showing `text`."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return out


def b64(data):
    return base64.b64encode(data).decode()


def described(kind, media_type, data):
    """How the fake API describes a base64 attachment that reached it: its decoded size and the
    first 8 hex digits of the SHA-256 of its bytes."""
    return f"[{kind} base64 {media_type} {len(data)} bytes sha256:{hashlib.sha256(data).hexdigest()[:8]}]"
