"""How to reach an S3 bucket: settings, credentials, and the boto3 client built from them.

Credentials never appear in a repr, a message or a log line: `S3Credentials` hides its secret in its
repr, clients are cached under a digest of the credentials (not the credentials), and botocore's
DEBUG logging (which prints signed request headers) is held at INFO unless someone configured it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from mcpreg.storage.encoding import MIB

ServerSideEncryption = Literal["", "AES256", "aws:kms"]

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 30.0
# botocore's "standard" retry mode: exponential backoff with jitter on throttling, 5xx and connection
# errors; this many attempts in all (the first included).
DEFAULT_MAX_ATTEMPTS = 4
# Objects above the threshold go up (and come down) in parts of `multipart_chunksize`, in parallel.
DEFAULT_MULTIPART_THRESHOLD = 8 * MIB
DEFAULT_MULTIPART_CHUNKSIZE = 8 * MIB
DEFAULT_TRANSFER_CONCURRENCY = 4

for _name in ("botocore", "boto3", "s3transfer"):
    _logger = logging.getLogger(_name)
    if _logger.level == logging.NOTSET:
        # DEBUG there prints request headers, including the access key ID of every signature.
        _logger.setLevel(logging.INFO)


@dataclass(frozen=True, slots=True)
class S3Credentials:
    """Static credentials (from a Secret). The repr names the access key's last 4 characters only."""

    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"S3Credentials(access_key_id=…{self.access_key_id[-4:]})"

    def digest(self) -> str:
        """A stable fingerprint for caching; it does not reveal the credentials."""
        material = "\x00".join((self.access_key_id, self.secret_access_key, self.session_token or ""))
        return hashlib.sha256(material.encode()).hexdigest()


CredentialsProvider = Callable[[], Awaitable[S3Credentials | None]]
"""Returns the credentials to use now (None: the standard AWS chain). Called before each operation, so
a rotated Secret is picked up by the next sync; raises `StorageError` when they cannot be had."""


@dataclass(frozen=True, slots=True)
class S3Settings:
    """Bucket, addressing, encryption and transfer tuning for one registry's catalogue."""

    bucket: str
    prefix: str = ""
    endpoint: str = ""  # empty: AWS
    region: str = ""  # empty: the client's default
    force_path_style: bool = False
    server_side_encryption: ServerSideEncryption = ""
    kms_key_id: str = ""
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD
    multipart_chunksize: int = DEFAULT_MULTIPART_CHUNKSIZE
    transfer_concurrency: int = DEFAULT_TRANSFER_CONCURRENCY

    def __post_init__(self) -> None:
        if not self.bucket:
            raise ValueError("an S3 bucket name is required")
        if self.prefix.startswith("/") or self.prefix.endswith("/") or "//" in self.prefix:
            raise ValueError("the S3 prefix must not start or end with '/' or contain '//'")
        if self.kms_key_id and self.server_side_encryption != "aws:kms":
            raise ValueError("kms_key_id needs server_side_encryption aws:kms")
        if self.max_attempts < 1 or self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ValueError("S3 timeouts and attempts must be positive")
        if self.multipart_chunksize < 5 * MIB:
            raise ValueError("S3 multipart parts must be at least 5 MiB")

    @property
    def where(self) -> str:
        """`s3://bucket` plus the endpoint when not AWS: for messages."""
        return f"s3://{self.bucket}" + (f" at {self.endpoint}" if self.endpoint else "")

    def encryption_args(self) -> dict[str, str]:
        """PutObject / upload ExtraArgs for the configured server-side encryption."""
        if not self.server_side_encryption:
            return {}
        args: dict[str, str] = {"ServerSideEncryption": self.server_side_encryption}
        if self.kms_key_id:
            args["SSEKMSKeyId"] = self.kms_key_id
        return args


@dataclass(frozen=True, slots=True)
class S3Address:
    """One registry's place in a bucket, `<settings.prefix>/<namespace>/<registry>/`, and the
    credentials that reach it (None: the standard AWS chain): what the store and the readers of one
    catalogue have in common."""

    settings: S3Settings
    namespace: str
    registry: str
    credentials: CredentialsProvider | None = field(default=None, repr=False)


# --- clients --------------------------------------------------------------------------------------

_CLIENTS: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_CLIENTS_LOCK = threading.Lock()
_MAX_CLIENTS = 32


def _client_key(settings: S3Settings, credentials: S3Credentials | None) -> tuple[Any, ...]:
    return (
        settings.endpoint,
        settings.region,
        settings.force_path_style,
        settings.connect_timeout,
        settings.read_timeout,
        settings.max_attempts,
        settings.transfer_concurrency,
        credentials.digest() if credentials else None,
    )


def make_client(settings: S3Settings, credentials: S3Credentials | None) -> Any:
    """A boto3 S3 client for `settings` (blocking: call it in a worker thread). Cached: creating one
    costs tens of milliseconds, and boto3 clients are safe to share between threads."""
    key = _client_key(settings, credentials)
    with _CLIENTS_LOCK:
        cached = _CLIENTS.get(key)
        if cached is not None:
            _CLIENTS.move_to_end(key)
            return cached
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        retries={"mode": "standard", "total_max_attempts": settings.max_attempts},
        s3={"addressing_style": "path" if settings.force_path_style else "auto"},
        signature_version="s3v4",
        # Checksums only where S3 requires them: many S3-compatible services refuse the newer
        # default trailers (CRC32 on every upload).
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        max_pool_connections=max(10, settings.transfer_concurrency * 2),
    )
    session = boto3.session.Session()
    kwargs: dict[str, Any] = {"config": config}
    if settings.endpoint:
        kwargs["endpoint_url"] = settings.endpoint
    if settings.region:
        kwargs["region_name"] = settings.region
    elif settings.endpoint:
        kwargs["region_name"] = "us-east-1"  # S3-compatible services need some region to sign with
    if credentials is not None:
        kwargs["aws_access_key_id"] = credentials.access_key_id
        kwargs["aws_secret_access_key"] = credentials.secret_access_key
        if credentials.session_token:
            kwargs["aws_session_token"] = credentials.session_token
    client = session.client("s3", **kwargs)
    with _CLIENTS_LOCK:
        _CLIENTS[key] = client
        while len(_CLIENTS) > _MAX_CLIENTS:
            _CLIENTS.popitem(last=False)
    return client


def transfer_config(settings: S3Settings) -> Any:
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(
        multipart_threshold=settings.multipart_threshold,
        multipart_chunksize=settings.multipart_chunksize,
        max_concurrency=settings.transfer_concurrency,
        use_threads=True,
    )
