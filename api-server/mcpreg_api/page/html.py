"""The HTML of the catalogue page: the list, a server's detail view, and an error page.

Every value from the catalogue goes through `_e` (HTML-escaped, quotes included) and links only to
http(s) URLs (`facts.web_url`): a description holding `<script>` is shown as text. The page loads its
stylesheet and script from this server only (the Content-Security-Policy in `routes` allows nothing
else), and carries no inline script or style.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from mcpreg_api import __version__
from mcpreg_api.page.facts import ServerFacts, Variable
from mcpreg_api.page.model import Card, PageData, PageQuery
from mcpreg_api.page.snippets import Snippet
from mcpreg_api.snapshot import EntryView

PREFIX = "/catalog"
POLL_SECONDS = 5  # how often the script asks whether the catalogue changed


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def server_path(name: str, version: str | None = None) -> str:
    path = f"{PREFIX}/servers/{quote(name, safe='/')}"
    return path + (f"?{urlencode({'version': version})}" if version else "")


def _layout(title: str, main: str, *, generation: str, servers: int, assets: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title>"
        '<link rel="icon" href="data:,">'
        f'<link rel="stylesheet" href="{PREFIX}/assets/catalog.css?v={assets}">'
        f'<script src="{PREFIX}/assets/catalog.js?v={assets}" defer></script>'
        f'</head><body data-generation="{_e(generation)}" data-poll-seconds="{POLL_SECONDS}">'
        '<a class="skip" href="#main">Skip to content</a>'
        f'<header class="bar"><div class="wrap"><a class="brand" href="{PREFIX}/">'
        '<span class="logo" aria-hidden="true">&#x25C6;</span> MCP server catalogue</a>'
        f'<span class="meta" id="catalog-meta">{servers} servers</span></div></header>'
        '<div id="updates" class="notice" role="status" aria-live="polite"></div>'
        f'<main id="main" class="wrap">{main}</main>'
        '<footer class="wrap foot">'
        f"<span>mcpreg {_e(__version__)}</span>"
        '<a href="/v0.1/servers">JSON API (v0.1)</a><a href="/api/v1/registry">ToolHive registry</a>'
        '<a href="/openapi.yaml">OpenAPI</a></footer></body></html>\n'
    )


# --- the list -----------------------------------------------------------------------------------------


def card_html(facts: ServerFacts) -> str:
    """One server's card, without the opening `<li` (so that `hidden` can be put in front)."""
    badges = _badges(facts)
    tags = "".join(f"<li>{_e(tag)}</li>" for tag in facts.tags)
    return (
        f' class="card" data-tier="{_e(facts.tier)}" data-transports="{_e(" ".join(facts.transports))}"'
        f' data-status="{_e(facts.status)}">'
        f'<h2><a href="{_e(server_path(facts.name))}">{_e(facts.title)}</a></h2>'
        + _id_line(facts)
        + f'<p class="desc">{_e(facts.description)}</p>'
        f'<p class="badges">{badges}</p>'
        + (f'<ul class="tags" aria-label="Tags">{tags}</ul>' if tags else "")
        + "</li>"
    )


def _id_line(facts: ServerFacts) -> str:
    return (
        f'<p class="id"><span class="name">{_e(facts.name)}</span> '
        f'<span class="ver">v{_e(facts.version)}</span></p>'
    )


def _badges(facts: ServerFacts) -> str:
    parts = []
    if facts.tier:
        parts.append(f'<span class="badge tier">{_e(facts.tier)}</span>')
    parts.extend(f'<span class="badge">{_e(t)}</span>' for t in facts.transports)
    if facts.status != "active":
        parts.append(f'<span class="badge status-{_e(facts.status)}">{_e(facts.status)}</span>')
    return "".join(parts)


def list_page(data: PageData, query: PageQuery, *, assets: str) -> str:
    matches = query.matcher()
    shown = 0
    cards: list[str] = []
    for card in data.cards:
        visible = matches(card.facts, card.haystack)
        shown += visible
        cards.append("<li" + ("" if visible else " hidden") + card.html)
    total = sum(1 for card in data.cards if card.facts.status != "deleted")
    facets = data.facets
    main = (
        '<div class="intro"><h1>Servers</h1><p>Every MCP server this registry serves, its latest version. '
        "Open one for its tools, configuration, permissions and install snippets.</p></div>"
        f'<form class="filters" role="search" method="get" action="{PREFIX}/" id="filters">'
        '<div class="field grow"><label for="q">Search</label>'
        f'<input id="q" name="q" type="search" value="{_e(query.q)}" autocomplete="off" '
        'placeholder="Name, description or tag" aria-controls="results"></div>'
        + _select("tag", "Tag", "Any tag", ((t, f"{t} ({n})") for t, n in facets.tags), query.tag)
        + _select("tier", "Tier", "Any tier", ((t, t) for t in facets.tiers), query.tier)
        + _select(
            "transport", "Transport", "Any transport", ((t, t) for t in facets.transports), query.transport
        )
        + _select("status", "Status", "Active or deprecated", ((s, s) for s in facets.statuses), query.status)
        + '<button type="submit" class="apply">Apply filters</button></form>'
        f'<p id="count" class="count" role="status" aria-live="polite" data-total="{total}">'
        f"{_count_text(shown, total)}</p>"
        f'<ul id="results" class="cards">{"".join(cards)}</ul>'
        f'<p id="empty" class="empty"{"" if shown == 0 else " hidden"}>No server matches these filters. '
        f'<a href="{PREFIX}/">Show all servers</a></p>'
    )
    return _layout(
        "MCP server catalogue", main, generation=data.content_hash, servers=len(data.cards), assets=assets
    )


def _count_text(shown: int, total: int) -> str:
    return f"{shown} of {total} servers" if shown != total else f"{total} servers"


def _select(name: str, label: str, anything: str, options: Iterable[tuple[str, str]], chosen: str) -> str:
    rendered = [f'<option value="">{_e(anything)}</option>']
    for value, text in options:
        selected = " selected" if value == chosen else ""
        rendered.append(f'<option value="{_e(value)}"{selected}>{_e(text)}</option>')
    return (
        f'<div class="field"><label for="f-{name}">{label}</label>'
        f'<select id="f-{name}" name="{name}" aria-controls="results">{"".join(rendered)}</select></div>'
    )


# --- one server ---------------------------------------------------------------------------------------


def detail_page(
    data: PageData,
    facts: ServerFacts,
    versions: Iterable[EntryView],
    snippets: Iterable[Snippet],
    *,
    assets: str,
) -> str:
    sections = [
        _section("install", "Install", _snippets(snippets)),
        _section("tools", "Tools", _tools(facts.tools)),
        _section("configuration", "Configuration", _variables(facts)),
        _section("permissions", "Permissions", _permissions(facts.permissions)),
        _section("source", "Source", _source(facts)),
        _section("provenance", "Provenance", _provenance(facts.provenance)),
        _section("versions", "Versions", _versions(facts, versions)),
    ]
    main = (
        f'<nav class="crumbs" aria-label="Breadcrumb"><a href="{PREFIX}/">All servers</a></nav>'
        '<article class="detail"><header class="detail-head">'
        f"<h1>{_e(facts.title)}</h1>"
        + _id_line(facts)
        + f'<p class="badges">{_badges(facts)}'
        + (f'<span class="badge stars">&#9733; {facts.stars}</span>' if facts.stars is not None else "")
        + "</p>"
        + (f'<p class="lead">{_e(facts.description)}</p>' if facts.description else "")
        + (
            '<ul class="tags" aria-label="Tags">' + "".join(f"<li>{_e(t)}</li>" for t in facts.tags) + "</ul>"
            if facts.tags
            else ""
        )
        + "</header>"
        + "".join(sections)
        + "</article>"
    )
    title = f"{facts.title} · MCP server catalogue"
    return _layout(title, main, generation=data.content_hash, servers=len(data.cards), assets=assets)


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section aria-labelledby="h-{anchor}"><h2 id="h-{anchor}">{title}</h2>{body}</section>'


def _snippets(snippets: Iterable[Snippet]) -> str:
    parts = []
    for snippet in snippets:
        block = f"snippet-{snippet.id}"
        parts.append(
            f'<div class="snippet"><div class="snippet-head"><h3 id="h-{block}">{_e(snippet.label)}</h3>'
            f'<span class="hint">{_e(snippet.file_hint)}</span>'
            f'<button type="button" class="copy" data-copy="{block}" aria-describedby="h-{block}" hidden>'
            "Copy</button></div>"
            f'<pre id="{block}" tabindex="0" aria-labelledby="h-{block}">'
            f"<code>{_e(snippet.text)}</code></pre></div>"
        )
    return "".join(parts)


def _tools(tools: tuple[str, ...]) -> str:
    if not tools:
        return '<p class="muted">The catalogue lists no tools for this server.</p>'
    return '<ul class="tools">' + "".join(f"<li><code>{_e(t)}</code></li>" for t in tools) + "</ul>"


def _variables(facts: ServerFacts) -> str:
    rows = []
    for kind, variables in (("Environment variable", _package_vars(facts)), ("Header", _headers(facts))):
        for variable in variables:
            rows.append(
                f'<tr><th scope="row"><code>{_e(variable.name)}</code><span class="kind">{kind}</span></th>'
                f"<td>{_e(variable.description)}"
                + (
                    f' <span class="muted">Default: <code>{_e(variable.default)}</code></span>'
                    if variable.default
                    else ""
                )
                + f"</td><td>{_yes_no(variable.required, 'required')}</td>"
                f"<td>{_yes_no(variable.secret, 'secret')}</td></tr>"
            )
    if not rows:
        return '<p class="muted">No environment variables or secrets to set.</p>'
    return (
        '<div class="table"><table><caption>Environment variables, headers and secrets</caption>'
        '<thead><tr><th scope="col">Name</th><th scope="col">Description</th>'
        '<th scope="col">Required</th><th scope="col">Secret</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _package_vars(facts: ServerFacts) -> tuple[Variable, ...]:
    return tuple(v for p in facts.packages for v in p.variables)


def _headers(facts: ServerFacts) -> tuple[Variable, ...]:
    return tuple(h for r in facts.remotes for h in r.headers)


def _yes_no(flag: bool, what: str) -> str:
    return f'<span class="flag yes">{what}</span>' if flag else '<span class="muted">no</span>'


def _permissions(permissions: Mapping[str, Any]) -> str:
    if not permissions:
        return '<p class="muted">The catalogue declares no permissions for this server.</p>'
    warning = ""
    network = permissions.get("network")
    outbound = network.get("outbound") if isinstance(network, Mapping) else None
    if isinstance(outbound, Mapping) and outbound.get("insecure_allow_all") is True:
        warning = '<p class="warn">Unrestricted outbound network access.</p>'
    return warning + _tree(permissions)


def _provenance(provenance: Mapping[str, Any]) -> str:
    if not provenance:
        return '<p class="muted">No provenance recorded (no signed build attestation in the catalogue).</p>'
    return _tree(provenance)


def _tree(value: Any) -> str:
    """A nested mapping as nested definition lists; lists as code items; keys made readable."""
    if isinstance(value, Mapping):
        items = "".join(f"<div><dt>{_e(_key(k))}</dt><dd>{_tree(v)}</dd></div>" for k, v in value.items())
        return f'<dl class="tree">{items}</dl>'
    if isinstance(value, list):
        if not value:
            return '<span class="muted">none</span>'
        return (
            '<ul class="inline">'
            + "".join(f"<li><code>{_e(_scalar(v))}</code></li>" for v in value)
            + "</ul>"
        )
    return f"<code>{_e(_scalar(value))}</code>"


def _key(key: object) -> str:
    text = str(key).replace("_", " ")
    return text[:1].upper() + text[1:]


def _scalar(value: Any) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if isinstance(value, (Mapping, list)):
        return repr(value)
    return str(value)


def _source(facts: ServerFacts) -> str:
    rows = []
    if facts.repository:
        rows.append(
            (
                "Repository",
                f'<a href="{_e(facts.repository)}" rel="noopener noreferrer">{_e(facts.repository)}</a>',
            )
        )
    if facts.website:
        rows.append(
            ("Website", f'<a href="{_e(facts.website)}" rel="noopener noreferrer">{_e(facts.website)}</a>')
        )
    for package in facts.packages:
        rows.append(
            (
                f"Package ({_e(package.registry_type or 'unknown')}, {_e(package.transport)})",
                f"<code>{_e(package.identifier)}</code>",
            )
        )
    for remote in facts.remotes:
        rows.append((f"Remote ({_e(remote.transport)})", f"<code>{_e(remote.url)}</code>"))
    if not rows:
        return '<p class="muted">No repository, package or remote listed.</p>'
    return '<dl class="tree">' + "".join(f"<div><dt>{k}</dt><dd>{v}</dd></div>" for k, v in rows) + "</dl>"


def _versions(facts: ServerFacts, versions: Iterable[EntryView]) -> str:
    rows = []
    for entry in versions:
        current = entry.version == facts.version
        published = entry.published_at.strftime("%Y-%m-%d") if entry.published_at else "—"
        label = _e(entry.version) + (" (latest)" if entry.is_latest else "")
        link = label if current else f'<a href="{_e(server_path(entry.name, entry.version))}">{label}</a>'
        json_link = f"/v0.1/servers/{quote(entry.name, safe='')}/versions/{quote(entry.version, safe='')}"
        marker = ' aria-current="true"' if current else ""
        rows.append(
            f'<tr{marker}><th scope="row">{link}</th>'
            f"<td>{_e(entry.status)}</td><td>{published}</td>"
            f'<td><a href="{_e(json_link)}">JSON</a></td></tr>'
        )
    return (
        '<div class="table"><table><caption>Versions, newest first</caption><thead><tr>'
        '<th scope="col">Version</th><th scope="col">Status</th><th scope="col">Published</th>'
        f'<th scope="col">API</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
    )


# --- errors -------------------------------------------------------------------------------------------


def error_page(status: int, title: str, detail: str, *, generation: str, servers: int, assets: str) -> str:
    main = (
        f'<div class="intro"><h1>{_e(title)}</h1><p>{_e(detail)}</p>'
        f'<p><a href="{PREFIX}/">Back to all servers</a></p></div>'
    )
    return _layout(
        f"{status} {title} · MCP server catalogue",
        main,
        generation=generation,
        servers=servers,
        assets=assets,
    )


__all__ = ["PREFIX", "Card", "card_html", "detail_page", "error_page", "list_page", "server_path"]
