"""Async access to one bucket: every boto3 call runs in a worker thread (never on the event loop), and
every failure comes out classified (`s3_errors`) with a message naming the bucket and the key."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from mcpreg.storage.errors import StorageCorruptError, StorageError
from mcpreg.storage.s3_config import (
    CredentialsProvider,
    S3Credentials,
    S3Settings,
    make_client,
    transfer_config,
)
from mcpreg.storage.s3_errors import S3NotFound, S3StorageError, classify, error_code

T = TypeVar("T")

DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys


@dataclass(frozen=True, slots=True)
class ListedObject:
    key: str
    last_modified: datetime


@dataclass(frozen=True, slots=True)
class Fetched:
    data: bytes
    etag: str


class S3Objects:
    """One bucket, as the credentials from `credentials` (None: the standard AWS chain) see it."""

    # Credentials are resolved once per this many seconds, not per request: a write makes several
    # requests (some in parallel), and the operator's provider reads a Secret from the API server.
    CREDENTIALS_TTL = 30.0

    def __init__(self, settings: S3Settings, credentials: CredentialsProvider | None = None) -> None:
        self.settings = settings
        self._credentials = credentials
        self._resolved: tuple[float, S3Credentials | None] | None = None
        self._resolving: asyncio.Lock | None = None

    def __repr__(self) -> str:
        return f"S3Objects({self.settings.where})"

    def url(self, key: str) -> str:
        return f"s3://{self.settings.bucket}/{key}"

    async def _current_credentials(self) -> S3Credentials | None:
        if self._credentials is None:
            return None
        if self._resolving is None:
            self._resolving = asyncio.Lock()
        async with self._resolving:
            now = time.monotonic()
            if self._resolved is None or now - self._resolved[0] > self.CREDENTIALS_TTL:
                self._resolved = (now, await self._credentials())
            return self._resolved[1]

    async def client(self) -> Any:
        credentials = await self._current_credentials()
        try:
            return await asyncio.to_thread(make_client, self.settings, credentials)
        except Exception as exc:  # e.g. a malformed endpoint URL
            raise classify(exc, self.settings, f"connecting to {self.settings.where}") from None

    async def _run(self, action: str, work: Callable[[Any], T]) -> T:
        client = await self.client()
        try:
            return await asyncio.to_thread(work, client)
        except StorageError:
            raise
        except Exception as exc:
            error = classify(exc, self.settings, action)
            error.code = error_code(exc) or getattr(exc, "code", "")
            raise error from None

    # --- reading --------------------------------------------------------------------------------

    async def get(
        self, key: str, *, if_none_match: str | None = None, max_bytes: int | None = None
    ) -> Fetched:
        """The whole object (raises S3NotFound, S3NotModified, or another S3StorageError)."""

        def work(client: Any) -> Fetched:
            kwargs: dict[str, Any] = {"Bucket": self.settings.bucket, "Key": key}
            if if_none_match:
                kwargs["IfNoneMatch"] = if_none_match
            response = client.get_object(**kwargs)
            body = response["Body"]
            try:
                length = int(response.get("ContentLength") or 0)
                if max_bytes is not None and length > max_bytes:
                    raise StorageCorruptError(
                        f"{self.url(key)} is {length} bytes, over the {max_bytes} limit"
                    )
                data = body.read() if max_bytes is None else body.read(max_bytes + 1)
                if max_bytes is not None and len(data) > max_bytes:
                    raise StorageCorruptError(f"{self.url(key)} is over the {max_bytes}-byte limit")
            finally:
                body.close()
            return Fetched(data=data, etag=str(response.get("ETag") or ""))

        return await self._run(f"reading {self.url(key)}", work)

    async def download(self, key: str, expected_size: int) -> bytes:
        """A possibly large object, in parallel ranged parts above the multipart threshold."""
        config = transfer_config(self.settings)

        def work(client: Any) -> bytes:
            buffer = io.BytesIO()
            client.download_fileobj(self.settings.bucket, key, buffer, Config=config)
            return buffer.getvalue()

        if expected_size < self.settings.multipart_threshold:
            return (await self.get(key, max_bytes=expected_size)).data
        return await self._run(f"reading {self.url(key)}", work)

    async def head(self, key: str) -> Mapping[str, Any] | None:
        """The object's metadata, or None when it does not exist."""
        try:
            return await self._run(
                f"checking {self.url(key)}",
                lambda client: dict(client.head_object(Bucket=self.settings.bucket, Key=key)),
            )
        except S3NotFound:
            return None

    async def list_keys(self, prefix: str) -> list[ListedObject]:
        """Every key under `prefix` (paginated)."""

        def work(client: Any) -> list[ListedObject]:
            found: list[ListedObject] = []
            paginator = client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.settings.bucket, Prefix=prefix):
                for item in page.get("Contents") or []:
                    found.append(ListedObject(key=str(item["Key"]), last_modified=item["LastModified"]))
            return found

        return await self._run(f"listing {self.url(prefix)}", work)

    async def presign_get(self, key: str, ttl: int) -> str:
        return await self._run(
            f"signing a download of {self.url(key)}",
            lambda client: str(
                client.generate_presigned_url(
                    "get_object", Params={"Bucket": self.settings.bucket, "Key": key}, ExpiresIn=ttl
                )
            ),
        )

    # --- writing --------------------------------------------------------------------------------

    def _put_args(self, content_type: str, metadata: Mapping[str, str]) -> dict[str, Any]:
        return {"ContentType": content_type, "Metadata": dict(metadata), **self.settings.encryption_args()}

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
        if_match: str | None = None,
        if_none_match: str | None = None,
    ) -> str:
        """One PUT (small objects, the pointer); conditional when asked. Returns the new ETag."""
        args = self._put_args(content_type, metadata or {})
        if if_match:
            args["IfMatch"] = if_match
        if if_none_match:
            args["IfNoneMatch"] = if_none_match

        def work(client: Any) -> str:
            response = client.put_object(Bucket=self.settings.bucket, Key=key, Body=data, **args)
            return str(response.get("ETag") or "")

        return await self._run(f"writing {self.url(key)}", work)

    async def upload(
        self, key: str, data: bytes, *, content_type: str, metadata: Mapping[str, str] | None = None
    ) -> None:
        """A possibly large object: multipart (parallel parts) above the threshold."""
        config = transfer_config(self.settings)
        extra = self._put_args(content_type, metadata or {})

        def work(client: Any) -> None:
            client.upload_fileobj(io.BytesIO(data), self.settings.bucket, key, ExtraArgs=extra, Config=config)

        await self._run(f"writing {self.url(key)}", work)

    async def delete(self, keys: Sequence[str]) -> list[str]:
        """Delete `keys` (absent ones are fine); returns the keys deleted. Raises on the first batch
        the service refuses, naming the first key it would not delete."""
        deleted: list[str] = []
        for start in range(0, len(keys), DELETE_BATCH):
            batch = list(keys[start : start + DELETE_BATCH])

            def work(client: Any, batch: list[str] = batch) -> dict[str, Any]:
                return dict(
                    client.delete_objects(
                        Bucket=self.settings.bucket,
                        Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                    )
                )

            response = await self._run(f"deleting under {self.url(batch[0])}", work)
            errors = response.get("Errors") or []
            if errors:
                first = errors[0]
                fake = _FakeClientError(str(first.get("Code") or ""), 0)
                error = classify(fake, self.settings, f"deleting {self.url(str(first.get('Key')))}")
                error.code = fake.code
                raise error
            failed = {str(e.get("Key")) for e in errors}
            deleted.extend(k for k in batch if k not in failed)
        return deleted


class _FakeClientError(Exception):
    """Carries a per-key DeleteObjects error code through `classify`."""

    def __init__(self, code: str, status: int) -> None:
        super().__init__(code)
        self.code = code
        self.response = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}


__all__ = ["Fetched", "S3Objects", "S3StorageError"]
