"""The manifest of a stored generation: everything about it except its bytes.

Both backends publish a generation by publishing its manifest last, in one compare-and-publish
request; only the encoding differs (the ConfigMap head's annotations, the S3 pointer object: see
`configmap_layout` and `s3_layout`). A reader holding a manifest knows which blobs to fetch, how to
check each one, how to decode their concatenation and what it must hash to.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from mcpreg.signing import GenerationSignatures
from mcpreg.storage.errors import StorageError
from mcpreg.storage.model import Encoding, StoredCatalog, generation_id

FORMAT_VERSION = 1
"""The storage format this code writes. A reader refuses a manifest of a format it does not know, and
a writer rewrites a generation stored in another format even when its hash is unchanged."""

GENERATION_FACTS = frozenset({"content_hash", "revision", "stored_at", "server_count"})
"""What a manifest says of the catalogue itself, named alike in `StoredCatalog` and every wire form."""
ENCODING_FACTS = frozenset({"encoding", "size"})
"""How it is stored, named alike in every wire form."""

HASH_PATTERN = r"^sha256:[0-9a-f]{64}$"
MAX_REVISION_LENGTH = 1024


class BlobRef(BaseModel):
    """One stored object of a generation: its backend name (ConfigMap name, S3 key, or the head's own
    data key for inline blobs), its stored size, and the sha256 of its bytes when the format records it
    (manifests written before blob hashes were recorded leave it out; the content hash still covers
    every byte)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str = Field(min_length=1, max_length=1024)
    size: int = Field(ge=0)
    sha256: str | None = Field(default=None, pattern=HASH_PATTERN)


class Manifest(BaseModel):
    """One generation: `blobs`, concatenated in order, are the catalogue's bytes encoded with
    `encoding` (`stored_size` bytes, decoding to `size` bytes that hash to `content_hash`).

    `inline`: the blobs travel inside the manifest's own object (a small catalogue in the ConfigMap
    head), so they are published and read together with it. `documents` are extra named documents of
    the generation, stored next to it and never read back by the reader (S3 keeps the rendered
    ToolHive document there, for presigned downloads)."""

    model_config = ConfigDict(frozen=True)

    format_version: int = Field(default=FORMAT_VERSION, ge=1)
    content_hash: str = Field(pattern=HASH_PATTERN)
    revision: str = Field(max_length=MAX_REVISION_LENGTH)
    stored_at: AwareDatetime
    server_count: int = Field(ge=0)
    encoding: Encoding
    size: int = Field(ge=0)
    stored_size: int = Field(ge=0)
    blobs: tuple[BlobRef, ...] = Field(min_length=1)
    inline: bool = False
    documents: Mapping[str, BlobRef] = Field(default_factory=dict)
    signatures: GenerationSignatures | None = None

    @property
    def signing_key_id(self) -> str | None:
        return self.signatures.key_id if self.signatures is not None else None

    @property
    def generation_id(self) -> str:
        """What readers tell generations apart by (`model.generation_id`)."""
        return generation_id(self.content_hash, self.signing_key_id)

    @model_validator(mode="after")
    def _blobs_add_up(self) -> Manifest:
        if sum(blob.size for blob in self.blobs) != self.stored_size:
            raise ValueError("the blobs' sizes do not add up to the stored size")
        return self

    @classmethod
    def of(
        cls,
        stored: StoredCatalog,
        *,
        encoding: Encoding,
        blobs: tuple[BlobRef, ...],
        inline: bool = False,
        documents: Mapping[str, BlobRef] | None = None,
    ) -> Manifest:
        """The manifest of `stored`, encoded with `encoding` into `blobs`."""
        if len(stored.revision) > MAX_REVISION_LENGTH:
            raise StorageError(f"the revision is longer than {MAX_REVISION_LENGTH} characters")
        return cls(
            **{name: getattr(stored, name) for name in GENERATION_FACTS},
            encoding=encoding,
            size=stored.size,
            stored_size=sum(blob.size for blob in blobs),
            blobs=blobs,
            inline=inline,
            documents=dict(documents or {}),
            signatures=stored.signatures,
        )

    @property
    def stored_objects(self) -> tuple[BlobRef, ...]:
        """The objects of this generation stored apart from the manifest: what must exist for it to
        be complete, and what pruning must keep."""
        return (*(() if self.inline else self.blobs), *self.documents.values())

    def catalog(self, data: bytes) -> StoredCatalog:
        """The `StoredCatalog` of `data`, this generation's decoded bytes (already verified)."""
        return StoredCatalog(data=data, **self.facts(GENERATION_FACTS), signatures=self.signatures)

    def facts(self, names: frozenset[str] = GENERATION_FACTS | ENCODING_FACTS) -> dict[str, Any]:
        """The fields `names` (by default those every wire form shares), as Python values."""
        return self.model_dump(include=set(names))
