"""The catalogue page as HTTP: server-rendered list and filters, detail view, snippets, escaping of
untrusted catalogue text, the headers (CSP, ETag, 304, gzip), errors as pages, the generation endpoint
following a reload. The browser's side is tests/integration/test_web_page.py."""

from __future__ import annotations

import gzip
import json
import re
from html import unescape
from pathlib import Path

import pytest
import pytest_asyncio
from api_testdata import Serve, Served

from fixtures.page_data import HOSTILE_KEY, hostile_server, toolhive_with
from mcpreg_api.page.routes import SECURITY_HEADERS

LATEST = "toolhive/registry-2026-02-18.json"
CARD = re.compile(r'<li( hidden)? class="card"')


@pytest_asyncio.fixture(loop_scope="function")
async def page(serve: Serve, shared_data: Path, tmp_path: Path) -> Served:
    path = tmp_path / "registry.json"
    path.write_bytes(toolhive_with(shared_data / LATEST, {HOSTILE_KEY: hostile_server()}))
    return await serve(path)


def cards(html: str) -> tuple[int, int]:
    """(visible, hidden) cards of a list page."""
    found = CARD.findall(html)
    return sum(1 for h in found if not h), sum(1 for h in found if h)


def pre_blocks(html: str) -> dict[str, str]:
    return {
        m[1]: unescape(m[2])
        for m in re.finditer(r'<pre id="snippet-(\w+)"[^>]*><code>(.*?)</code></pre>', html, re.S)
    }


async def get_text(page: Served, path: str, status: int = 200) -> str:
    response = await page.client.get(path)
    text = await response.text()
    assert response.status == status, text[:500]
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    return text


async def test_list_renders_every_server_without_script(page: Served) -> None:
    for path in ("/", "/catalog/"):
        html = await get_text(page, path)
        assert cards(html) == (103, 0)
        assert "103 servers" in html
        assert '<a href="/catalog/servers/io.github.stacklok/atlassian">atlassian</a>' in html
    # Only this server's own assets, and no inline script or style.
    scripts = re.findall(r"<script([^>]*)>", html)
    assert len(scripts) == 1 and re.fullmatch(r' src="/catalog/assets/catalog\.js\?v=\w+" defer', scripts[0])
    assert "<style" not in html and " style=" not in html and "onclick" not in html
    response = await page.client.get("/catalog", allow_redirects=False)
    assert response.status == 308 and response.headers["Location"] == "/catalog/"


async def test_untrusted_text_is_escaped(page: Served) -> None:
    for path in ("/catalog/", f"/catalog/servers/io.github.stacklok/{HOSTILE_KEY}"):
        html = await get_text(page, path)
        assert "<script>window.__pwned" not in html and "<img src=x" not in html
        assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;&lt;img src=x onerror=&quot;" in html
    assert "A token &lt;svg onload=alert(1)&gt; for the API" in html and "<svg" not in html


@pytest.mark.parametrize(
    ("query", "visible"),
    [
        ("q=JIRA", {"atlassian", "atlassian-remote"}),
        ("q=bold-tag", {HOSTILE_KEY}),  # tags are searched
        ("tag=hostile", {HOSTILE_KEY}),
        ("tier=community&q=atlassian", {"atlassian"}),
        ("transport=sse&q=atlassian", {"atlassian-remote"}),
        ("status=deleted", set()),
    ],
)
async def test_filters_work_without_script(page: Served, query: str, visible: set[str]) -> None:
    html = await get_text(page, f"/catalog/?{query}")
    shown = set(
        re.findall(r'<li class="card".*?<a href="/catalog/servers/io\.github\.stacklok/([^"]+)"', html)
    )
    assert shown == visible
    assert cards(html) == (len(visible), 103 - len(visible))
    assert ('id="empty" class="empty">' in html) == (not visible)


async def test_filter_form_keeps_the_query(page: Served) -> None:
    html = await get_text(page, "/catalog/?q=%22%3E%3Cx&tag=hostile")
    assert 'value="&quot;&gt;&lt;x"' in html
    assert '<option value="hostile" selected>hostile (1)</option>' in html


async def test_bad_filter_is_a_page_naming_it(page: Served) -> None:
    html = await get_text(page, "/catalog/?q=a&q=b", status=400)
    assert "query.q: must be given at most once" in html
    html = await get_text(page, "/catalog/?tier=%01", status=400)
    assert "query.tier" in html and "control characters" in html


async def test_detail_view(page: Served) -> None:
    html = await get_text(page, f"/catalog/servers/io.github.stacklok/{HOSTILE_KEY}")
    for heading in ("Install", "Tools", "Configuration", "Permissions", "Source", "Provenance", "Versions"):
        assert f">{heading}</h2>" in html
    assert "<code>API_TOKEN</code>" in html and "Unrestricted outbound network access." in html
    assert '<a href="https://github.com/example/hostile" rel="noopener noreferrer">' in html
    assert "tuf-repo-cdn.sigstore.dev" in html and "1.2.3 (latest)" in html
    snippets = pre_blocks(html)
    assert set(snippets) == {"thv", "vscode", "claude"}
    assert f"--secret api-token,target=API_TOKEN -e 'REGION=<REGION>' {HOSTILE_KEY}" in snippets["thv"]
    assert f"thv config set-registry http://127.0.0.1:{page.client.port} -p" in snippets["thv"]
    vscode = json.loads(snippets["vscode"])
    assert vscode["servers"][HOSTILE_KEY] == {
        "type": "stdio",
        "command": "docker",
        "args": [
            "run",
            "-i",
            "--rm",
            "-e",
            "API_TOKEN",
            "-e",
            "REGION",
            f"ghcr.io/example/{HOSTILE_KEY}:1.2.3",
        ],
        "env": {"API_TOKEN": "${input:API_TOKEN}", "REGION": "${input:REGION}"},
    }
    assert [i["password"] for i in vscode["inputs"]] == [True, False]
    claude = json.loads(snippets["claude"])
    assert claude["mcpServers"][HOSTILE_KEY]["env"] == {"API_TOKEN": "<API_TOKEN>", "REGION": "<REGION>"}


async def test_remote_server_snippets(page: Served) -> None:
    html = await get_text(page, "/catalog/servers/io.github.stacklok/atlassian-remote")
    snippets = pre_blocks(html)
    assert json.loads(snippets["vscode"])["servers"]["atlassian-remote"] == {
        "type": "sse",
        "url": "https://mcp.atlassian.com/v1/sse",
    }
    claude = json.loads(snippets["claude"])["mcpServers"]["atlassian-remote"]
    assert claude == {"command": "npx", "args": ["-y", "mcp-remote", "https://mcp.atlassian.com/v1/sse"]}


async def test_unknown_server_and_version_are_pages(page: Served) -> None:
    html = await get_text(page, "/catalog/servers/io.github.stacklok/%3Cnope%3E", status=404)
    assert "No server is named &#x27;io.github.stacklok/&lt;nope&gt;&#x27;." in html
    html = await get_text(page, "/catalog/servers/io.github.stacklok/atlassian?version=9", status=404)
    assert "has no version" in html


async def test_etag_304_and_gzip(page: Served) -> None:
    first = await page.client.get("/catalog/", headers={"Accept-Encoding": "identity"})
    body = await first.read()
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "no-cache" and "Content-Encoding" not in first.headers
    again = await page.client.get("/catalog/", headers={"If-None-Match": etag})
    assert again.status == 304 and again.headers["Content-Security-Policy"]
    zipped = await page.client.get("/catalog/", headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(await zipped.read()) == body
    for name, kind in (("catalog.css", "text/css"), ("catalog.js", "text/javascript")):
        asset = await page.client.get(f"/catalog/assets/{name}")
        assert (
            asset.status == 200 and asset.headers["Content-Type"].startswith(kind) and asset.headers["ETag"]
        )
    assert (await page.client.get("/catalog/assets/nope.js")).status == 404


async def test_generation_follows_a_reload(page: Served, shared_data: Path) -> None:
    before = await (await page.client.get("/catalog/generation")).json()
    assert before["servers"] == 103 and before["generation"].startswith("sha256:")
    loads = page.loader.loads
    page.path.write_bytes(toolhive_with(shared_data / LATEST, {}, drop=("atlassian",)))
    await page.loader.wait_loaded(loads + 1)
    after = await (await page.client.get("/catalog/generation")).json()
    assert after["servers"] == 101 and after["generation"] != before["generation"]
    html = await get_text(page, "/catalog/")
    assert cards(html) == (101, 0) and 'href="/catalog/servers/io.github.stacklok/atlassian"' not in html


async def test_page_before_any_catalogue_is_a_503_page(serve: Serve, tmp_path: Path) -> None:
    served = await serve(tmp_path / "absent.json", wait=False)
    response = await served.client.get("/catalog/")
    assert response.status == 503 and response.headers["Retry-After"] == "1"
    assert "Not ready" in await response.text()
