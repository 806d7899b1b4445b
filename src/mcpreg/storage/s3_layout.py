"""The S3 layout: keys and the pointer document (the S3 encoding of a generation's `Manifest`). Pure.

    <prefix>/<namespace>/<name>/                    the registry's prefix (status.storageRef.s3.prefix)
      current.json                                  the pointer: names the published generation;
                                                    written last, in one PUT, so readers switch atomically
      <hex>/catalog.json | catalog.json.gz          a generation, keyed by its content hash (sha256 hex):
      <hex>/<document>.json                         immutable; extra documents (optional): toolhive.json,
                                                    the ToolHive rendering for presigned downloads of
                                                    /api/v1/registry

A reader reads the pointer, then the catalogue object it names, and accepts the bytes only when they
hash to the pointer's content hash. Writers upload a generation completely before they touch the
pointer, so no reader can see a partial catalogue; old generations are pruned after the pointer moved,
keeping a few so readers that read the pointer a moment ago still find their generation.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from mcpreg.signing import GenerationSignatures
from mcpreg.storage.documents import TOOLHIVE
from mcpreg.storage.errors import StorageCorruptError
from mcpreg.storage.manifest import ENCODING_FACTS, GENERATION_FACTS, HASH_PATTERN, BlobRef, Manifest
from mcpreg.storage.model import HASH_PREFIX, Encoding, is_content_hash

POINTER_NAME = "current.json"
CATALOG_NAME = {"identity": "catalog.json", "gzip": "catalog.json.gz"}
POINTER_FORMAT = "mcpregistry.dev/s3-catalog-pointer/v1"
MAX_POINTER_BYTES = 64 * 1024
DEFAULT_KEEP_GENERATIONS = 3

_HEX_RE = re.compile(r"[0-9a-f]{64}")
_DOCUMENT_NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def registry_prefix(prefix: str, namespace: str, name: str) -> str:
    """`<prefix>/<namespace>/<name>` (no trailing slash; the prefix may be empty)."""
    if not namespace or not name or "/" in namespace or "/" in name:
        raise ValueError("namespace and name must be non-empty and contain no '/'")
    return "/".join(part for part in (prefix.strip("/"), namespace, name) if part)


def hash_hex(content_hash: str) -> str:
    if not is_content_hash(content_hash):
        raise ValueError(f"not a content hash: {content_hash!r}")
    return content_hash[len(HASH_PREFIX) :]


def pointer_key(reg_prefix: str) -> str:
    return f"{reg_prefix}/{POINTER_NAME}"


def generation_prefix(reg_prefix: str, content_hash: str) -> str:
    return f"{reg_prefix}/{hash_hex(content_hash)}/"


def catalog_key(reg_prefix: str, content_hash: str, encoding: Encoding) -> str:
    return generation_prefix(reg_prefix, content_hash) + CATALOG_NAME[encoding]


def toolhive_key(reg_prefix: str, content_hash: str) -> str:
    return document_key(reg_prefix, content_hash, TOOLHIVE)


def generation_of(reg_prefix: str, key: str) -> str | None:
    """The hash hex of the generation `key` belongs to, or None for any other key."""
    head = reg_prefix + "/"
    if not key.startswith(head):
        return None
    hexpart, sep, rest = key[len(head) :].partition("/")
    return hexpart if sep and rest and _HEX_RE.fullmatch(hexpart) else None


def document_key(reg_prefix: str, content_hash: str, name: str) -> str:
    """Where a generation's extra document `name` lives (`toolhive` → `<hex>/toolhive.json`)."""
    if not _DOCUMENT_NAME_RE.fullmatch(name):
        raise ValueError(f"not a document name: {name!r}")
    return generation_prefix(reg_prefix, content_hash) + f"{name}.json"


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class _ObjectRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    key: str = Field(min_length=1)
    size: StrictInt = Field(ge=0)
    sha256: str | None = Field(default=None, pattern=HASH_PATTERN)

    @classmethod
    def of(cls, ref: BlobRef) -> _ObjectRef:
        return cls(key=ref.name, size=ref.size, sha256=ref.sha256)

    def blob(self) -> BlobRef:
        return BlobRef(name=self.key, size=self.size, sha256=self.sha256)


class PointerDocument(BaseModel):
    """The content of `current.json`: the wire form of the generation's `Manifest` on S3.

    `toolhive` is the ToolHive document (read by every version of the reader); `documents` names every
    extra document, that one included (older writers wrote only `toolhive`)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    format: Literal["mcpregistry.dev/s3-catalog-pointer/v1"]
    content_hash: str = Field(alias="contentHash", pattern=HASH_PATTERN)
    revision: str
    stored_at: datetime = Field(alias="storedAt")
    server_count: StrictInt = Field(alias="serverCount", ge=0)
    encoding: Encoding
    size: StrictInt = Field(ge=0)
    catalog: _ObjectRef
    toolhive: _ObjectRef | None = None
    documents: dict[str, _ObjectRef] | None = None
    signatures: GenerationSignatures | None = None

    @classmethod
    def of(cls, manifest: Manifest) -> PointerDocument:
        [catalog] = manifest.blobs  # S3 keeps a generation in one object (multipart when large)
        documents = {name: _ObjectRef.of(ref) for name, ref in manifest.documents.items()}
        return cls(
            **manifest.facts(),
            format=POINTER_FORMAT,
            catalog=_ObjectRef.of(catalog),
            toolhive=documents.get(TOOLHIVE),
            documents=documents or None,
            signatures=manifest.signatures,
        )

    def manifest(self) -> Manifest:
        documents = self.documents if self.documents is not None else {}
        if self.documents is None and self.toolhive is not None:
            documents = {TOOLHIVE: self.toolhive}
        facts = self.model_dump(include=set(GENERATION_FACTS | ENCODING_FACTS))
        if not self.stored_at.tzinfo:
            facts["stored_at"] = self.stored_at.replace(tzinfo=UTC)
        return Manifest(
            **facts,
            stored_size=self.catalog.size,
            blobs=(self.catalog.blob(),),
            documents={name: ref.blob() for name, ref in documents.items()},
            signatures=self.signatures,
        )


def pointer_json(manifest: Manifest) -> bytes:
    doc = PointerDocument.of(manifest).model_dump(mode="json", by_alias=True, exclude_none=True)
    doc["storedAt"] = _rfc3339(manifest.stored_at)
    return json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n"


def parse_pointer(data: bytes, reg_prefix: str, where: str) -> Manifest:
    """Read and check a pointer; it may only name objects of its own generation directory (so a
    damaged or hostile pointer cannot send readers elsewhere in the bucket)."""

    def bad(why: str) -> StorageCorruptError:
        return StorageCorruptError(f"{where}: invalid catalogue pointer: {why}")

    if len(data) > MAX_POINTER_BYTES:
        raise bad(f"{len(data)} bytes, more than a pointer can be")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad(f"not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != POINTER_FORMAT:
        raise bad(f"format is not {POINTER_FORMAT}")
    try:
        manifest = PointerDocument.model_validate(doc).manifest()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'pointer'}: {error['msg']}" for error in exc.errors()
        )
        raise bad(problems) from None
    content_hash = manifest.content_hash
    if manifest.blobs[0].name != catalog_key(reg_prefix, content_hash, manifest.encoding):
        raise bad("its catalogue key is not in its own generation")
    for name, ref in manifest.documents.items():
        try:
            expected = document_key(reg_prefix, content_hash, name)
        except ValueError:
            raise bad(f"{name!r} is not a document name") from None
        if ref.name != expected:
            raise bad(f"its {name} document key is not in its own generation")
    return manifest
