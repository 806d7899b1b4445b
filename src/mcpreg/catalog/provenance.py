"""Per-entry provenance: the signed digest manifest, and what lets a host check one server entry.

A signed generation carries, besides the signatures of the documents served whole, the signature of
its *entries manifest*: one line of JSON naming every server version with the digest of its entry::

    {"format":"mcpreg.entries/v1","generation":"sha256:…",
     "entries":[{"name":"io.github.acme/weather","version":"1.0.0","digest":"sha256:…"},…]}

The manifest is not stored: like the upstream list, it is a pure function of the served document (its
bodies, names and versions, in (name, version) order) and of the generation's content hash, so the
operator (which signs it) and every API replica (which serves it) make the same bytes. Each entry the
API serves then carries, in its registry-managed `_meta` (beside `io.modelcontextprotocol.registry/
official`; the publisher's `server._meta` is never touched), where to check it::

    "dev.mcpregistry/provenance": {"digest": "sha256:…", "generation": "sha256:…", "keyId": "sha256:…",
                                   "manifest": "/v0.1/x/dev.mcpregistry/entries.json",
                                   "signature": "/v0.1/x/dev.mcpregistry/entries.json.sig"}

An entry's digest is the SHA-256 of its canonical form (`canonical_entry`): the entry without that key,
written `{"server":S,"_meta":M}` with S and M as JSON with every object's keys sorted (by code point),
no whitespace, and every non-ASCII character as a `\\uXXXX` escape (lower-case hex, surrogate pairs
above U+FFFF): Python's `json.dumps(value, sort_keys=True, separators=(",", ":"))`. The served
document stores each body in exactly that form, so the operator hashes the stored bytes (milliseconds
for 10,000 entries) and never serialises anything again.

An upstream entry that already carries a provenance block (mirrored from another registry of this
kind) keeps it, moved to `dev.mcpregistry/upstream-provenance` (a list, the nearest upstream first):
it is part of what this registry's digest covers, and it never collides with this registry's own block.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

PROVENANCE_META_KEY = "dev.mcpregistry/provenance"
UPSTREAM_PROVENANCE_META_KEY = "dev.mcpregistry/upstream-provenance"
ENTRIES_FORMAT = "mcpreg.entries/v1"
DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"
_FACTS_SEPARATOR = b'","'  # between two JSON strings; inside one, its first quote follows a backslash


def dump_sorted(value: Any) -> bytes:
    """`value` in the canonical form of an entry's parts (see the module's docstring)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def render_body(server: Mapping[str, Any], meta: Mapping[str, Any]) -> bytes:
    """An entry's body as stored and served: its canonical form, so its digest is its bytes' hash."""
    return b'{"server":' + dump_sorted(server) + b',"_meta":' + dump_sorted(meta) + b"}"


def keep_upstream_provenance(meta: dict[str, Any]) -> None:
    """Move an upstream registry's provenance block out of this registry's key (in place)."""
    upstream = meta.pop(PROVENANCE_META_KEY, None)
    if upstream is None:
        return
    earlier = meta.get(UPSTREAM_PROVENANCE_META_KEY)
    chain = earlier if isinstance(earlier, list) else ([] if earlier is None else [earlier])
    meta[UPSTREAM_PROVENANCE_META_KEY] = [upstream, *chain]


class EntryFormError(ValueError):
    """A served entry that is not `{"server": {...}, "_meta": {...}}`."""


def canonical_entry(entry: Any) -> bytes:
    """The bytes an entry's digest is taken over: `entry` (a decoded served entry) without this
    registry's provenance block, in canonical form. EntryFormError when it is not an entry."""
    if not isinstance(entry, dict) or set(entry) != {"server", "_meta"}:
        found = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
        raise EntryFormError(f'the entry is not {{"server": …, "_meta": …}} (found {found})')
    server, meta = entry["server"], entry["_meta"]
    if not isinstance(server, dict) or not isinstance(meta, dict):
        raise EntryFormError('the entry\'s "server" and "_meta" must be JSON objects')
    return render_body(server, {key: value for key, value in meta.items() if key != PROVENANCE_META_KEY})


def entry_digest(body: bytes | memoryview) -> str:
    """`sha256:<hex>` of a stored body (its canonical form)."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def manifest_row(name_json: bytes, version_json: bytes, digest: str) -> bytes:
    """One manifest entry: the name and version as JSON strings, and the entry's digest."""
    return b'{"name":' + name_json + b',"version":' + version_json + b',"digest":"' + digest.encode() + b'"}'


def name_and_version_in(data: bytes, start: int, end: int) -> tuple[bytes, bytes]:
    """The name and version, as JSON strings, of the served facts line `data[start:end]`
    (`["name","version","status",…]`), as written there: not decoded, and what `json.dumps` of the
    decoded name and version gives back (how the API writes the same rows)."""
    end_of_name = _string_end(data, start + 1, end)
    end_of_version = _string_end(data, end_of_name + 2, end)
    return data[start + 1 : end_of_name + 1], data[end_of_name + 2 : end_of_version + 1]


def _string_end(data: bytes, opening: int, end: int) -> int:
    """Where the JSON string opened at `data[opening]` closes and the next one opens (`","`): a quote
    after an odd run of backslashes is escaped, one after an even run (none) closes the string. Fast
    for what the facts line holds: a name has no quote, a version rarely one."""
    at = data.index(_FACTS_SEPARATOR, opening + 1, end)
    while True:
        backslashes = 0
        while data[at - 1 - backslashes] == 0x5C:  # a backslash
            backslashes += 1
        if backslashes % 2 == 0:
            return at
        at = data.index(_FACTS_SEPARATOR, at + 1, end)


def entries_manifest(generation: str, rows: Iterable[bytes]) -> bytes:
    """The entries manifest of `generation` from its `manifest_row`s, in (name, version) order."""
    head = b'{"format":"' + ENTRIES_FORMAT.encode() + b'","generation":' + json.dumps(generation).encode()
    return head + b',"entries":[' + b",".join(rows) + b"]}"


def with_provenance(body: bytes, block: bytes) -> bytes:
    """A stored body with this registry's provenance block (JSON) added to its `_meta`: the body ends
    with the `}` of `_meta` (never empty: it holds the official block) and its own `}`."""
    return body[:-2] + b',"' + PROVENANCE_META_KEY.encode() + b'":' + block + b"}}"


# --- reading a manifest (a host) ----------------------------------------------------------------------


class ManifestEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: str
    digest: str = Field(pattern=DIGEST_PATTERN)


class EntriesManifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format: str = Field(pattern=r"^mcpreg\.entries/v1$")
    generation: str = Field(pattern=DIGEST_PATTERN)
    entries: tuple[ManifestEntry, ...]

    def digest_of(self, name: str, version: str) -> str | None:
        """The digest the manifest names for one server version; None when it names none."""
        found = [entry.digest for entry in self.entries if entry.name == name and entry.version == version]
        if len(found) > 1:
            raise ValueError(f"the manifest names {name}@{version} {len(found)} times")
        return found[0] if found else None


class ProvenanceBlock(BaseModel):
    """`_meta["dev.mcpregistry/provenance"]` of a served entry."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)

    digest: str = Field(pattern=DIGEST_PATTERN)
    generation: str = Field(pattern=DIGEST_PATTERN)
    key_id: str = Field(alias="keyId", pattern=DIGEST_PATTERN)
    manifest: str = Field(pattern=r"^/", max_length=1024)  # a path on the registry that served the entry
    signature: str = Field(pattern=r"^/", max_length=1024)
