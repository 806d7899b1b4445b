"""The aiohttp registry API server (MCP Registry API v0.1 and ToolHive compatibility).

    from mcpreg_api import create_app, run
    app = create_app(reader)            # any mcpreg.storage CatalogReader
    run(app, host="127.0.0.1", port=8080)

Modules, one job each: `app` (factory and wiring), `routes_v01` (/v0.1 and /v0 registry endpoints),
`toolhive` (/api/v1/registry), `ops` (health, readiness, version, metrics), `openapi` (the document),
`queries` (query parameters), `pagination` (cursors), `schemas` (response shapes), `snapshot` (one
precomputed catalogue generation), `loader` (follows storage, swaps snapshots), `rendering` (bodies,
ETags, cache), `manners` (conditional requests, gzip, errors, limits), `accesslog` (JSON lines),
`metrics` (Prometheus), `config` (tunables), `server` (running it).
"""

from mcpreg import __version__

__all__ = ["__version__"]
