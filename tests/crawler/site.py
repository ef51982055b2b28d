"""A local test site for the crawler, served on 127.0.0.1 by a threaded http.server; pages generated in code.

Each ``SiteServer`` records every request (path, user agent, start and end time) and the most
requests it ever had in flight at once, so tests can check politeness from the server's side.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Response = tuple[int, dict[str, str], bytes]
Route = Callable[[str], Response | None]


@dataclass
class Hit:
    path: str
    user_agent: str
    start: float
    end: float = 0.0


@dataclass
class SiteServer:
    routes: dict[str, Response | Callable[[], Response]] = field(default_factory=dict)
    delay_s: float = 0.0  # added to every page response (not robots.txt)
    hits: list[Hit] = field(default_factory=list)
    max_in_flight: int = 0
    _in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def paths(self) -> list[str]:
        with self._lock:
            return [h.path for h in self.hits]

    def reset(self) -> None:
        with self._lock:
            self.hits.clear()
            self.max_in_flight = 0

    def start(self) -> SiteServer:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                hit = Hit(self.path, self.headers.get("User-Agent", ""), time.monotonic())
                with site._lock:
                    site.hits.append(hit)
                    site._in_flight += 1
                    site.max_in_flight = max(site.max_in_flight, site._in_flight)
                try:
                    route = site.routes.get(self.path.split("#")[0])
                    if route is None:
                        status, headers, body = 404, {"Content-Type": "text/plain"}, b"not found"
                    else:
                        status, headers, body = route() if callable(route) else route
                    if site.delay_s and not self.path.startswith(("/robots.txt", "/.well-known/")):
                        time.sleep(site.delay_s)
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                finally:
                    with site._lock:
                        site._in_flight -= 1
                        hit.end = time.monotonic()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True, name=f"site-{self.port}").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def html(body: str, head: str = "", headers: dict[str, str] | None = None, status: int = 200) -> Response:
    doc = f"<!doctype html><html><head>{head}</head><body>{body}</body></html>"
    return status, {"Content-Type": "text/html; charset=utf-8", **(headers or {})}, doc.encode()


def text(body: str, status: int = 200, ctype: str = "text/plain") -> Response:
    return status, {"Content-Type": ctype}, body.encode()


def redirect(location: str, status: int = 302) -> Response:
    return status, {"Location": location, "Content-Type": "text/plain"}, b""


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------- the sites
MAIN_ROBOTS = """\
User-agent: *
Disallow: /

User-agent: consentry
Disallow: /private/
Disallow: /img/blocked/
Allow: /
"""

#: opt-out pages: path -> (head, headers, the reason the crawl must record)
OPT_OUT_PAGES: dict[str, tuple[str, dict[str, str], str]] = {
    "/optout/meta-noai.html": ('<meta name="robots" content="noai">', {}, "noai"),
    "/optout/meta-noimageai.html": ('<meta name="robots" content="noimageai, noimageindex">', {}, "noimageai"),
    "/optout/meta-ua-name.html": ('<meta name="consentry" content="noindex">', {}, "noindex"),
    "/optout/meta-ua-scoped.html": ('<meta name="robots" content="consentry: noai">', {}, "noai"),
    "/optout/xrt-noai.html": ("", {"X-Robots-Tag": "noai"}, "noai"),
    "/optout/xrt-noindex.html": ("", {"X-Robots-Tag": "noindex"}, "noindex"),
    "/optout/xrt-noimageindex.html": ("", {"X-Robots-Tag": "noimageindex"}, "noimageindex"),
    "/optout/xrt-ua-scoped.html": ("", {"X-Robots-Tag": "consentry: noimageai"}, "noimageai"),
    "/optout/tdm-header.html": ("", {"tdm-reservation": "1"}, "tdm-reservation"),
    "/optout/tdm-meta.html": ('<meta name="tdm-reservation" content="1">', {}, "tdm-reservation"),
    "/reserved/page.html": ("", {}, "tdm-reservation"),  # by tdmrep.json's location pattern
}

#: pages whose signals are present but allow us: path -> (head, headers)
ALLOWED_SIGNAL_PAGES: dict[str, tuple[str, dict[str, str]]] = {
    "/allowed/meta-other-bot.html": ('<meta name="googlebot" content="noai, noindex">', {}),
    "/allowed/xrt-other-bot.html": ("", {"X-Robots-Tag": "googlebot: noai"}),
    "/allowed/tdm-zero.html": ("", {"tdm-reservation": "0"}),
    "/allowed/xrt-all.html": ("", {"X-Robots-Tag": "all"}),
}

TDMREP = [
    {"location": "/reserved/*", "tdm-reservation": 1},
    {"location": "/img/tdm/*", "tdm-reservation": 1},
    {"location": "/*", "tdm-reservation": 0},
]


def optout_image(path: str) -> str:
    return "/img/optout/" + path.strip("/").replace("/", "-").replace(".html", ".jpg")


def main_site(other: dict[str, str]) -> dict[str, Response]:
    """The site with every extraction form and every opt-out; ``other`` names the other hosts' bases."""
    r: dict[str, Response] = {
        "/robots.txt": text(MAIN_ROBOTS),
        "/.well-known/tdmrep.json": text(json.dumps(TDMREP), ctype="application/json"),
    }
    links = ["/forms.html", "/more/page2.html", "/based.html", "/private/secret.html", "/deep/1.html",
             "/redirect-inside", "/redirect-metadata", "/redirect-offsite", "/robots-nofollow.html", "/big.html",
             *OPT_OUT_PAGES, *ALLOWED_SIGNAL_PAGES, "https://example.com/elsewhere.html", "mailto:x@example.org",
             "/index.html#section"]
    r["/"] = html(
        "".join(f'<a href="{p}">{p}</a> ' for p in links)
        + '<a rel="nofollow" href="/rel-nofollow.html">nofollow link</a>'
        + '<img src="img/index.jpg" alt="Index photo">',
        head="<title>Consentry test site</title>")
    r["/index.html"] = r["/"]
    r["/forms.html"] = html(
        '<img src="img/plain.jpg" alt="A plain image">'
        '<img src="img/rel-frag.jpg#fragment" alt="With a fragment">'
        '<img src="/img/srcset-small.jpg" srcset="/img/srcset-small.jpg 320w, /img/srcset-large.jpg 1280w,'
        ' /img/srcset-medium.jpg 640w" alt="Widths">'
        '<img src="img/density-1x.jpg" srcset="img/density-2x.jpg 2x, img/density-15x.jpg 1.5x" alt="Densities">'
        '<picture><source type="image/webp" srcset="img/pic-800.webp 800w, img/pic-1600.webp 1600w">'
        '<source media="(max-width: 600px)" srcset="img/pic-art.jpg">'
        '<img src="img/pic-fallback.jpg" alt="A picture"></picture>'
        '<a href="img/linked-full.png" title="Full size">full size</a>'
        '<img src="img/query.jpg?b=2&amp;a=1" alt="Query">'
        '<img src="data:image/png;base64,iVBORw0KGgo=" alt="inline">'
        '<img src="img/blocked/robots.jpg" alt="robots.txt disallows me">'
        '<img src="img/tdm/reserved.jpg" alt="tdmrep.json reserves me">'
        '<img src="https://cdn.example.net/offsite.jpg" alt="third-party host">'
        f'<img src="{other["r500"]}/img/on-5xx-host.jpg" alt="host whose robots.txt fails">',
        head='<title>Forms</title><link rel="license" href="https://creativecommons.org/licenses/by/4.0/">'
             '<meta property="og:image" content="/img/og.jpg"><meta property="og:image:alt" content="OG alt">'
             '<meta name="twitter:image" content="{base}/img/twitter.jpg">')
    r["/more/page2.html"] = html(
        '<a href="../forms.html">forms again</a><img src="../img/plain.jpg" alt="dup">'
        '<img src="/img/query.jpg?a=1&amp;b=2" alt="same query, other order"><img src="p2.jpg" alt="Page two">',
        head="<title>Page two</title>")
    r["/based.html"] = html('<img src="b.jpg" alt="based">', head='<title>Based</title><base href="/assets/">')
    r["/private/secret.html"] = html('<img src="/img/private.jpg">')
    for i in range(1, 6):
        r[f"/deep/{i}.html"] = html(f'<a href="{i + 1}.html">next</a><img src="/img/deep-{i}.jpg">')
    r["/redirect-inside"] = redirect("/redirected/target.html", 301)
    r["/redirected/target.html"] = html('<img src="/img/redirected.jpg" alt="after a redirect">')
    r["/redirect-metadata"] = redirect("http://169.254.169.254/latest/meta-data/")
    r["/redirect-offsite"] = redirect("http://127.0.0.2:9/elsewhere.html")
    r["/robots-nofollow.html"] = html('<a href="/only-via-nofollow.html">x</a><img src="/img/nofollow-page.jpg">',
                                      head='<meta name="robots" content="nofollow">')
    r["/only-via-nofollow.html"] = html('<img src="/img/never.jpg">')
    r["/big.html"] = html('<img src="/img/too-big-page.jpg">' + "<p>padding</p>" * 8000)  # > the page size limit
    r["/rel-nofollow.html"] = html('<img src="/img/never2.jpg">')
    for path, (head, headers, _) in OPT_OUT_PAGES.items():
        r[path] = html(f'<img src="{optout_image(path)}" alt="opted out">', head=head, headers=headers)
    for path, (head, headers) in ALLOWED_SIGNAL_PAGES.items():
        r[path] = html(f'<img src="{optout_image(path)}" alt="allowed">', head=head, headers=headers)
    return r


#: images the main crawl must publish (paths on the main site), and the page each is first seen on
MAIN_PUBLISHED = {
    "/img/index.jpg", "/img/plain.jpg", "/img/rel-frag.jpg", "/img/srcset-large.jpg", "/img/density-2x.jpg",
    "/img/pic-1600.webp", "/img/pic-art.jpg", "/img/pic-fallback.jpg", "/img/linked-full.png",
    "/img/query.jpg?a=1&b=2", "/img/og.jpg", "/img/twitter.jpg", "/more/p2.jpg", "/assets/b.jpg",
    "/img/deep-1.jpg", "/img/deep-2.jpg", "/img/deep-3.jpg", "/img/redirected.jpg", "/img/nofollow-page.jpg",
    *(optout_image(p) for p in ALLOWED_SIGNAL_PAGES),
}

#: images that must never be published
MAIN_NEVER = {
    "/img/srcset-small.jpg", "/img/srcset-medium.jpg", "/img/density-1x.jpg", "/img/blocked/robots.jpg",
    "/img/tdm/reserved.jpg", "/img/private.jpg", "/img/deep-4.jpg", "/img/deep-5.jpg", "/img/never.jpg",
    "/img/never2.jpg", "/img/too-big-page.jpg", *(optout_image(p) for p in OPT_OUT_PAGES),
}


#: the page size limit the main crawl runs with (big.html is over it)
MAX_PAGE_BYTES = 64 * 1024


def finish(routes: dict[str, Response], base: str) -> dict[str, Response]:
    """Fill ``{base}`` placeholders once the server's port is known."""
    return {p: (s, h, b.replace(b"{base}", base.encode())) for p, (s, h, b) in routes.items()}


def chain_site(pages: int, robots: str = "User-agent: *\nAllow: /\n") -> dict[str, Response]:
    """``pages`` pages, each linking the next five and showing its own image (for politeness and resume)."""
    r: dict[str, Response] = {"/robots.txt": text(robots)}
    for i in range(pages):
        nxt = "".join(f'<a href="/p/{j}.html">{j}</a>' for j in range(i + 1, min(pages, i + 6)))
        r[f"/p/{i}.html"] = html(f'{nxt}<img src="/img/{i}.jpg" alt="photo {i}">', head=f"<title>Page {i}</title>")
    r["/"] = r["/p/0.html"]
    return r
