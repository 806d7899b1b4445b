"""The ConfigMap layout: object names, labels, annotations, and how heads and parts are built and read.

Pure functions over plain JSON dicts (the shapes the API server accepts and returns), no I/O. The
head's annotations are the ConfigMap encoding of the generation's `Manifest`.

    <registry>-data                  head: what readers get and watch; updated last, in one request
      labels       app.kubernetes.io/{name,instance,component,part-of,managed-by} (mcpreg.labels),
                   mcpregistry.dev/catalog-object=head
      annotations  mcpregistry.dev/{storage-format,content-hash,revision,stored-at,server-count,
                   encoding,size,stored-size,layout[,parts]}
      data         catalog.json          layout inline, encoding identity (UTF-8 text)
      binaryData   catalog.json.gz       layout inline, encoding gzip
                   (nothing)             layout split: the `parts` annotation lists the parts in order
    <registry>-data-<hash12>-<i>     part i of a split generation: immutable, binaryData.part, named
                                     from the content hash so each generation has its own parts

Everything is owned by the MCPRegistry (garbage-collected with it) and labelled with its name.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from mcpreg import labels
from mcpreg.labels import DOMAIN
from mcpreg.signing import GenerationSignatures
from mcpreg.storage.encoding import is_utf8
from mcpreg.storage.errors import StorageCorruptError, StorageError
from mcpreg.storage.manifest import (
    ENCODING_FACTS,
    GENERATION_FACTS,
    HASH_PATTERN,
    MAX_REVISION_LENGTH,
    BlobRef,
    Manifest,
)
from mcpreg.storage.model import Encoding, sha256_hash

JsonObject = dict[str, Any]

STORAGE_FORMAT = "1"

LABEL_OBJECT = f"{DOMAIN}/catalog-object"

ANNOTATION_FORMAT = f"{DOMAIN}/storage-format"
ANNOTATION_HASH = f"{DOMAIN}/content-hash"
ANNOTATION_REVISION = f"{DOMAIN}/revision"
ANNOTATION_STORED_AT = f"{DOMAIN}/stored-at"
ANNOTATION_SERVER_COUNT = f"{DOMAIN}/server-count"
ANNOTATION_ENCODING = f"{DOMAIN}/encoding"
ANNOTATION_SIZE = f"{DOMAIN}/size"
ANNOTATION_STORED_SIZE = f"{DOMAIN}/stored-size"
ANNOTATION_LAYOUT = f"{DOMAIN}/layout"
ANNOTATION_PARTS = f"{DOMAIN}/parts"
ANNOTATION_PART_INDEX = f"{DOMAIN}/part-index"
ANNOTATION_PART_HASH = f"{DOMAIN}/part-hash"
ANNOTATION_SIGNATURES = f"{DOMAIN}/signatures"

KEY_TEXT = "catalog.json"
KEY_GZIP = "catalog.json.gz"
KEY_PART = "part"

# A label value: at most 63 characters; the registry name is one, and a DNS name prefix too.
_REGISTRY_NAME_RE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
PART_HASH_LENGTH = 12

Layout = Literal["inline", "split"]


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class OwnerReference(BaseModel):
    """The owner every storage object carries, so garbage collection removes them with it."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)

    api_version: str = Field(alias="apiVersion", min_length=1)
    kind: str = Field(min_length=1)
    name: str = Field(min_length=1)
    uid: str = Field(min_length=1)
    controller: bool = True
    block_owner_deletion: bool = Field(default=True, alias="blockOwnerDeletion")

    @classmethod
    def for_registry(cls, name: str, uid: str) -> OwnerReference:
        """The controller reference to an MCPRegistry."""
        return cls(api_version="mcpregistry.dev/v1alpha1", kind="MCPRegistry", name=name, uid=uid)

    def to_kube(self) -> JsonObject:
        return self.model_dump(mode="json")


class HeadAnnotations(BaseModel):
    """The head's annotations: the wire form of the generation's `Manifest` on ConfigMaps.

    A watcher holding only metadata can tell from these whether a new generation was published and,
    for a split one, which parts to fetch.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    storage_format: Literal["1"] = Field(alias=ANNOTATION_FORMAT)
    content_hash: str = Field(alias=ANNOTATION_HASH, pattern=HASH_PATTERN)
    revision: str = Field(alias=ANNOTATION_REVISION, max_length=MAX_REVISION_LENGTH)
    stored_at: AwareDatetime = Field(alias=ANNOTATION_STORED_AT)
    server_count: int = Field(alias=ANNOTATION_SERVER_COUNT, ge=0)
    encoding: Encoding = Field(alias=ANNOTATION_ENCODING)
    size: int = Field(alias=ANNOTATION_SIZE, ge=0)
    stored_size: int = Field(alias=ANNOTATION_STORED_SIZE, ge=0)
    layout: Layout = Field(alias=ANNOTATION_LAYOUT)
    parts: tuple[BlobRef, ...] = Field(default=(), alias=ANNOTATION_PARTS)
    signatures: GenerationSignatures | None = Field(default=None, alias=ANNOTATION_SIGNATURES)

    @model_validator(mode="before")
    @classmethod
    def _parts_from_json(cls, value: Any) -> Any:
        # Annotation values are strings; the parts list and the signatures are JSON inside one each.
        if isinstance(value, Mapping):
            for key in (ANNOTATION_PARTS, ANNOTATION_SIGNATURES):
                if isinstance(value.get(key), str):
                    value = dict(value)
                    try:
                        value[key] = json.loads(value[key])
                    except ValueError as exc:
                        raise ValueError(f"{key} is not valid JSON") from exc
        return value

    @model_validator(mode="after")
    def _parts_match_layout(self) -> HeadAnnotations:
        if self.layout == "split" and not self.parts:
            raise ValueError("a split layout must list its parts")
        if self.layout == "inline" and self.parts:
            raise ValueError("an inline layout has no parts")
        if any(part.sha256 is None for part in self.parts):
            raise ValueError("every part must have its sha256")
        if self.parts and sum(part.size for part in self.parts) != self.stored_size:
            raise ValueError("the parts' sizes do not add up to the stored size")
        return self

    @property
    def part_names(self) -> tuple[str, ...]:
        return tuple(part.name for part in self.parts)

    @classmethod
    def of(cls, manifest: Manifest) -> HeadAnnotations:
        if manifest.documents:
            raise StorageError("ConfigMap storage keeps no extra documents")
        return cls(
            **manifest.facts(),
            storage_format=str(manifest.format_version),
            stored_size=manifest.stored_size,
            layout="inline" if manifest.inline else "split",
            parts=() if manifest.inline else manifest.blobs,
            signatures=manifest.signatures,
        )

    def manifest(self) -> Manifest:
        inline = self.layout == "inline"
        blobs = (BlobRef(name=inline_key(self.encoding), size=self.stored_size),) if inline else self.parts
        return Manifest(
            **self.model_dump(include=set(GENERATION_FACTS | ENCODING_FACTS)),
            format_version=int(self.storage_format),
            stored_size=self.stored_size,
            blobs=blobs,
            inline=inline,
            signatures=self.signatures,
        )

    def to_annotations(self) -> dict[str, str]:
        annotations = {
            ANNOTATION_FORMAT: self.storage_format,
            ANNOTATION_HASH: self.content_hash,
            ANNOTATION_REVISION: self.revision,
            ANNOTATION_STORED_AT: _rfc3339(self.stored_at),
            ANNOTATION_SERVER_COUNT: str(self.server_count),
            ANNOTATION_ENCODING: self.encoding,
            ANNOTATION_SIZE: str(self.size),
            ANNOTATION_STORED_SIZE: str(self.stored_size),
            ANNOTATION_LAYOUT: self.layout,
        }
        if self.parts:
            annotations[ANNOTATION_PARTS] = json.dumps(
                [part.model_dump(mode="json") for part in self.parts], separators=(",", ":")
            )
        if self.signatures is not None:
            annotations[ANNOTATION_SIGNATURES] = self.signatures.model_dump_json()
        return annotations


def inline_key(encoding: Encoding) -> str:
    """The head's data key holding an inline generation."""
    return KEY_GZIP if encoding == "gzip" else KEY_TEXT


@dataclass(frozen=True, slots=True)
class ConfigMapNames:
    """Names and selectors of one registry's storage objects."""

    registry: str

    def __post_init__(self) -> None:
        if not _REGISTRY_NAME_RE.fullmatch(self.registry):
            raise ValueError(
                f"registry name {self.registry!r} must be a DNS label: at most 63 lowercase letters, "
                "digits and '-', starting and ending with a letter or digit"
            )

    @property
    def head(self) -> str:
        return f"{self.registry}-data"

    def part(self, content_hash: str, index: int) -> str:
        digest = content_hash.removeprefix("sha256:")[:PART_HASH_LENGTH]
        return f"{self.registry}-data-{digest}-{index}"

    def labels(self, kind: Literal["head", "part"]) -> dict[str, str]:
        return {
            **labels.object_labels(self.registry, app=labels.CATALOG_APP, component=labels.CATALOG_COMPONENT),
            LABEL_OBJECT: kind,
        }

    def selector(self, kind: Literal["head", "part"] | None = None) -> str:
        # Only the labels that name the objects (never part-of, added later): older objects match too.
        wanted = {
            labels.INSTANCE: self.registry,
            labels.COMPONENT: labels.CATALOG_COMPONENT,
            labels.MANAGED_BY: labels.OPERATOR,
        }
        if kind is not None:
            wanted[LABEL_OBJECT] = kind
        return ",".join(f"{key}={value}" for key, value in wanted.items())


def _metadata(
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    owner: OwnerReference | None,
) -> JsonObject:
    metadata: JsonObject = {
        "name": name,
        "namespace": namespace,
        "labels": dict(labels),
        "annotations": dict(annotations),
    }
    if owner is not None:
        metadata["ownerReferences"] = [owner.to_kube()]
    return metadata


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def head_body(
    names: ConfigMapNames,
    namespace: str,
    manifest: Manifest,
    inline: Mapping[str, bytes],
    owner: OwnerReference | None,
    resource_version: str | None = None,
) -> JsonObject:
    """The head ConfigMap; with `resource_version`, a replacement that fails if the head moved on."""
    annotations = HeadAnnotations.of(manifest).to_annotations()
    metadata = _metadata(names.head, namespace, names.labels("head"), annotations, owner)
    if resource_version is not None:
        metadata["resourceVersion"] = resource_version
    body: JsonObject = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}
    for key, payload in inline.items():
        if key == KEY_TEXT and is_utf8(payload):
            body["data"] = {KEY_TEXT: payload.decode("utf-8")}
        else:
            body["binaryData"] = {key: _b64(payload)}
    return body


def part_refs(names: ConfigMapNames, content_hash: str, chunks: Sequence[bytes]) -> tuple[BlobRef, ...]:
    return tuple(
        BlobRef(name=names.part(content_hash, index), size=len(chunk), sha256=sha256_hash(chunk))
        for index, chunk in enumerate(chunks)
    )


def part_body(
    names: ConfigMapNames,
    namespace: str,
    content_hash: str,
    index: int,
    ref: BlobRef,
    chunk: bytes,
    owner: OwnerReference | None,
) -> JsonObject:
    """Part `index` of a split generation. Immutable: once written its bytes can only be deleted."""
    annotations = {
        ANNOTATION_FORMAT: STORAGE_FORMAT,
        ANNOTATION_HASH: content_hash,
        ANNOTATION_PART_INDEX: str(index),
        ANNOTATION_PART_HASH: str(ref.sha256),
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(ref.name, namespace, names.labels("part"), annotations, owner),
        "immutable": True,
        "binaryData": {KEY_PART: _b64(chunk)},
    }


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = obj.get("metadata") or {}
    return metadata.get("annotations") or {}


def parse_head_annotations(obj: Mapping[str, Any]) -> HeadAnnotations:
    """The head's annotations (works on metadata-only objects); StorageCorruptError if not a head."""
    name = (obj.get("metadata") or {}).get("name", "?")
    try:
        return HeadAnnotations.model_validate(_annotations(obj))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'annotations'}: {error['msg']}"
            for error in exc.errors()
        )
        raise StorageCorruptError(f"ConfigMap {name} is not a valid catalogue head: {problems}") from exc


def _b64decode(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise StorageCorruptError(f"{what} is missing")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise StorageCorruptError(f"{what} is not valid base64") from exc


def parse_head(obj: Mapping[str, Any]) -> tuple[Manifest, dict[str, bytes]]:
    """A full head object → its manifest and, for inline layouts, the payload under its data key."""
    name = str((obj.get("metadata") or {}).get("name", "?"))
    manifest = parse_head_annotations(obj).manifest()
    if not manifest.inline:
        return manifest, {}
    key = inline_key(manifest.encoding)
    text = (obj.get("data") or {}).get(KEY_TEXT)
    if manifest.encoding == "identity" and isinstance(text, str):
        return manifest, {key: text.encode("utf-8")}
    payload = _b64decode((obj.get("binaryData") or {}).get(key), f"ConfigMap {name} binaryData.{key}")
    return manifest, {key: payload}


def parse_part(obj: Mapping[str, Any], ref: BlobRef, content_hash: str) -> bytes:
    """The bytes of a part (checked against the head's entry for it by the reader)."""
    if _annotations(obj).get(ANNOTATION_HASH) != content_hash:
        raise StorageCorruptError(f"ConfigMap {ref.name} belongs to another catalogue generation")
    return _b64decode(
        (obj.get("binaryData") or {}).get(KEY_PART), f"ConfigMap {ref.name} binaryData.{KEY_PART}"
    )


def creation_time(obj: Mapping[str, Any]) -> datetime | None:
    value = (obj.get("metadata") or {}).get("creationTimestamp")
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
