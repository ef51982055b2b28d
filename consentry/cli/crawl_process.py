"""``python -m consentry.cli.crawl_process JOB_ID``: run one crawl job in this process (a fresh reactor).

The crawl launcher starts this (see ``consentry.crawler.launcher``). Settings come from the
environment and config file, as for the CLI; the runner and its clients come from the wiring.
SIGINT or SIGTERM stops the crawl gracefully (state ``stopped``; resumable).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from ..crawler.jobdir import STOP_SIGNALS


def main(argv: list[str] | None = None) -> int:
    # The launcher starts us with SIGINT/SIGTERM blocked, so a stop sent while the interpreter starts
    # stays pending; it is noted here and honoured once the crawl runs (then Scrapy's handlers take over).
    stops: list[int] = []
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda n, _frame: stops.append(n))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    from .. import wiring
    from ..core.errors import ConsentryError, DependencyError
    from ..core.settings import load_settings
    from ..crawler.runner import EXIT_FAILED, EXIT_UNAVAILABLE

    parser = argparse.ArgumentParser(prog="python -m consentry.cli.crawl_process", description=__doc__)
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
        return wiring.crawl_runner(settings, stop_requested=lambda: bool(stops)).run(args.job_id)
    except ConsentryError as exc:
        log.error("crawl job %s: %s", args.job_id, exc)
        return EXIT_UNAVAILABLE if isinstance(exc, DependencyError) else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
