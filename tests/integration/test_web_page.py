"""The catalogue page in headless Chromium (Debian's, driven by Playwright): search as you type, a
filter, opening a server, copying a snippet, following a real reload of the served file, hostile text
shown inert, and an axe-core scan. Screenshots of a failing test go to the directory its log names."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from fixtures.page_data import HOSTILE_KEY, hostile_server, toolhive_with
from integration.test_api_server import LATEST, ApiProcess, needs_shared, start_api
from mcpreg_dev.browser import axe_script, chromium_executable

pytestmark = needs_shared


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(chromium_executable()), args=["--no-sandbox"]
        )
        yield launched
        launched.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ApiProcess, Path]]:
    path = tmp_path / "registry.json"
    path.write_bytes(toolhive_with(LATEST, {HOSTILE_KEY: hostile_server()}))
    api = start_api(tmp_path, "--file", str(path), "--poll-interval", "0.2", "--no-access-log")
    yield api, path
    api.stop()


@pytest.fixture
def page(
    browser: Browser, served: tuple[ApiProcess, Path], request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Page]:
    context = browser.new_context(base_url=served[0].base, viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=served[0].base)
    opened = context.new_page()
    yield opened
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        shot = tmp_path / "failure.png"
        opened.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failure: {shot}")
    context.close()


def test_search_filter_open_copy(page: Page) -> None:
    page.goto("/")
    expect(page.locator("#count")).to_have_text("103 servers")
    page.fill("#q", "jira")
    expect(page.locator("#results > .card:visible")).to_have_count(2)
    assert "q=jira" in page.url
    page.select_option("#f-transport", "sse")
    expect(page.locator("#results > .card:visible")).to_have_count(1)
    expect(page.locator("#count")).to_have_text("1 of 103 servers")
    page.click("#results > .card:visible h2 a")
    expect(page.locator("h1")).to_have_text("atlassian-remote")
    page.click('button[data-copy="snippet-vscode"]')
    expect(page.locator("#updates")).to_contain_text("Copied the VS Code snippet")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert '"url": "https://mcp.atlassian.com/v1/sse"' in copied


def test_hostile_text_is_inert(page: Page) -> None:
    page.goto(f"/catalog/servers/io.github.stacklok/{HOSTILE_KEY}")
    expect(page.locator(".lead")).to_contain_text("<script>window.__pwned = 1</script>")
    page.goto("/catalog/?q=hostile")
    assert page.evaluate("window.__pwned") is None


def test_follows_a_reload(page: Page, served: tuple[ApiProcess, Path]) -> None:
    _, path = served
    page.goto("/catalog/?q=atlassian")
    expect(page.locator("#results > .card:visible")).to_have_count(2)
    staging = path.with_suffix(".new")
    staging.write_bytes(toolhive_with(LATEST, {}, drop=("atlassian",)))
    os.replace(staging, path)
    expect(page.locator("#results > .card:visible")).to_have_count(1, timeout=30_000)
    expect(page.locator("#updates")).to_contain_text("catalogue was updated")
    expect(page.locator("#count")).to_have_text("1 of 101 servers")


@pytest.mark.parametrize("path", ["/", "/catalog/servers/io.github.stacklok/atlassian"])
def test_no_serious_accessibility_violations(page: Page, path: str) -> None:
    page.goto(path)
    # The page's CSP forbids inline scripts: axe is evaluated by the driver (DevTools), not by the page.
    page.evaluate(axe_script().read_text() + "\n;undefined")
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    serious = [
        (v["id"], v["impact"], len(v["nodes"]))
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == []
