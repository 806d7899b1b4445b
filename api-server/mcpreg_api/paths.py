"""The paths of our extensions and signed documents, in a module that imports nothing of the server, so
the routes, the snapshot's provenance blocks and the OpenAPI document can all name them (see
`extensions` and `signed` for what they serve)."""

from __future__ import annotations

from mcpreg.signing import ENTRIES_DOCUMENT, TOOLHIVE_DOCUMENT, UPSTREAM_DOCUMENT

EXTENSION_NAMESPACE = "dev.mcpregistry"
EXTENSION_PREFIX = f"/v0.1/x/{EXTENSION_NAMESPACE}"
INFO_PATH = f"{EXTENSION_PREFIX}/info"
UPSTREAM_PATH = f"{EXTENSION_PREFIX}/servers.json"
ENTRIES_PATH = f"{EXTENSION_PREFIX}/entries.json"
SIGNING_KEY_PATH = f"{EXTENSION_PREFIX}/signing-key"
SIGNATURE_SUFFIX = ".sig"
TOOLHIVE_PATH = "/api/v1/registry"
# Each document served whole and signed → its path (its signature: the path + SIGNATURE_SUFFIX).
SIGNED_PATHS = {
    TOOLHIVE_DOCUMENT: TOOLHIVE_PATH,
    UPSTREAM_DOCUMENT: UPSTREAM_PATH,
    ENTRIES_DOCUMENT: ENTRIES_PATH,
}
