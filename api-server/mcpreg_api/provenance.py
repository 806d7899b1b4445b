"""Which generation, and which signing key, an answer belongs to: the headers (see `signed`), and the
provenance block each served entry carries when the entries manifest is signed
(`mcpreg.catalog.provenance`)."""

from __future__ import annotations

from mcpreg.catalog.provenance import with_provenance
from mcpreg_api.paths import ENTRIES_PATH, SIGNATURE_SUFFIX
from mcpreg_api.rendering import dump_json
from mcpreg_api.snapshot import EntryView, Snapshot

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


def served_entry(snapshot: Snapshot, entry: EntryView) -> bytes:
    """An entry's body as the v0.1 API sends it: the stored body, with this registry's provenance block
    in `_meta` when the generation's entries manifest is signed (the body's digest does not cover it)."""
    digests = snapshot.entry_digests
    if digests is None or snapshot.signatures is None:
        return entry.body
    block = {
        "digest": digests[entry.key],
        "generation": snapshot.content_hash,
        "keyId": snapshot.signatures.key_id,
        "manifest": ENTRIES_PATH,
        "signature": ENTRIES_PATH + SIGNATURE_SUFFIX,
    }
    return with_provenance(entry.body, dump_json(block))
