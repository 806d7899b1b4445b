"""The signed documents: the upstream list served whole, each signature beside its document, the key.

The operator signs the documents this server sends whole (`mcpreg.signing`) and stores the signatures
and the public key with the generation; this server holds no private key and signs nothing. It serves

    GET /api/v1/registry                          the ToolHive document (toolhive.py)
    GET /api/v1/registry.sig                      its signature: base64, as `cosign sign-blob` writes it
    GET /v0.1/x/dev.mcpregistry/servers.json      every server version, in a v0.1 list response's shape
    GET /v0.1/x/dev.mcpregistry/servers.json.sig  its signature
    GET /v0.1/x/dev.mcpregistry/entries.json      the entries manifest: each entry's digest (provenance)
    GET /v0.1/x/dev.mcpregistry/entries.json.sig  its signature
    GET /v0.1/x/dev.mcpregistry/signing-key       the public key (PEM) that signed the served generation

Every one of these answers says which generation it belongs to (`X-Mcpreg-Generation`, the content
hash) and, when signed, which key (`X-Mcpreg-Signing-Key-Id`: sha256 of the public key's DER); the
documents also carry their signature (`X-Mcpreg-Signature`), so one request is enough for a client
that reads headers, and `cosign verify-blob --key KEY --signature <(curl …sig) <(curl …)` works for one
that does not. An unsigned registry answers 404 on the signature and key paths.

The documents are sent as the exact bytes signed (gzip is only a transfer encoding of those bytes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from mcpreg.signing import ENTRIES_DOCUMENT, UPSTREAM_DOCUMENT
from mcpreg_api.config import HttpConfig
from mcpreg_api.errors import not_found
from mcpreg_api.loader import CatalogState
from mcpreg_api.manners import send
from mcpreg_api.paths import ENTRIES_PATH, SIGNATURE_SUFFIX, SIGNED_PATHS, SIGNING_KEY_PATH, UPSTREAM_PATH
from mcpreg_api.provenance import generation_headers
from mcpreg_api.rendering import Rendered
from mcpreg_api.routes_v01 import current_snapshot
from mcpreg_api.snapshot import Snapshot

SIGNATURE_CONTENT_TYPE = "text/plain; charset=us-ascii"
PEM_CONTENT_TYPE = "application/x-pem-file"
UNSIGNED = "this registry's catalogue is not signed (the MCPRegistry has no spec.signing)"
NO_ENTRIES = (
    "this generation's entries manifest is not signed (signed by an operator older than per-entry "
    "provenance; its next sync signs it)"
)


class SignedDocumentRoutes:
    def __init__(self, state: CatalogState, config: HttpConfig) -> None:
        self.state = state
        self.cache_control = config.data_cache_control

    def register(self, app: web.Application) -> None:
        app.router.add_get(UPSTREAM_PATH, self.upstream)
        app.router.add_get(ENTRIES_PATH, self.entries)
        app.router.add_get(SIGNING_KEY_PATH, self.signing_key)
        for document, path in SIGNED_PATHS.items():
            app.router.add_get(path + SIGNATURE_SUFFIX, self._signature_handler(document))

    async def upstream(self, request: web.Request) -> web.StreamResponse:
        snapshot = current_snapshot(self.state)
        return await send(
            request,
            snapshot.upstream,
            cache_control=self.cache_control,
            extra_headers=generation_headers(snapshot, UPSTREAM_DOCUMENT),
        )

    async def entries(self, request: web.Request) -> web.StreamResponse:
        snapshot = current_snapshot(self.state)
        if snapshot.entries_manifest is None:
            raise not_found(UNSIGNED if snapshot.signatures is None else NO_ENTRIES)
        return await send(
            request,
            snapshot.entries_manifest,
            cache_control=self.cache_control,
            extra_headers=generation_headers(snapshot, ENTRIES_DOCUMENT),
        )

    def _signature_handler(self, document: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def signature(request: web.Request) -> web.StreamResponse:
            snapshot = current_snapshot(self.state)
            signatures = snapshot.signatures
            text = signatures.documents.get(document) if signatures is not None else None
            if signatures is None or text is None:
                raise not_found(UNSIGNED if signatures is None else NO_ENTRIES)
            etag = snapshot.etag("sig", document, signatures.key_id)
            return await self._send_generation_text(request, snapshot, text, etag, SIGNATURE_CONTENT_TYPE)

        return signature

    async def signing_key(self, request: web.Request) -> web.StreamResponse:
        snapshot = current_snapshot(self.state)
        signatures = snapshot.signatures
        if signatures is None:
            raise not_found(UNSIGNED)
        etag = snapshot.etag("key", signatures.key_id)
        return await self._send_generation_text(
            request, snapshot, signatures.public_key, etag, PEM_CONTENT_TYPE
        )

    async def _send_generation_text(
        self, request: web.Request, snapshot: Snapshot, text: str, etag: str, content_type: str
    ) -> web.StreamResponse:
        """A signature or the key: ASCII text that belongs to the generation served now (and says so)."""
        return await send(
            request,
            Rendered(text.encode("ascii"), etag),
            cache_control=self.cache_control,
            content_type=content_type,
            extra_headers=generation_headers(snapshot),
        )
