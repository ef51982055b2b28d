"""``python -m consentry.crawler.run JOB_ID``: run one crawl job in this process (a fresh reactor).

Settings come from the environment and config file, as for the CLI; the launcher starts this.
SIGINT or SIGTERM stops the crawl gracefully (state ``stopped``; resumable).
"""

from __future__ import annotations

import argparse
import logging
import sys

from ..core.errors import ConsentryError, DependencyError
from ..core.settings import load_settings
from .runner import EXIT_FAILED, EXIT_UNAVAILABLE, CrawlRunner


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m consentry.crawler.run", description=__doc__)
    parser.add_argument("job_id")
    args = parser.parse_args(argv)
    log = logging.getLogger("consentry.crawler")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
    except ConsentryError as exc:
        log.error("crawl job %s: %s", args.job_id, exc)
        return EXIT_FAILED
    logging.getLogger().setLevel(settings.log_level.upper())
    try:
        return CrawlRunner(settings).run(args.job_id)
    except ConsentryError as exc:
        log.error("crawl job %s: %s", args.job_id, exc)
        return EXIT_UNAVAILABLE if isinstance(exc, DependencyError) else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
