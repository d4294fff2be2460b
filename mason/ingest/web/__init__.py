"""Web sources of the ingest stage: fetching pages politely and cached (`fetch`), choosing which to
fetch (`crawl`: listed URLs, sitemap, links) and reading their main text (`extract`: trafilatura).

Needs the `web` extra (`pip install 'mason[web]'`: trafilatura); the HTTP client (httpx2) comes
with MASON. Importing this package is cheap: trafilatura and lxml load when a page is read.
"""

from __future__ import annotations

import importlib.util

INSTALL_HINT = "pip install 'mason[web]'"


def web_installed() -> bool:
    """Whether trafilatura (the main-text extractor) can be imported, without importing it."""
    return importlib.util.find_spec("trafilatura") is not None
