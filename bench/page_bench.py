"""The catalogue page in headless Chromium at 10,000 servers (renamed copies of the shared snapshot's
entries): time to first contentful paint and to a search result (typing a query until the count shows
it), and the page's weight. Usage: `.venv/bin/python bench/page_bench.py [--servers 10000]`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from integration.test_api_server import LATEST, start_api  # noqa: E402
from mcpreg_dev.browser import chromium_executable  # noqa: E402


def catalogue(count: int) -> bytes:
    document = json.loads(LATEST.read_bytes())
    base = list(document["servers"].items())
    document["remote_servers"] = {}
    document["servers"] = {
        f"{key}-{i:05d}": server for i in range(count // len(base) + 1) for key, server in base
    }
    document["servers"] = dict(list(document["servers"].items())[:count])
    return json.dumps(document).encode()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--servers", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "registry.json"
        path.write_bytes(catalogue(args.servers))
        api = start_api(Path(tmp), "--file", str(path), "--no-access-log", timeout=180)
        try:
            api.get("/")  # the page data is built once per generation: measure the page, not that build
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(chromium_executable()), args=["--no-sandbox"]
                )
                page = browser.new_page()
                page.goto(api.base + "/", wait_until="load")
                fcp = page.evaluate("performance.getEntriesByName('first-contentful-paint')[0].startTime")
                size = page.evaluate("performance.getEntriesByType('navigation')[0].decodedBodySize")
                started = time.perf_counter()
                page.fill("#q", "atlassian-00042")
                page.wait_for_function("document.getElementById('count').textContent.startsWith('1 of')")
                search = time.perf_counter() - started
                browser.close()
        finally:
            api.stop()
    print(
        f"servers={args.servers} html_bytes={size} first_contentful_paint_ms={fcp:.0f} "
        f"search_ms={search * 1000:.0f}"
    )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
