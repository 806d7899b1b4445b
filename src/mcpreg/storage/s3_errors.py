"""S3 failures, classified into what a person can act on.

`classify(exc, settings, action)` turns whatever boto3 raised into one `S3StorageError` subclass whose
`reason` is a condition reason (BucketMissing, AccessDenied, EndpointUnreachable, EncryptionRefused,
CredentialsMissing, S3Error) and whose message names the bucket, the endpoint and what to do. The
message is built here from the error code and never copies the service's own text or request
details, so credentials (and signatures) cannot leak through it.
"""

from __future__ import annotations

from typing import Any

from mcpreg.storage.errors import StorageAccessError, StorageError
from mcpreg.storage.s3_config import S3Settings


class S3StorageError(StorageError):
    """An S3 operation failed; `reason` is the CamelCase condition reason for status."""

    reason = "S3Error"
    code = ""  # the service's error code, when there was one (for callers that must tell cases apart)


class S3BucketMissingError(S3StorageError):
    reason = "BucketMissing"


class S3AccessDeniedError(S3StorageError, StorageAccessError):
    reason = "AccessDenied"


class S3CredentialsMissingError(S3StorageError, StorageAccessError):
    reason = "CredentialsMissing"


class S3EndpointUnreachableError(S3StorageError, StorageAccessError):
    reason = "EndpointUnreachable"


class S3EncryptionRefusedError(S3StorageError):
    reason = "EncryptionRefused"


class S3PreconditionFailed(S3StorageError):
    """A conditional write lost: someone else changed the object (internal; becomes a conflict)."""

    reason = "Conflict"


class S3NotFound(S3StorageError):
    """The object does not exist (internal: callers decide whether that is a problem)."""

    reason = "NotFound"


class S3NotModified(S3StorageError):
    """A conditional GET found the object unchanged (internal)."""

    reason = "NotModified"


_ACCESS_CODES = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "AllAccessDisabled",
        "AccountProblem",
        "InvalidSecurity",
        "RequestTimeTooSkewed",
        "Forbidden",
        "403",
    }
)
_BAD_KEY_CODES = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"})
_ENCRYPTION_CODES = frozenset(
    {
        "KMSNotConfigured",
        "KMS.NotFoundException",
        "KMS.DisabledException",
        "KMS.KMSInvalidStateException",
        "KMS.AccessDeniedException",
        "KMSAccessDenied",
        "InvalidEncryptionAlgorithmError",
        "InvalidEncryptionMethod",
        "ServerSideEncryptionConfigurationNotFoundError",
        "InvalidEncryptionKeyID",
        "KMSKeyNotFoundException",
    }
)
_UNAVAILABLE_CODES = frozenset(
    {
        "ServiceUnavailable",
        "SlowDown",
        "InternalError",
        "503",
        "500",
        "502",
        "504",
        "XMinioServerNotInitialized",
    }
)


def error_code(exc: BaseException) -> str:
    """The S3 error code of a botocore ClientError (or '' for anything else)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    return str((response.get("Error") or {}).get("Code") or "")


def _status(exc: BaseException) -> int:
    response: dict[str, Any] = getattr(exc, "response", None) or {}
    return int((response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)


def _service_text(exc: BaseException) -> str:
    response: dict[str, Any] = getattr(exc, "response", None) or {}
    return str((response.get("Error") or {}).get("Message") or "").lower()


def _root(exc: BaseException) -> BaseException:
    """The botocore error behind wrappers (s3transfer and boto3 sometimes re-raise)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if error_code(current) or _is_connection_error(current) or _is_credentials_error(current):
            return current
        current = current.__cause__ or current.__context__
    return exc


def _is_connection_error(exc: BaseException) -> bool:
    try:
        from botocore.exceptions import ConnectionError as BotoConnectionError
        from botocore.exceptions import HTTPClientError
    except ImportError:  # pragma: no cover - boto3 is a dependency
        return False
    return isinstance(exc, BotoConnectionError | HTTPClientError)


def _is_credentials_error(exc: BaseException) -> bool:
    from botocore.exceptions import NoCredentialsError, PartialCredentialsError

    return isinstance(exc, NoCredentialsError | PartialCredentialsError)


def classify(exc: BaseException, settings: S3Settings, action: str) -> S3StorageError:
    """One `S3StorageError` for `exc`, raised while doing `action` (e.g. "writing s3://b/k")."""
    if isinstance(exc, S3StorageError):
        return exc
    root = _root(exc)
    code = error_code(root)
    status = _status(root)
    where = settings.where
    encrypted = bool(settings.server_side_encryption)
    if _is_credentials_error(root):
        return S3CredentialsMissingError(
            f"{action}: no S3 credentials found: set spec.storage.s3.credentialsSecretRef to a Secret "
            "with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give the pods an AWS identity"
        )
    if _is_connection_error(root):
        return S3EndpointUnreachableError(
            f"{action}: the S3 endpoint of {where} is unreachable ({type(root).__name__}); check "
            "spec.storage.s3.endpoint and that the service is up"
        )
    if code == "NoSuchBucket":
        at = f" at {settings.endpoint}" if settings.endpoint else ""
        return S3BucketMissingError(
            f"{action}: bucket {settings.bucket!r} does not exist{at}; "
            "create it (the operator does not) or fix spec.storage.s3.bucket"
        )
    text = _service_text(root)
    about_encryption = code in ("NotImplemented", "InvalidArgument") or "encrypt" in text or "kms" in text
    if code in _ENCRYPTION_CODES or code.startswith("KMS") or (encrypted and about_encryption):
        return S3EncryptionRefusedError(
            f"{action}: {where} refused server-side encryption "
            f"{settings.server_side_encryption or '(bucket default)'}"
            f"{' with the given kmsKeyId' if settings.kms_key_id else ''} ({code or status}); enable it "
            "on the service (e.g. configure a KMS) or change spec.storage.s3.serverSideEncryption"
        )
    if code in _BAD_KEY_CODES:
        return S3AccessDeniedError(
            f"{action}: {where} rejected the credentials ({code}); check the access key and secret in "
            "the credentials Secret"
        )
    if code in _ACCESS_CODES or status == 403:
        return S3AccessDeniedError(
            f"{action}: access denied by {where} ({code or status}); grant the credentials "
            "s3:GetObject, s3:PutObject, s3:DeleteObject and s3:ListBucket on the bucket and prefix"
        )
    if code in ("NoSuchKey", "404", "NotFound") or status == 404:
        return S3NotFound(f"{action}: not found")
    if code in ("304", "NotModified") or status == 304:
        return S3NotModified(f"{action}: not modified")
    if code in ("PreconditionFailed", "412", "ConditionalRequestConflict") or status in (409, 412):
        return S3PreconditionFailed(f"{action}: changed by another writer")
    if code in _UNAVAILABLE_CODES or status >= 500:
        return S3EndpointUnreachableError(
            f"{action}: {where} is not available ({code or status}); retried with backoff, will retry again"
        )
    http = f" (HTTP {status})" if status else ""
    return S3StorageError(f"{action}: {where} answered {code or type(root).__name__}{http}")
