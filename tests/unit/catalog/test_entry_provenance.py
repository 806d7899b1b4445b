"""Per-entry provenance: canonical bodies, their digests, the entries manifest, the provenance block."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from mcpreg.catalog import parse_catalog
from mcpreg.catalog.provenance import (
    PROVENANCE_META_KEY,
    UPSTREAM_PROVENANCE_META_KEY,
    EntriesManifest,
    EntryFormError,
    canonical_entry,
    entry_digest,
    with_provenance,
)
from mcpreg.catalog.served import read_served, render_served, served_documents
from mcpreg.signing import ENTRIES_DOCUMENT
from mcpreg.storage.model import sha256_hash
from mcpreg_api.snapshot import entry_provenance
from mcpreg_cli.verify_entry import entry_url, parse_entry_arg

OFFICIAL = "io.modelcontextprotocol.registry/official"
BLOCK = {
    "digest": "sha256:" + "1" * 64,
    "generation": "sha256:" + "2" * 64,
    "keyId": "sha256:" + "3" * 64,
    "manifest": "/v0.1/x/dev.mcpregistry/entries.json",
    "signature": "/v0.1/x/dev.mcpregistry/entries.json.sig",
}


def item(name: str, version: str, **server: Any) -> dict[str, Any]:
    body = {"name": name, "version": version, "description": "d", **server}
    return {"server": body, "_meta": {OFFICIAL: {"status": "active", "publishedAt": "2025-01-01T00:00:00Z"}}}


def served(items: list[dict[str, Any]]) -> bytes:
    return render_served(parse_catalog(json.dumps({"servers": items}).encode(), format="auto"))


# Text a canonical form must write one way only: non-ASCII (BMP and above), escapes, key order.
AWKWARD = [
    item("io.github.acme/weather", "1.0.0", title="Météo ☃ 𝄞", zeta={"b": 1, "a": [2.5, None, True]}),
    item("io.github.acme/weather", "1.0.0+build.7", description='quote " backslash \\ tab \t nul \u0000'),
    item("com.example/zeta", "3.1.4", _meta={"com.example/x": {"y": "ü"}}),
]


def test_every_stored_body_is_its_own_canonical_form_and_the_manifest_names_its_digest() -> None:
    data = served(AWKWARD)
    manifest = EntriesManifest.model_validate_json(
        served_documents(data, sha256_hash(data))[ENTRIES_DOCUMENT]
    )
    assert manifest.generation == sha256_hash(data)
    entries = read_served(data).entries
    assert [(e.name, e.version) for e in manifest.entries] == [entry.key for entry in entries]
    for entry in entries:
        # A host decodes what it got and re-encodes it: the very bytes that were hashed when signing.
        assert canonical_entry(json.loads(entry.body)) == entry.body
        digest = "sha256:" + hashlib.sha256(entry.body).hexdigest()
        assert entry_digest(entry.body) == digest == manifest.digest_of(entry.name, entry.version)


def test_the_provenance_block_is_outside_what_the_digest_covers_and_a_change_is_not() -> None:
    body = read_served(served(AWKWARD)).entries[0].body
    with_block = json.loads(with_provenance(body, json.dumps(BLOCK).encode()))
    assert with_block["_meta"][PROVENANCE_META_KEY] == BLOCK
    assert canonical_entry(with_block) == body
    # Any change to the server or to the registry's other metadata changes the digest.
    for part, key in (("server", "description"), ("_meta", OFFICIAL)):
        changed = json.loads(with_provenance(body, json.dumps(BLOCK).encode()))
        changed[part][key] = "changed"
        assert entry_digest(canonical_entry(changed)) != entry_digest(body)


def test_an_upstream_provenance_block_is_kept_apart_from_this_registrys() -> None:
    mirrored = item("io.github.acme/weather", "1.0.0")
    mirrored["_meta"][PROVENANCE_META_KEY] = BLOCK
    mirrored["_meta"][UPSTREAM_PROVENANCE_META_KEY] = [{"older": True}]
    body = read_served(served([mirrored])).entries[0].body
    meta = json.loads(body)["_meta"]
    assert PROVENANCE_META_KEY not in meta
    assert meta[UPSTREAM_PROVENANCE_META_KEY] == [BLOCK, {"older": True}]
    assert canonical_entry(json.loads(body)) == body


@pytest.mark.parametrize(
    ("entry", "found"),
    [
        ([], "list"),
        ({"server": {}}, "['server']"),
        ({"server": {}, "_meta": {}, "extra": 1}, "['_meta', 'extra', 'server']"),
    ],
)
def test_what_is_not_an_entry_is_refused_with_what_was_found(entry: Any, found: str) -> None:
    with pytest.raises(EntryFormError, match=r"found " + found.replace("[", r"\[").replace("]", r"\]")):
        canonical_entry(entry)
    with pytest.raises(EntryFormError, match="JSON objects"):
        canonical_entry({"server": [], "_meta": {}})


def test_a_manifest_naming_one_version_twice_is_refused_and_an_absent_one_is_none() -> None:
    row = {"name": "a/b", "version": "1", "digest": "sha256:" + "0" * 64}
    manifest = EntriesManifest.model_validate(
        {"format": "mcpreg.entries/v1", "generation": "sha256:" + "0" * 64, "entries": [row, row]}
    )
    with pytest.raises(ValueError, match="2 times"):
        manifest.digest_of("a/b", "1")
    assert manifest.digest_of("a/b", "2") is None


def test_the_entry_argument_and_its_url() -> None:
    assert parse_entry_arg("io.github.acme/weather") == ("io.github.acme/weather", "latest")
    assert parse_entry_arg("io.github.acme/weather@1.0.0+b@x") == ("io.github.acme/weather", "1.0.0+b@x")
    with pytest.raises(ValueError, match="give a server name"):
        parse_entry_arg("@1.0.0")
    assert (
        entry_url("http://r.example/prefix/", "io.github.acme/weather", "1.0.0+b")
        == "http://r.example/prefix/v0.1/servers/io.github.acme%2Fweather/versions/1.0.0%2Bb"
    )


@pytest.mark.parametrize("version", ['1.0",', '1.0\\",', '2.0","x', "3.0\\", '4.0"', "5.0 \u00e9\U0001d11e"])
def test_the_api_makes_the_manifest_the_operator_signed_whatever_the_version_holds(version: str) -> None:
    # The operator takes each name and version as its facts line writes them; the API re-encodes them.
    data = served([item("io.github.acme/weather", version), item("io.github.acme/weather", "1.0.0")])
    generation = sha256_hash(data)
    digests, manifest = entry_provenance(read_served(data).entries, generation)
    assert served_documents(data, generation)[ENTRIES_DOCUMENT] == manifest
    names = EntriesManifest.model_validate_json(manifest)
    assert names.digest_of("io.github.acme/weather", version) == digests[("io.github.acme/weather", version)]
