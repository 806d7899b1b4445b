"""`mcpreg verify URL --key KEY.pub --entry NAME[@VERSION]`: check one server entry, not the catalogue.

A host about to launch one server needs only that server's entry to be the one the organisation
signed. The registry's signed generation carries an entries manifest (every server version's digest,
`mcpreg.catalog.provenance`), and each entry it serves names, in `_meta["dev.mcpregistry/provenance"]`,
where that manifest and its signature are. So: fetch the entry, then the manifest and its signature;
verify the signature with the key (obtained outside the registry); recompute the entry's digest from
its canonical form; and accept only when the signed manifest names that digest for that name and
version. The provenance block itself is a pointer, never trusted: the digest that counts is the one
recomputed here and the one in the signed manifest.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from mcpreg.catalog.provenance import (
    PROVENANCE_META_KEY,
    EntriesManifest,
    EntryFormError,
    ProvenanceBlock,
    canonical_entry,
    entry_digest,
)
from mcpreg.signing import PublicKey, SignatureMismatch, key_id, verify_blob

ENTRY_PATH = "/v0.1/servers/{name}/versions/{version}"
MAX_SIGNATURE_BYTES = 4096
MAX_ENTRY_BYTES = 4 * 1024 * 1024  # one server version; the API's own entries are far smaller

# (url, timeout seconds, most bytes or None) -> the body; `verify` passes its HTTP getter
Fetch = Callable[[str, float, int | None], bytes]


class EntryRefused(SignatureMismatch):
    """The entry cannot be verified: no provenance, or what it is differs from what was signed."""


def parse_entry_arg(text: str) -> tuple[str, str]:
    """`NAME[@VERSION]` → (name, version); the version defaults to `latest`. Server names hold no `@`
    (reverse-DNS and a slash), versions may (`1.0.0@sha`), so the first `@` splits."""
    name, _, version = text.partition("@")
    if not name:
        raise ValueError(f"--entry {text!r}: give a server name, NAME or NAME@VERSION")
    return name, version or "latest"


def entry_url(base: str, name: str, version: str) -> str:
    path = ENTRY_PATH.format(
        name=urllib.parse.quote(name, safe=""), version=urllib.parse.quote(version, safe="")
    )
    return base.rstrip("/") + path


def _decode(url: str, body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EntryRefused(f"{url} is not JSON ({exc})") from None


def _provenance(url: str, entry: Any) -> ProvenanceBlock:
    meta = entry.get("_meta") if isinstance(entry, dict) else None
    block = meta.get(PROVENANCE_META_KEY) if isinstance(meta, dict) else None
    if block is None:
        raise EntryRefused(
            f'{url}: the entry carries no _meta["{PROVENANCE_META_KEY}"]: the registry does not sign '
            "its entries (no spec.signing, or a generation signed before per-entry provenance)"
        )
    try:
        return ProvenanceBlock.model_validate(block)
    except ValidationError as exc:
        raise EntryRefused(
            f'{url}: _meta["{PROVENANCE_META_KEY}"] is malformed: {exc.errors()[0]["msg"]}'
        ) from None


def _manifest(url: str, body: bytes) -> EntriesManifest:
    try:
        return EntriesManifest.model_validate_json(body)
    except ValidationError as exc:
        raise EntryRefused(f"{url}: not an entries manifest ({exc.errors()[0]['msg']})") from None


def verify_entry(base: str, name: str, version: str, key: PublicKey, *, timeout: float, fetch: Fetch) -> str:
    """Verify one entry (`version` may be `latest`); returns what was verified. Raises EntryRefused or
    SignatureMismatch (not verified), and whatever `fetch` raises (verify.Missing, verify.Unreachable).

    The entry and the manifest are fetched one after the other: when the registry published a new
    generation in between (the entry names another generation than the manifest), once more."""
    url = entry_url(base, name, version)
    for attempt in (1, 2):
        entry = _decode(url, fetch(url, timeout, MAX_ENTRY_BYTES))
        block = _provenance(url, entry)
        try:
            digest = entry_digest(canonical_entry(entry))
        except EntryFormError as exc:
            raise EntryRefused(f"{url}: {exc}") from None
        server = entry["server"]
        served_name, served_version = server.get("name"), server.get("version")
        if served_name != name or (version != "latest" and served_version != version):
            raise EntryRefused(f"{url} answered with another entry: {served_name}@{served_version}")
        # The block's paths are on the registry that served the entry: joined to its base URL, never
        # followed to another host.
        manifest_url = base.rstrip("/") + block.manifest
        signature = fetch(base.rstrip("/") + block.signature, timeout, MAX_SIGNATURE_BYTES)
        manifest_body = fetch(manifest_url, timeout, None)
        try:
            verify_blob(key, signature, manifest_body)
        except SignatureMismatch as exc:
            if block.key_id != key_id(key):
                raise SignatureMismatch(
                    f"{exc}: the registry signs with key {block.key_id}, not with the given key {key_id(key)}"
                ) from None
            raise SignatureMismatch(f"{manifest_url}: {exc}") from None
        manifest = _manifest(manifest_url, manifest_body)
        if manifest.generation != block.generation:
            if attempt == 1:
                continue
            raise EntryRefused(
                f"the entry belongs to generation {block.generation}, the manifest to "
                f"{manifest.generation}: the registry keeps changing; try again"
            )
        try:
            signed = manifest.digest_of(str(served_name), str(served_version))
        except ValueError as exc:
            raise EntryRefused(f"{manifest_url}: {exc}") from None
        if signed is None:
            raise EntryRefused(
                f"the signed manifest of {manifest.generation} names no {served_name}@{served_version}"
            )
        if signed != digest:
            raise EntryRefused(
                f"{url}: the entry's digest is {digest}, the signed manifest names {signed}: the entry "
                "was changed after it was signed"
            )
        return f"{url}: {served_name}@{served_version}, digest {digest}, generation {manifest.generation}"
    raise AssertionError("unreachable")
