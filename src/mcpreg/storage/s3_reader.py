"""The S3 backend, reader side: `GenerationReader` (the read protocol) over `S3Backend`, following the
pointer by polling, and presigned downloads of a loaded generation's ToolHive document (for
`GET /api/v1/registry` to answer with a redirect instead of the bytes).
"""

from __future__ import annotations

import time

from mcpreg.backoff import Backoff
from mcpreg.storage.documents import TOOLHIVE
from mcpreg.storage.encoding import DEFAULT_LIMITS, EncodingLimits
from mcpreg.storage.reader import GenerationReader
from mcpreg.storage.s3_backend import DEFAULT_POLL_INTERVAL, S3Backend
from mcpreg.storage.s3_config import S3Address
from mcpreg.storage.s3_io import S3Objects

DEFAULT_PRESIGN_TTL = 300


class S3CatalogReader(GenerationReader[S3Backend]):
    """Reads what `S3CatalogStore` publishes at `address`."""

    def __init__(
        self,
        address: S3Address,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        presign_ttl: int = DEFAULT_PRESIGN_TTL,
        backoff: Backoff | None = None,
        limits: EncodingLimits = DEFAULT_LIMITS,
    ) -> None:
        if poll_interval <= 0 or presign_ttl < 1:
            raise ValueError("poll_interval and presign_ttl must be positive")
        backend = S3Backend(address, poll_interval=poll_interval)
        backoff = backoff or Backoff(initial=min(1.0, poll_interval), maximum=max(30.0, poll_interval))
        super().__init__(backend, limits=limits, backoff=backoff)
        self.settings = address.settings
        self.prefix = backend.prefix
        self.poll_interval = poll_interval
        self.presign_ttl = presign_ttl
        self.objects: S3Objects = backend.objects
        self._signed: dict[str, tuple[str, float]] = {}  # key -> (url, monotonic expiry)

    def __repr__(self) -> str:
        return f"S3CatalogReader(s3://{self.settings.bucket}/{self.prefix})"

    async def presigned_toolhive_url(self, content_hash: str) -> str | None:
        """A presigned GET URL of generation `content_hash`'s ToolHive document, valid for about
        `presign_ttl` seconds; None when this reader did not load that generation or it has none."""
        manifest = self.loaded_manifest(content_hash)
        document = manifest.documents.get(TOOLHIVE) if manifest is not None else None
        if document is None:
            return None
        now = time.monotonic()
        cached = self._signed.get(document.name)
        # Reuse a URL while at least half its lifetime remains: signing is cheap but not free.
        if cached is not None and cached[1] - now > self.presign_ttl / 2:
            return cached[0]
        url = await self.objects.presign_get(document.name, self.presign_ttl)
        self._signed = {k: v for k, v in self._signed.items() if v[1] > now}
        self._signed[document.name] = (url, now + self.presign_ttl)
        return url
