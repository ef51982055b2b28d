"""The bundled demo site, served on 127.0.0.1 from the offline photos.

Layout (each area is one source in the demo):

    /robots.txt                    disallows /family/private/ for every crawler
    /family/            consent    three gallery pages: img src, srcset, <picture>, og:image, links
      gallery-1.html               obama.jpg, t1.jpg (6 faces)
      gallery-2.html               obama2.jpg, astronaut.png, biden.jpg (served with X-Robots-Tag: noimageai)
      gallery-3.html               a page with <meta name="robots" content="noai">: nothing published
      private/                     disallowed by robots.txt
    /press/             licence    press.html: obama3-free; t1 again (same bytes, another URL) and an image
                                   whose XMP says plus:DataMining = DMI-PROHIBITED-AIMLTRAINING
    /unknown/           none       a page of a source without a consent basis: never crawled
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

XMP_PROHIBITED = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
                  b'<rdf:Description rdf:about="" xmlns:plus="http://ns.useplus.org/ldf/xmp/1.0/" '
                  b'plus:DataMining="http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-AIMLTRAINING"/>'
                  b"</rdf:RDF></x:xmpmeta>")


def jpeg_with_xmp(jpeg: bytes, xmp: bytes) -> bytes:
    """Insert an XMP APP1 segment right after SOI."""
    assert jpeg[:2] == b"\xff\xd8", "not a JPEG"
    payload = b"http://ns.adobe.com/xap/1.0/\x00" + xmp
    seg = b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
    return jpeg[:2] + seg + jpeg[2:]


def to_jpeg(data: bytes) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(buf, "JPEG", quality=92)
    return buf.getvalue()


def _page(title: str, body: str, head: str = "") -> bytes:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>{head}</head>"
            f"<body><h1>{title}</h1>{body}<p><a href='/family/'>family</a> · <a href='/press/'>press</a></p>"
            f"</body></html>").encode()


@dataclass
class Resource:
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()


def build_site(photos: dict[str, Path]) -> dict[str, Resource]:
    img = {n: p.read_bytes() for n, p in photos.items()}
    html = "text/html; charset=utf-8"
    site: dict[str, Resource] = {
        "/robots.txt": Resource(b"User-agent: *\nDisallow: /family/private/\n", "text/plain"),
        "/": Resource(_page("Demo photo site", "<a href='/family/'>Family</a> <a href='/press/'>Press</a>"), html),
        "/family/": Resource(_page("Family photos", "<ul><li><a href='gallery-1.html'>Summer</a></li>"
                                   "<li><a href='gallery-2.html'>Winter</a></li>"
                                   "<li><a href='gallery-3.html'>Grandma's album (no AI)</a></li>"
                                   "<li><a href='private/'>Private</a></li></ul>"), html),
        "/family/gallery-1.html": Resource(_page(
            "Summer",
            "<img src='img/obama.jpg' alt='Barack at the lake'>"
            "<img srcset='img/t1-small.jpg 320w, img/t1.jpg 1024w' src='img/t1-small.jpg' alt='The team'>"
            "<link rel='license' href='https://creativecommons.org/licenses/by/4.0/'>",
            "<meta property='og:image' content='/family/img/obama.jpg'>"), html),
        "/family/gallery-2.html": Resource(_page(
            "Winter",
            "<picture><source srcset='img/astronaut.png'><img src='img/astronaut-small.png' alt='Astronaut'></picture>"
            "<a href='img/obama2.jpg'>Barack, full size</a>"
            "<img src='img/biden.jpg' alt='Joe (asked not to be used for AI)'>"), html),
        "/family/gallery-3.html": Resource(_page("Grandma's album", "<img src='img/grandma.jpg' alt='Grandma'>",
                                                 "<meta name='robots' content='noai, noimageai'>"), html),
        "/family/private/": Resource(_page("Private", "<img src='/family/img/private.jpg'>"), html),
        "/family/img/obama.jpg": Resource(img["obama.jpg"], "image/jpeg"),
        "/family/img/obama2.jpg": Resource(img["obama2.jpg"], "image/jpeg"),
        "/family/img/t1.jpg": Resource(img["t1.jpg"], "image/jpeg"),
        "/family/img/t1-small.jpg": Resource(img["t1.jpg"], "image/jpeg"),
        "/family/img/astronaut.png": Resource(img["astronaut.png"], "image/png"),
        "/family/img/astronaut-small.png": Resource(img["astronaut.png"], "image/png"),
        "/family/img/biden.jpg": Resource(img["biden.jpg"], "image/jpeg", (("X-Robots-Tag", "noimageai"),)),
        "/family/img/grandma.jpg": Resource(img["biden.jpg"], "image/jpeg"),
        "/family/img/private.jpg": Resource(img["astronaut.png"], "image/png"),
        "/press/": Resource(_page("Press room", "<img src='/press/img/team.jpg' alt='Team photo'>"
                                  "<img src='/press/img/keynote.jpg' alt='Keynote (no data mining)'>"), html),
        "/press/img/team.jpg": Resource(img["t1.jpg"], "image/jpeg"),
        "/press/img/keynote.jpg": Resource(jpeg_with_xmp(to_jpeg(img["astronaut.png"]), XMP_PROHIBITED), "image/jpeg"),
        "/unknown/": Resource(_page("Somebody else's photos", "<img src='/unknown/img/a.jpg'>"), html),
        "/unknown/img/a.jpg": Resource(img["obama3.jpg"], "image/jpeg"),
    }
    return site


class DemoSite:
    """A threaded HTTP server on 127.0.0.1 serving build_site(); counts requests per path."""

    def __init__(self, photos: dict[str, Path], port: int = 0) -> None:
        self.resources = build_site(photos)
        self.hits: dict[str, int] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "ConsentryDemo/1"

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                site.hits[path] = site.hits.get(path, 0) + 1
                res = site.resources.get(path)
                if res is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", res.content_type)
                self.send_header("Content-Length", str(len(res.body)))
                for k, v in res.headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(res.body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="demo-site", daemon=True)

    def __enter__(self) -> DemoSite:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
