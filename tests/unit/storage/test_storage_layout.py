"""The ConfigMap layout: names, labels, the head's annotations and parts list, building and parsing
heads and parts (pure logic on the JSON shapes the API server stores)."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from mcpreg.storage import (
    ConfigMapNames,
    EncodingLimits,
    HeadAnnotations,
    Manifest,
    OwnerReference,
    StorageCorruptError,
    StorageError,
    StoredCatalog,
    encode,
)
from mcpreg.storage.configmap_backend import ConfigMapAddress, ConfigMapBackend
from mcpreg.storage.configmap_layout import (
    head_body,
    parse_head,
    parse_head_annotations,
    parse_part,
    part_body,
)
from mcpreg.storage.encoding import DEFAULT_LIMITS, EncodedCatalog

KIB = 1024
NAMES = ConfigMapNames("company-registry")
OWNER = OwnerReference.for_registry("company-registry", "0f6c9a52-uid")
STORED_AT = datetime(2026, 2, 18, 10, 30, 0, 123456, tzinfo=UTC)


def catalog(data: bytes, revision: str = "9f2c1e") -> StoredCatalog:
    return StoredCatalog.create(data, revision=revision, server_count=7, stored_at=STORED_AT)


def manifest_of(stored: StoredCatalog, encoded: EncodedCatalog) -> Manifest:
    """The manifest the writer makes, with the blob names the ConfigMap backend gives."""
    backend = ConfigMapBackend(ConfigMapAddress(None, "ns", NAMES.registry), None)  # type: ignore[arg-type]
    blobs, inline = backend.blob_refs(stored.content_hash, encoded)
    return Manifest.of(stored, encoding=encoded.encoding, blobs=blobs, inline=inline)


def built(
    data: bytes, limits: EncodingLimits = DEFAULT_LIMITS
) -> tuple[StoredCatalog, dict[str, Any], list[dict[str, Any]]]:
    """A head and its parts as the writer would send them (and the API server return them)."""
    stored = catalog(data)
    encoded = encode(data, limits)
    manifest = manifest_of(stored, encoded)
    inline = {manifest.blobs[0].name: encoded.payload} if manifest.inline else {}
    head = head_body(NAMES, "ns", manifest, inline, OWNER)
    parts = [
        part_body(NAMES, "ns", stored.content_hash, i, ref, chunk, OWNER)
        for i, (ref, chunk) in enumerate(zip(manifest.blobs, encoded.chunks, strict=True))
        if not manifest.inline
    ]  # an inline layout has one chunk and no part objects
    return stored, head, parts


def test_names() -> None:
    digest = "ab" * 32
    assert NAMES.head == "company-registry-data"
    assert NAMES.part(f"sha256:{digest}", 3) == "company-registry-data-abababababab-3"


@pytest.mark.parametrize("bad", ["", "Company", "-x", "x-", "a_b", "x" * 64, "a.b"])
def test_registry_names_must_be_dns_labels(bad: str) -> None:
    with pytest.raises(ValueError, match="DNS label"):
        ConfigMapNames(bad)


def test_labels_and_selectors() -> None:
    assert NAMES.labels("head") == {
        "app.kubernetes.io/name": "mcp-registry",
        "app.kubernetes.io/instance": "company-registry",
        "app.kubernetes.io/component": "catalog-data",
        "app.kubernetes.io/part-of": "mcp-registry",
        "app.kubernetes.io/managed-by": "mcp-registry-operator",
        "mcpregistry.dev/catalog-object": "head",
    }
    assert NAMES.selector("part").endswith(",mcpregistry.dev/catalog-object=part")
    assert "catalog-object" not in NAMES.selector()
    # A data ConfigMap written before part-of was added still matches (its parts must be pruned).
    older = {k: v for k, v in NAMES.labels("part").items() if k != "app.kubernetes.io/part-of"}
    assert all(older.get(k) == v for k, v in (t.split("=") for t in NAMES.selector("part").split(",")))


def test_owner_reference_is_a_controller_reference() -> None:
    assert OWNER.to_kube() == {
        "apiVersion": "mcpregistry.dev/v1alpha1",
        "kind": "MCPRegistry",
        "name": "company-registry",
        "uid": "0f6c9a52-uid",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    assert OwnerReference.model_validate(OWNER.to_kube()) == OWNER


def test_inline_text_head() -> None:
    data = b'{"servers":[]}'
    stored, head, parts = built(data)
    assert parts == []
    assert head["data"] == {"catalog.json": data.decode()} and "binaryData" not in head
    assert head["metadata"]["ownerReferences"] == [OWNER.to_kube()]
    assert head["metadata"]["labels"] == NAMES.labels("head")
    annotations = head["metadata"]["annotations"]
    assert annotations == {
        "mcpregistry.dev/storage-format": "1",
        "mcpregistry.dev/content-hash": stored.content_hash,
        "mcpregistry.dev/revision": "9f2c1e",
        "mcpregistry.dev/stored-at": "2026-02-18T10:30:00.123456Z",
        "mcpregistry.dev/server-count": "7",
        "mcpregistry.dev/encoding": "identity",
        "mcpregistry.dev/size": str(len(data)),
        "mcpregistry.dev/stored-size": str(len(data)),
        "mcpregistry.dev/layout": "inline",
    }
    manifest, inline = parse_head(head)
    assert inline == {"catalog.json": data} and manifest.inline
    assert manifest.stored_at == STORED_AT and manifest.server_count == 7


def test_inline_gzip_head() -> None:
    data = json.dumps([{"n": i} for i in range(20_000)]).encode()
    _, head, parts = built(data, EncodingLimits(max_object_bytes=200 * KIB))
    assert parts == [] and "data" not in head
    manifest, inline = parse_head(head)
    assert manifest.encoding == "gzip" and manifest.inline
    assert inline == {"catalog.json.gz": base64.b64decode(head["binaryData"]["catalog.json.gz"])}


def test_split_head_lists_its_parts_and_parts_verify() -> None:
    data = os.urandom(100 * KIB)
    stored, head, parts = built(data, EncodingLimits(max_object_bytes=30 * KIB))
    assert "data" not in head and "binaryData" not in head
    manifest, inline = parse_head(head)
    assert not manifest.inline and inline == {}
    assert len(manifest.blobs) == len(parts) == 4
    assert [ref.name for ref in manifest.blobs] == [part["metadata"]["name"] for part in parts]
    for index, (ref, part) in enumerate(zip(manifest.blobs, parts, strict=True)):
        assert part["immutable"] is True
        assert part["metadata"]["labels"]["mcpregistry.dev/catalog-object"] == "part"
        assert part["metadata"]["annotations"]["mcpregistry.dev/part-index"] == str(index)
        assert part["metadata"]["ownerReferences"] == [OWNER.to_kube()]
        assert len(parse_part(part, ref, stored.content_hash)) == ref.size
    assert manifest.stored_size == sum(ref.size for ref in manifest.blobs)


def test_parse_part_detects_another_generation_and_garbage() -> None:
    stored, head, parts = built(os.urandom(70 * KIB), EncodingLimits(max_object_bytes=30 * KIB))
    refs = parse_head(head)[0].blobs
    with pytest.raises(StorageCorruptError, match="another catalogue generation"):
        parse_part(parts[0], refs[0], "sha256:" + "0" * 64)
    garbled = json.loads(json.dumps(parts[0]))
    garbled["binaryData"]["part"] = "!!not base64!!"
    with pytest.raises(StorageCorruptError, match="not valid base64"):
        parse_part(garbled, refs[0], stored.content_hash)


def test_annotations_round_trip_through_strings() -> None:
    _, head, _ = built(os.urandom(70 * KIB), EncodingLimits(max_object_bytes=30 * KIB))
    annotations = head["metadata"]["annotations"]
    assert all(isinstance(value, str) for value in annotations.values())
    meta = HeadAnnotations.model_validate(annotations)
    assert meta.to_annotations() == annotations


def test_metadata_only_objects_are_enough_to_read_the_annotations() -> None:
    _, head, _ = built(b"{}")
    partial = {"kind": "PartialObjectMetadata", "metadata": head["metadata"]}
    assert (
        parse_head_annotations(partial).content_hash
        == head["metadata"]["annotations"]["mcpregistry.dev/content-hash"]
    )


def _with(head: dict[str, Any], **changes: str | None) -> dict[str, Any]:
    copy = json.loads(json.dumps(head))
    for key, value in changes.items():
        annotation = f"mcpregistry.dev/{key.replace('_', '-')}"
        if value is None:
            copy["metadata"]["annotations"].pop(annotation)
        else:
            copy["metadata"]["annotations"][annotation] = value
    return copy


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"content_hash": "md5:abc"}, "content-hash"),
        ({"content_hash": None}, "content-hash"),
        ({"storage_format": "2"}, "storage-format"),
        ({"server_count": "-1"}, "server-count"),
        ({"server_count": "many"}, "server-count"),
        ({"encoding": "brotli"}, "encoding"),
        ({"stored_at": "2026-02-18T10:30:00"}, "stored-at"),  # no time zone
        ({"layout": "split"}, "must list its parts"),
        ({"parts": "not json"}, "not valid JSON"),
    ],
)
def test_invalid_heads_are_refused_with_the_reason(changes: dict[str, str | None], message: str) -> None:
    _, head, _ = built(b"{}")
    with pytest.raises(
        StorageCorruptError, match=f"company-registry-data is not a valid catalogue head.*{message}"
    ):
        parse_head(_with(head, **changes))


def test_a_configmap_without_annotations_is_not_a_head() -> None:
    with pytest.raises(StorageCorruptError, match="not a valid catalogue head"):
        parse_head({"metadata": {"name": "someone-elses"}, "data": {"x": "y"}})


def test_parts_sizes_must_add_up() -> None:
    _, head, _ = built(os.urandom(70 * KIB), EncodingLimits(max_object_bytes=30 * KIB))
    with pytest.raises(StorageCorruptError, match="add up"):
        parse_head(_with(head, stored_size="5"))


def test_missing_inline_payload_is_reported() -> None:
    _, head, _ = built(os.urandom(1 * KIB))  # binary: gzip inline
    del head["binaryData"]
    with pytest.raises(StorageCorruptError, match=r"binaryData.catalog.json.gz is missing"):
        parse_head(head)


def test_stored_at_is_written_in_utc() -> None:
    stored = StoredCatalog.create(
        b"{}",
        revision="r",
        server_count=0,
        stored_at=datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2))),
    )
    meta = HeadAnnotations.of(manifest_of(stored, encode(b"{}")))
    assert meta.to_annotations()["mcpregistry.dev/stored-at"] == "2026-01-01T10:00:00Z"


def test_overlong_revision_is_refused() -> None:
    with pytest.raises(StorageError, match="revision"):
        manifest_of(catalog(b"{}", revision="r" * 2000), encode(b"{}"))
