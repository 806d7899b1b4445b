"""The S3 backend, writer side: `GenerationWriter` (the write protocol) over `S3Backend`.

A generation's objects are uploaded under `<hash>/` (objects already there from an earlier write of
the same generation are reused), then the pointer is PUT conditional on its ETag; pruning keeps the
newest `keep_generations` generations, never the published one nor the one just replaced.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from mcpreg.storage.documents import extra_documents
from mcpreg.storage.s3_backend import DEFAULT_GZIP_THRESHOLD, S3_RETENTION, S3Backend
from mcpreg.storage.s3_config import S3Address
from mcpreg.storage.s3_errors import S3BucketMissingError
from mcpreg.storage.s3_io import S3Objects
from mcpreg.storage.s3_layout import DEFAULT_KEEP_GENERATIONS
from mcpreg.storage.writer import DocumentRenderer, GenerationWriter

log = logging.getLogger(__name__)


class S3CatalogStore(GenerationWriter[S3Backend]):
    """One registry's catalogue at `address` (under `<settings.prefix>/<namespace>/<registry>/` in a
    bucket). `documents` renders the extra documents stored with each generation (None: none)."""

    def __init__(
        self,
        address: S3Address,
        *,
        keep_generations: int = DEFAULT_KEEP_GENERATIONS,
        documents: DocumentRenderer | None = extra_documents,
        gzip_threshold: int = DEFAULT_GZIP_THRESHOLD,
    ) -> None:
        retention = replace(S3_RETENTION, generations=keep_generations)
        super().__init__(S3Backend(address, retention, gzip_threshold=gzip_threshold), documents=documents)
        self.settings = address.settings
        self.prefix = self.backend.prefix
        self.objects: S3Objects = self.backend.objects

    def __repr__(self) -> str:
        return f"S3CatalogStore(s3://{self.settings.bucket}/{self.prefix})"

    async def delete(self) -> None:
        """Remove everything under the registry's prefix, the pointer first. A missing bucket has
        nothing to delete."""
        try:
            await super().delete()
        except S3BucketMissingError:
            log.info("bucket %s does not exist: nothing to delete for %s", self.settings.bucket, self.prefix)
