"""S3 layout, pointer, pruning choice, settings and error classification: pure logic, no server."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
)

from mcpreg.storage import StorageAccessError, StorageCorruptError, sha256_hash
from mcpreg.storage.manifest import BlobRef, Manifest
from mcpreg.storage.model import S3Location, StorageLocation
from mcpreg.storage.s3_config import S3Credentials, S3Settings
from mcpreg.storage.s3_errors import (
    S3AccessDeniedError,
    S3BucketMissingError,
    S3CredentialsMissingError,
    S3EncryptionRefusedError,
    S3EndpointUnreachableError,
    S3NotFound,
    S3NotModified,
    S3PreconditionFailed,
    S3StorageError,
    classify,
)
from mcpreg.storage.s3_layout import (
    catalog_key,
    generation_of,
    parse_pointer,
    pointer_json,
    pointer_key,
    registry_prefix,
    toolhive_key,
)

H1, H2, H3, H4 = (sha256_hash(str(i).encode()) for i in range(4))
PREFIX = "cat/ns/reg"
SETTINGS = S3Settings(bucket="mcp-registries", endpoint="http://127.0.0.1:9000")
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ACCESS = "AKIAIOSFODNN7EXAMPLE"


def hexof(h: str) -> str:
    return h.removeprefix("sha256:")


def test_keys() -> None:
    assert registry_prefix("", "ns", "reg") == "ns/reg"
    assert registry_prefix("a/b", "ns", "reg") == "a/b/ns/reg"
    assert pointer_key(PREFIX) == "cat/ns/reg/current.json"
    assert catalog_key(PREFIX, H1, "gzip") == f"cat/ns/reg/{hexof(H1)}/catalog.json.gz"
    assert catalog_key(PREFIX, H1, "identity") == f"cat/ns/reg/{hexof(H1)}/catalog.json"
    assert toolhive_key(PREFIX, H1) == f"cat/ns/reg/{hexof(H1)}/toolhive.json"
    with pytest.raises(ValueError):
        registry_prefix("", "ns", "a/b")


def test_generation_of_only_matches_own_generations() -> None:
    assert generation_of(PREFIX, catalog_key(PREFIX, H1, "gzip")) == hexof(H1)
    assert generation_of(PREFIX, pointer_key(PREFIX)) is None
    # A sibling registry whose name starts with ours is not ours.
    assert generation_of(PREFIX, f"cat/ns/reg-2/{hexof(H1)}/catalog.json") is None
    assert generation_of(PREFIX, f"cat/ns/reg/{hexof(H1)}") is None
    assert generation_of(PREFIX, "cat/ns/reg/notes/readme.txt") is None


def pointer(h: str = H1, *, toolhive: bool = True) -> Manifest:
    documents = {"toolhive": BlobRef(name=toolhive_key(PREFIX, h), size=900, sha256=H3)} if toolhive else {}
    return Manifest(
        content_hash=h,
        revision="abc123",
        stored_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        server_count=7,
        encoding="gzip",
        size=1000,
        stored_size=300,
        blobs=(BlobRef(name=catalog_key(PREFIX, h, "gzip"), size=300, sha256=H2),),
        documents=documents,
    )


@pytest.mark.parametrize("toolhive", [True, False])
def test_pointer_round_trip(toolhive: bool) -> None:
    p = pointer(toolhive=toolhive)
    assert parse_pointer(pointer_json(p), PREFIX, "here") == p


def test_pointer_refuses_keys_outside_its_generation() -> None:
    doc = json.loads(pointer_json(pointer()))
    doc["catalog"]["key"] = "other/registry/secret.json"
    with pytest.raises(StorageCorruptError, match="own generation"):
        parse_pointer(json.dumps(doc).encode(), PREFIX, "here")
    doc = json.loads(pointer_json(pointer()))
    doc["catalog"]["key"] = catalog_key(PREFIX, H2, "gzip")  # another generation's object
    with pytest.raises(StorageCorruptError):
        parse_pointer(json.dumps(doc).encode(), PREFIX, "here")
    doc = json.loads(pointer_json(pointer()))
    doc["documents"]["toolhive"]["key"] = "other/registry/secret.json"
    with pytest.raises(StorageCorruptError, match="toolhive document key is not in its own generation"):
        parse_pointer(json.dumps(doc).encode(), PREFIX, "here")


@pytest.mark.parametrize(
    "data",
    [b"", b"not json", b"[]", b'{"format": "other"}', b"{" + b" " * 70000 + b"}"],
)
def test_pointer_refuses_garbage(data: bytes) -> None:
    with pytest.raises(StorageCorruptError, match="invalid catalogue pointer"):
        parse_pointer(data, PREFIX, "here")


@pytest.mark.parametrize(
    "field,value",
    [("serverCount", -1), ("size", "12"), ("encoding", "brotli"), ("contentHash", "md5:x")],
)
def test_pointer_refuses_bad_fields(field: str, value: object) -> None:
    doc = json.loads(pointer_json(pointer()))
    doc[field] = value
    with pytest.raises(StorageCorruptError, match="invalid catalogue pointer"):
        parse_pointer(json.dumps(doc).encode(), PREFIX, "here")


def test_location_status_names_endpoint() -> None:
    loc = StorageLocation(
        type="s3", s3=S3Location(bucket="b", prefix=PREFIX, key=pointer_key(PREFIX), endpoint="http://x:9000")
    )
    assert loc.to_status() == {
        "type": "s3",
        "s3": {"bucket": "b", "prefix": PREFIX, "key": pointer_key(PREFIX), "endpoint": "http://x:9000"},
    }


def test_settings_validation_and_encryption_args() -> None:
    assert SETTINGS.encryption_args() == {}
    kms = S3Settings(bucket="b", server_side_encryption="aws:kms", kms_key_id="k1")
    assert kms.encryption_args() == {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "k1"}
    with pytest.raises(ValueError):
        S3Settings(bucket="b", server_side_encryption="AES256", kms_key_id="k1")
    with pytest.raises(ValueError):
        S3Settings(bucket="b", prefix="/x")
    with pytest.raises(ValueError):
        S3Settings(bucket="b", multipart_chunksize=1024)


def test_credentials_never_in_repr() -> None:
    creds = S3Credentials(ACCESS, SECRET, "session-token-value")
    text = repr(creds) + str(creds)
    assert SECRET not in text and ACCESS not in text and "session-token-value" not in text
    assert creds.digest() == S3Credentials(ACCESS, SECRET, "session-token-value").digest()
    assert SECRET not in creds.digest()


def client_error(code: str, status: int, message: str = "") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutObject",
    )


@pytest.mark.parametrize(
    "exc,kind,reason",
    [
        (client_error("NoSuchBucket", 404), S3BucketMissingError, "BucketMissing"),
        (client_error("AccessDenied", 403), S3AccessDeniedError, "AccessDenied"),
        (client_error("InvalidAccessKeyId", 403), S3AccessDeniedError, "AccessDenied"),
        (client_error("SignatureDoesNotMatch", 403), S3AccessDeniedError, "AccessDenied"),
        (client_error("KMS.NotFoundException", 400), S3EncryptionRefusedError, "EncryptionRefused"),
        (client_error("NoSuchKey", 404), S3NotFound, "NotFound"),
        (client_error("404", 404), S3NotFound, "NotFound"),
        (client_error("304", 304), S3NotModified, "NotModified"),
        (client_error("PreconditionFailed", 412), S3PreconditionFailed, "Conflict"),
        (client_error("ServiceUnavailable", 503), S3EndpointUnreachableError, "EndpointUnreachable"),
        (client_error("WeirdThing", 400), S3StorageError, "S3Error"),
        (
            EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
            S3EndpointUnreachableError,
            "EndpointUnreachable",
        ),
        (
            ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"),
            S3EndpointUnreachableError,
            "EndpointUnreachable",
        ),
        (NoCredentialsError(), S3CredentialsMissingError, "CredentialsMissing"),
    ],
)
def test_classify(exc: Exception, kind: type[S3StorageError], reason: str) -> None:
    error = classify(exc, SETTINGS, "writing s3://mcp-registries/k")
    assert type(error) is kind
    assert error.reason == reason
    assert str(error).startswith("writing s3://mcp-registries/k")


def test_classify_encryption_only_when_encrypting() -> None:
    refused = client_error(
        "NotImplemented", 501, "Server side encryption specified but KMS is not configured"
    )
    encrypting = S3Settings(bucket="b", server_side_encryption="AES256")
    assert isinstance(classify(refused, encrypting, "x"), S3EncryptionRefusedError)
    assert not isinstance(
        classify(client_error("NotImplemented", 501), SETTINGS, "x"), S3EncryptionRefusedError
    )


def test_access_errors_are_storage_access_errors_and_never_echo_the_service() -> None:
    leaky = client_error("SignatureDoesNotMatch", 403, f"StringToSign ... {ACCESS} {SECRET}")
    error = classify(leaky, SETTINGS, "writing")
    assert isinstance(error, StorageAccessError)
    assert SECRET not in str(error) and ACCESS not in str(error)
    assert "credentials Secret" in str(error)


def test_classify_finds_the_cause_behind_wrappers() -> None:
    try:
        try:
            raise client_error("NoSuchBucket", 404)
        except ClientError as inner:
            raise RuntimeError("upload failed") from inner
    except RuntimeError as outer:
        assert isinstance(classify(outer, SETTINGS, "x"), S3BucketMissingError)
