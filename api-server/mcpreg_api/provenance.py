"""Which generation, and which signing key, an answer belongs to: the headers (see `signed`)."""

from __future__ import annotations

from mcpreg_api.snapshot import Snapshot

HEADER_GENERATION = "X-Mcpreg-Generation"
HEADER_KEY_ID = "X-Mcpreg-Signing-Key-Id"
HEADER_SIGNATURE = "X-Mcpreg-Signature"


def generation_headers(snapshot: Snapshot, document: str | None = None) -> dict[str, str]:
    """The generation (content hash) and, when signed, the key id; with `document`, its signature."""
    headers = {HEADER_GENERATION: snapshot.content_hash}
    signatures = snapshot.signatures
    if signatures is not None:
        headers[HEADER_KEY_ID] = signatures.key_id
        signature = signatures.documents.get(document) if document else None
        if signature is not None:
            headers[HEADER_SIGNATURE] = signature
    return headers
