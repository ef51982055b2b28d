"""A small local image site for the ingest tests (127.0.0.1 only), and hostile image builders."""

from __future__ import annotations

import io
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "image/jpeg"})
    delay_s: float = 0.0
    chunked: bool = False  # no Content-Length: the size limit must be enforced while streaming
    gate: threading.Event | None = None  # when set: the response waits (up to 60 s) until the test opens it


class Site:
    """Serves ``routes`` (path → Route); remembers every request path it saw, in order."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[str] = []
        self.user_agents: set[str] = set()
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                site.requests.append(self.path)
                site.user_agents.add(self.headers.get("User-Agent", ""))
                r = site.routes.get(self.path)
                if r is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if r.gate is not None:
                    r.gate.wait(60)
                if r.delay_s:
                    time.sleep(r.delay_s)
                self.send_response(r.status)
                for k, v in r.headers.items():
                    self.send_header(k, v)
                if r.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    try:
                        for i in range(0, len(r.body), 65536):
                            part = r.body[i:i + 65536]
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                        self.wfile.write(b"0\r\n\r\n")
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    return
                self.send_header("Content-Length", str(len(r.body)))
                self.end_headers()
                try:
                    self.wfile.write(r.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *a: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda *a: None  # clients hanging up early (size limits) are expected
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> Site:
        self.thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ------------------------------------------------------------------------------ image builders
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid PNG header claiming width x height pixels, with a tiny IDAT (a decompression bomb's shape)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
            + _chunk(b"IEND", b""))


DMI_XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description rdf:about="" xmlns:plus="http://ns.useplus.org/ldf/xmp/1.0/" '
           b'plus:DataMining="http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-AIMLTRAINING"/>'
           b'</rdf:RDF></x:xmpmeta>')


def jpeg_with_xmp(jpeg: bytes, xmp: bytes = DMI_XMP) -> bytes:
    """Insert an XMP APP1 segment right after the JPEG's SOI marker."""
    assert jpeg[:2] == b"\xff\xd8"
    payload = b"http://ns.adobe.com/xap/1.0/\x00" + xmp
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def to_jpeg(path_or_bytes, quality: int = 92) -> bytes:
    from PIL import Image

    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    im = Image.open(src).convert("RGB")
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def noise_image(seed: int, size: int = 96, fmt: str = "PNG") -> bytes:
    """Random pixels (HashFaceModel finds one 'face' in any non-flat image)."""
    from PIL import Image

    rgb = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt)
    return buf.getvalue()


def flat_image(size: int = 96) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), (120, 120, 120)).save(buf, "PNG")
    return buf.getvalue()
