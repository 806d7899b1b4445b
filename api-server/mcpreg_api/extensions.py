"""Our additions to the MCP Registry API, under the extension namespace the specification reserves.

The official registry's extensions document puts vendor endpoints under `/v0.1/x/<namespace>/...`, the
namespace a reverse domain the vendor owns. Ours is `dev.mcpregistry`, the namespace this project's
`_meta` keys already use (`dev.mcpregistry/catalog`, the publisher block `dev.mcpregistry`).

    GET /v0.1/x/dev.mcpregistry/info    which registry this is, where its catalogue comes from, which
                                        generation is served, how many servers and versions it holds

The info document is rendered once per generation (ETag, 304, gzip like every catalogue answer).
When the operator signs the catalogue, `signing` names the key (`keyId`, `keyUrl`) and where each
signed document and its signature are (see `signed`); clients must treat every field they do not know
as absent, as the extensions document asks.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from mcpreg.apiconfig import SourceSummary
from mcpreg.catalog.served import format_time
from mcpreg_api import __version__
from mcpreg_api.config import HttpConfig
from mcpreg_api.loader import CatalogState
from mcpreg_api.manners import send
from mcpreg_api.paths import INFO_PATH, SIGNATURE_SUFFIX, SIGNED_PATHS, SIGNING_KEY_PATH
from mcpreg_api.rendering import Rendered, dump_json
from mcpreg_api.routes_v01 import current_snapshot
from mcpreg_api.snapshot import Snapshot


@dataclass(frozen=True, slots=True)
class RegistryIdentity:
    """Which registry a server serves: the MCPRegistry (empty for a local file) and its source."""

    name: str = ""
    namespace: str = ""
    source: SourceSummary | None = None


def _source(source: SourceSummary | None) -> dict[str, Any] | None:
    if source is None:
        return None
    facts = source.model_dump(mode="json")
    return {key: value for key, value in facts.items() if value != ""}


def info_document(identity: RegistryIdentity, snapshot: Snapshot) -> dict[str, Any]:
    """The info extension's body for `snapshot`."""
    entries = snapshot.view(latest_only=False, with_deleted=True).entries
    statuses = Counter(entry.status for entry in entries)
    registry = {"name": identity.name, "namespace": identity.namespace} if identity.name else None
    return {
        "registry": registry,
        "source": _source(identity.source),
        "revision": snapshot.revision,
        "generation": {
            "contentHash": snapshot.content_hash,
            "storedAt": format_time(snapshot.stored_at),
            "loadedAt": format_time(snapshot.loaded_at),
        },
        "counts": {
            "servers": snapshot.server_count,
            "versions": snapshot.entry_count,
            "active": statuses["active"],
            "deprecated": statuses["deprecated"],
            "deleted": statuses["deleted"],
        },
        "server": {"version": __version__},
        "signing": _signing(snapshot),
    }


def _signing(snapshot: Snapshot) -> dict[str, Any] | None:
    signatures = snapshot.signatures
    if signatures is None:
        return None
    return {
        "keyId": signatures.key_id,
        "keyUrl": SIGNING_KEY_PATH,
        "documents": {
            SIGNED_PATHS[name]: SIGNED_PATHS[name] + SIGNATURE_SUFFIX for name in signatures.documents
        },
    }


class ExtensionRoutes:
    def __init__(self, state: CatalogState, config: HttpConfig, identity: RegistryIdentity) -> None:
        self.state = state
        self.identity = identity
        self.cache_control = config.data_cache_control

    def register(self, app: web.Application) -> None:
        app.router.add_get(INFO_PATH, self.info)

    async def info(self, request: web.Request) -> web.StreamResponse:
        snapshot = current_snapshot(self.state)

        def render() -> Rendered:
            return Rendered(
                dump_json(info_document(self.identity, snapshot)),
                snapshot.etag("x-info", snapshot.generation_id),
            )

        rendered = snapshot.cache.get_or_render(("x-info",), render)
        return await send(request, rendered, cache_control=self.cache_control)
