"""Scrapy middlewares, one per concern, each named after it.

Downloader (request order): ``netpolicy`` (never connect to refused addresses), ``scope`` (stay
inside the job's allowed hosts/prefixes, redirects included), ``robotstxt`` (RFC 9309, Crawl-delay),
``tdmrep`` (TDMRep header, meta and tdmrep.json), ``robotstags`` (X-Robots-Tag and meta robots),
``retry`` (retries with exponential backoff). Spider: ``consentgate`` (applies the signals to the
images a page yields and builds the ImageCandidate records).
"""

#: request.meta / response.meta keys shared by the middlewares and the spider
SIGNALS_META = "consentry_signals"
NOFOLLOW_META = "consentry_nofollow"
