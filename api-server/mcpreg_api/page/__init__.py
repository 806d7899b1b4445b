"""The catalogue web page: a browsable view of the served catalogue, at `/` and under `/catalog/`.

Rendered on the server (the list works without JavaScript), with a small script of its own for search
as you type, filters, copying install snippets and following the catalogue's reloads. Nothing is loaded
from anywhere but this server, so it works air-gapped.

    facts.py     what the page shows of one server, read from its served body (untrusted data)
    snippets.py  install snippets: `thv run`, a VS Code `mcp.json` entry, a Claude Desktop entry
    html.py      the HTML of the list and the detail page, every value escaped
    model.py     one generation's page data: facts, facets and the rendered cards, built once
    routes.py    the routes, headers (CSP, ETag, gzip) and the generation endpoint the script polls
    assets/      the stylesheet and the script, served from this package
"""
