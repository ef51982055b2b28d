"""The crawl's reactor resolver checks the address each connection uses (no DNS rebinding past the policy).

Each case runs Scrapy in a child process (one reactor per process) with the network-policy
middleware *removed*, so only the resolver stands between the request and ``localhost``; the
local site counts what reaches it. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .site import SiteServer, html

SCRIPT = r"""
import json, sys
from scrapy import Request, Spider
from scrapy.crawler import CrawlerProcess

url, allow = sys.argv[1], sys.argv[2] == "1"
out = {}

class Probe(Spider):
    name = "probe"
    async def start(self):
        yield Request(url, callback=self.ok, errback=self.failed, dont_filter=True)
    def ok(self, response):
        out["status"] = response.status
    def failed(self, failure):
        out["error"] = f"{failure.type.__name__}: {failure.value}"

process = CrawlerProcess({
    "TWISTED_DNS_RESOLVER": "consentry.crawler.resolver.PolicyResolver",
    "CONSENTRY_ALLOW_PRIVATE_NETWORKS": allow,
    "ROBOTSTXT_OBEY": False, "RETRY_ENABLED": False, "LOG_LEVEL": "WARNING", "TELNETCONSOLE_ENABLED": False,
})
process.crawl(Probe)
process.start()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def site():
    s = SiteServer({"/": html("<p>hello</p>")}).start()
    yield s
    s.stop()


def probe(url: str, allow_private: bool) -> tuple[dict, str]:
    """What the request came to, and the crawl's log."""
    done = subprocess.run([sys.executable, "-c", SCRIPT, url, "1" if allow_private else "0"],
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_the_resolver_refuses_a_host_name_that_resolves_to_loopback(site):
    site.reset()
    got, log = probe(f"http://localhost:{site.port}/", allow_private=False)
    assert "DNS lookup failed" in got.get("error", ""), got  # Twisted's report of a refused lookup
    assert "refused to connect to localhost (127.0.0.1): loopback address" in log
    assert site.paths() == []  # nothing connected


def test_the_resolver_lets_the_same_host_through_when_private_networks_are_allowed(site):
    site.reset()
    got, log = probe(f"http://localhost:{site.port}/", allow_private=True)
    assert got == {"status": 200} and "refused" not in log
    assert site.paths() == ["/"]


REBIND = r"""
import json, sys
from scrapy import Request, Spider
from scrapy.crawler import CrawlerProcess
from consentry.crawler.middlewares.netpolicy import NetworkPolicyMiddleware

url = sys.argv[1]
out = {}

class FirstAnswerPublic(NetworkPolicyMiddleware):
    '''The middleware's own lookup is answered with a public address; the connection's gets 127.0.0.1.'''
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.resolver = lambda host, port: ["93.184.216.34"]

class Probe(Spider):
    name = "probe"
    async def start(self):
        yield Request(url, callback=self.ok, errback=self.failed, dont_filter=True)
    def ok(self, response):
        out["status"] = response.status
    def failed(self, failure):
        out["error"] = failure.type.__name__
    def closed(self, reason):
        stats = self.crawler.stats.get_stats()
        out["stats"] = {k: v for k, v in stats.items() if k.startswith(("crawler/refused", "retry/"))}

process = CrawlerProcess({
    "TWISTED_DNS_RESOLVER": "consentry.crawler.resolver.PolicyResolver",
    "CONSENTRY_ALLOW_PRIVATE_NETWORKS": False,
    "DOWNLOADER_MIDDLEWARES": {"__main__.FirstAnswerPublic": 40,
                               "consentry.crawler.middlewares.netpolicy.ResolverRefusalMiddleware": 600},
    "ROBOTSTXT_OBEY": False, "RETRY_ENABLED": True, "RETRY_TIMES": 3, "LOG_LEVEL": "WARNING",
    "TELNETCONSOLE_ENABLED": False,
})
process.crawl(Probe)
process.start()
print(json.dumps(out))
"""


def test_a_rebinding_host_is_counted_and_recorded_as_a_private_address_refusal(site):
    """The policy middleware is told the host is public, the connection's lookup says loopback: the resolver
    refuses it, and the refusal is counted as ``private-address`` (not a DNS error, and not retried)."""
    site.reset()
    done = subprocess.run([sys.executable, "-c", REBIND, f"http://localhost:{site.port}/"], capture_output=True,
                          text=True, timeout=60, check=True)
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["error"] == "IgnoreRequest"
    assert got["stats"] == {"crawler/refused/private-address": 1, "crawler/refused_requests": 1}  # no retries
    assert site.paths() == []
