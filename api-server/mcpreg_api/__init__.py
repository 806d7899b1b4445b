"""The aiohttp registry API server (MCP Registry API v0.1 and ToolHive compatibility).

    from mcpreg_api.app import create_app
    from mcpreg_api.server import serve
    app = create_app(reader)                              # any mcpreg.storage CatalogReader
    await serve(app, host="127.0.0.1", port=8080)         # until SIGTERM/SIGINT

`mcpreg serve --config FILE` (cli/mcpreg_cli/serve.py) wraps exactly this: `launch` turns the
configuration document (`mcpreg.apiconfig.ApiServerConfig`) into a reader and the server.

Modules, one job each: `app` (factory and wiring), `routes_v01` (/v0.1 and /v0 registry endpoints),
`toolhive` (/api/v1/registry), `ops` (health, readiness, version, metrics), `openapi` (the document),
`queries` (query parameters), `pagination` (cursors), `schemas` (response shapes), `snapshot` (one
precomputed catalogue generation), `builder` (building one off the event loop: a thread, or a child
process for large catalogues), `loader` (follows storage, swaps snapshots), `rendering` (bodies, ETags,
cache), `manners` (conditional requests, gzip, errors, metrics per request), `accesslog` (JSON lines),
`metrics` (Prometheus), `config` (tunables and HTTP limits), `server` (running it, signals), `launch`
(from a configuration document to a running server).
"""

from mcpreg import __version__

__all__ = ["__version__"]
