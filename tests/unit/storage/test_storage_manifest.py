"""The generation manifest and its two encodings (ConfigMap head annotations, S3 pointer JSON), data
written by the code before the manifest existed, the reader's verification and the pruning policy."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest

from mcpreg.storage import BlobRef, HeadAnnotations, Manifest, StorageCorruptError, sha256_hash
from mcpreg.storage.backend import Retention, StoredObject
from mcpreg.storage.configmap_layout import parse_head, parse_head_annotations
from mcpreg.storage.encoding import DEFAULT_LIMITS
from mcpreg.storage.reader import assemble
from mcpreg.storage.s3_layout import catalog_key, parse_pointer, pointer_json, toolhive_key
from mcpreg.storage.writer import prunable

DATA = b'{"servers":[]}'
HASH = sha256_hash(DATA)
HEX = HASH.removeprefix("sha256:")
PREFIX = "catalogues/team-a/company"
STORED_AT = datetime(2026, 2, 18, 10, 30, 0, 123456, tzinfo=UTC)

# Exactly what the ConfigMap writer before the manifest put on an inline head and a split one.
OLD_INLINE_HEAD = {
    "metadata": {
        "name": "company-registry-data",
        "annotations": {
            "mcpregistry.dev/storage-format": "1",
            "mcpregistry.dev/content-hash": HASH,
            "mcpregistry.dev/revision": "9f2c1e",
            "mcpregistry.dev/stored-at": "2026-02-18T10:30:00.123456Z",
            "mcpregistry.dev/server-count": "7",
            "mcpregistry.dev/encoding": "identity",
            "mcpregistry.dev/size": str(len(DATA)),
            "mcpregistry.dev/stored-size": str(len(DATA)),
            "mcpregistry.dev/layout": "inline",
        },
    },
    "data": {"catalog.json": DATA.decode()},
}
PART_A, PART_B = b"first-half", b"second-half!"
OLD_SPLIT_ANNOTATIONS = {
    **OLD_INLINE_HEAD["metadata"]["annotations"],  # type: ignore[index]
    "mcpregistry.dev/encoding": "gzip",
    "mcpregistry.dev/size": "1000",
    "mcpregistry.dev/stored-size": str(len(PART_A) + len(PART_B)),
    "mcpregistry.dev/layout": "split",
    "mcpregistry.dev/parts": json.dumps(
        [
            {
                "name": f"company-registry-data-{HEX[:12]}-0",
                "size": len(PART_A),
                "sha256": sha256_hash(PART_A),
            },
            {
                "name": f"company-registry-data-{HEX[:12]}-1",
                "size": len(PART_B),
                "sha256": sha256_hash(PART_B),
            },
        ],
        separators=(",", ":"),
    ),
}
# Exactly what the S3 writer before the manifest put in current.json (no blob hashes, no documents).
OLD_POINTER = {
    "format": "mcpregistry.dev/s3-catalog-pointer/v1",
    "contentHash": HASH,
    "revision": "abc123",
    "storedAt": "2026-02-18T10:30:00.123456Z",
    "serverCount": 7,
    "encoding": "gzip",
    "size": 1000,
    "catalog": {"key": catalog_key(PREFIX, HASH, "gzip"), "size": 300},
    "toolhive": {"key": toolhive_key(PREFIX, HASH), "size": 900},
}


def test_old_inline_head_reads_and_encodes_back_identically() -> None:
    manifest, inline = parse_head(OLD_INLINE_HEAD)
    assert manifest.inline and manifest.format_version == 1
    assert (manifest.content_hash, manifest.revision, manifest.stored_at) == (HASH, "9f2c1e", STORED_AT)
    assert manifest.blobs == (BlobRef(name="catalog.json", size=len(DATA)),)
    assert inline == {"catalog.json": DATA}
    assert assemble(manifest, [inline["catalog.json"]], "here", DEFAULT_LIMITS).data == DATA
    # Written back, the wire format is unchanged: readers of the previous version read what this writes.
    assert HeadAnnotations.of(manifest).to_annotations() == OLD_INLINE_HEAD["metadata"]["annotations"]  # type: ignore[index]


def test_old_split_head_reads_and_encodes_back_identically() -> None:
    manifest = parse_head_annotations({"metadata": {"annotations": OLD_SPLIT_ANNOTATIONS}}).manifest()
    assert not manifest.inline and manifest.encoding == "gzip"
    assert [ref.size for ref in manifest.blobs] == [len(PART_A), len(PART_B)]
    assert manifest.blobs[1].sha256 == sha256_hash(PART_B)
    assert manifest.stored_objects == manifest.blobs
    assert HeadAnnotations.of(manifest).to_annotations() == OLD_SPLIT_ANNOTATIONS


def test_old_pointer_reads_and_new_pointer_keeps_what_old_readers_need() -> None:
    manifest = parse_pointer(json.dumps(OLD_POINTER).encode(), PREFIX, "here")
    assert manifest.blobs == (BlobRef(name=catalog_key(PREFIX, HASH, "gzip"), size=300),)
    assert manifest.documents == {"toolhive": BlobRef(name=toolhive_key(PREFIX, HASH), size=900)}
    assert (manifest.size, manifest.stored_size, manifest.server_count) == (1000, 300, 7)
    assert manifest.stored_at == STORED_AT
    written = json.loads(pointer_json(manifest))
    # Additive only: every field of the old pointer is there with its old value.
    assert {key: written[key] for key in OLD_POINTER} == OLD_POINTER
    assert written["documents"] == {"toolhive": OLD_POINTER["toolhive"]}
    assert parse_pointer(pointer_json(manifest), PREFIX, "here") == manifest


def test_pointer_without_time_zone_is_utc() -> None:
    naive = {**OLD_POINTER, "storedAt": "2026-02-18T10:30:00.123456"}
    assert parse_pointer(json.dumps(naive).encode(), PREFIX, "here").stored_at == STORED_AT


def test_configmap_heads_keep_no_documents() -> None:
    manifest = parse_pointer(json.dumps(OLD_POINTER).encode(), PREFIX, "here")
    with pytest.raises(Exception, match="no extra documents"):
        HeadAnnotations.of(manifest)


def _manifest(blobs: tuple[BlobRef, ...], data: bytes = DATA, encoding: str = "identity") -> Manifest:
    return Manifest.model_validate(
        {
            "content_hash": sha256_hash(data),
            "revision": "r",
            "stored_at": STORED_AT,
            "server_count": 0,
            "encoding": encoding,
            "size": len(data),
            "stored_size": sum(blob.size for blob in blobs),
            "blobs": blobs,
        }
    )


def test_manifest_blobs_must_add_up() -> None:
    with pytest.raises(ValueError, match="add up"):
        Manifest.model_validate(
            {**_manifest((BlobRef(name="a", size=len(DATA)),)).model_dump(), "stored_size": 1}
        )


def test_assemble_verifies_each_blob_and_the_content_hash() -> None:
    payload = gzip.compress(DATA, mtime=0)
    first, second = payload[:10], payload[10:]
    refs = (
        BlobRef(name="p0", size=len(first), sha256=sha256_hash(first)),
        BlobRef(name="p1", size=len(second), sha256=sha256_hash(second)),
    )
    manifest = _manifest(refs, encoding="gzip")
    assert assemble(manifest, [first, second], "here", DEFAULT_LIMITS).verify()
    altered = bytes([second[0] ^ 1]) + second[1:]
    with pytest.raises(StorageCorruptError, match="p1 does not hold the bytes"):
        assemble(manifest, [first, altered], "here", DEFAULT_LIMITS)
    with pytest.raises(StorageCorruptError, match="p0 does not hold the bytes"):
        assemble(manifest, [first + b"x", second], "here", DEFAULT_LIMITS)
    # Without blob hashes (old pointers) the content hash still catches an altered byte.
    unhashed = _manifest((BlobRef(name="only", size=len(DATA)),))
    with pytest.raises(StorageCorruptError, match="does not match its content hash"):
        assemble(unhashed, [DATA.replace(b"[", b"(")], "here", DEFAULT_LIMITS)


H1, H2, H3, H4 = (sha256_hash(str(i).encode()) for i in range(4))
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def objects_of(h: str, minutes_ago: int, names: tuple[str, ...] = ("a", "b")) -> list[StoredObject]:
    return [StoredObject(f"{h[7:15]}/{n}", h, NOW - timedelta(minutes=minutes_ago)) for n in names]


def test_s3_retention_keeps_newest_and_protected() -> None:
    keep3 = Retention(generations=3, keep_replaced=True)
    objects = [*objects_of(H1, 40), *objects_of(H2, 30), *objects_of(H3, 20), *objects_of(H4, 10)]
    objects.append(StoredObject("NOTES.txt", None, NOW - timedelta(days=9000)))
    # H4 published, H3 replaced: keep 3 → H4, H3 and the newest other (H2); H1 goes.
    doomed = prunable(objects, keep=set(), published=H4, replaced=H3, retention=keep3, now=NOW)
    assert doomed == objects_of(H1, 40)
    # An old generation republished is protected even though it is the oldest.
    keep2 = Retention(generations=2, keep_replaced=True)
    doomed = prunable(objects, keep=set(), published=H1, replaced=H4, retention=keep2, now=NOW)
    assert {obj.generation for obj in doomed} == {H2, H3}
    keep10 = Retention(generations=10, keep_replaced=True)
    assert prunable(objects, keep=set(), published=H4, replaced=None, retention=keep10, now=NOW) == []


def test_configmap_retention_drops_the_replaced_generation_and_old_orphans() -> None:
    only_published = Retention(generations=1, keep_replaced=False, grace=timedelta(minutes=10))
    replaced = objects_of(H1, 1)
    young_orphan, old_orphan = objects_of(H2, 5, ("x",)), objects_of(H3, 60, ("y",))
    undated = [StoredObject("undated", H3)]
    published = objects_of(H4, 0)
    objects = [*replaced, *young_orphan, *old_orphan, *undated, *published]
    keep = {obj.name for obj in published}
    doomed = prunable(objects, keep=keep, published=H4, replaced=H1, retention=only_published, now=NOW)
    # The replaced generation at once (no manifest can name it); orphans only once past the grace.
    assert doomed == [*replaced, *old_orphan]
