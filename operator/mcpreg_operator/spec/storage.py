"""``spec.storage``: where the processed catalogue is kept, ConfigMaps or an S3-compatible bucket."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, StrictBool

from mcpreg.storage.s3_config import ServerSideEncryption
from mcpreg_operator.spec.base import ResourceModel, SecretReference
from mcpreg_operator.spec.cel import CelRule, cel, cel_matches, cel_rules, cel_string, required_when

HTTP_URL_RE = r"https?://[A-Za-z0-9.:\[\]-]+(/[^\x00-\x20\x7f]*)?"
S3_BUCKET_RE = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
S3_DOT_SEGMENT_RE = r"(^|/)[.][.]?(/|$)"


#: Where the processed catalogue is stored.
StorageType = StrEnum("StorageType", {"CONFIGMAP": "configmap", "S3": "s3"})


_KMS_MESSAGE = "kmsKeyId may only be set when serverSideEncryption is aws:kms"
_S3_BUCKET_MESSAGE = (
    "bucket must be a valid S3 bucket name: 3 to 63 lowercase letters, digits, dots and hyphens, "
    "starting and ending with a letter or digit"
)
_S3_ENDPOINT_MESSAGE = "endpoint must be empty or an http:// or https:// URL with a host and optional :port"
_S3_PREFIX_SLASH_MESSAGE = "prefix must not start or end with '/' or contain '//'"
_S3_PREFIX_DOT_MESSAGE = "prefix must not contain '.' or '..' segments"


class S3Storage(ResourceModel):
    """An S3-compatible bucket (AWS S3, MinIO, ...)."""

    model_config = cel_rules(
        CelRule(
            rule=(
                "!has(self.kmsKeyId) || self.kmsKeyId == '' || "
                "(has(self.serverSideEncryption) && self.serverSideEncryption == 'aws:kms')"
            ),
            message=_KMS_MESSAGE,
            reason="FieldValueForbidden",
            field_path=".kmsKeyId",
        )
    )

    bucket: str = Field(
        min_length=3,
        max_length=63,
        description="Bucket name. The bucket must exist; the operator does not create it.",
        json_schema_extra=cel(
            CelRule(
                rule=cel_matches("self", S3_BUCKET_RE), message=_S3_BUCKET_MESSAGE, reason="FieldValueInvalid"
            )
        ),
    )
    region: str = Field(
        default="",
        max_length=64,
        pattern=r"^[a-z0-9-]*$",
        description="Region of the bucket. Empty uses the client's default (us-east-1 for most services).",
    )
    endpoint: str = Field(
        default="",
        max_length=2048,
        description=(
            "Endpoint URL of an S3-compatible service, e.g. http://minio.storage:9000. Empty uses AWS."
        ),
        json_schema_extra=cel(
            CelRule(
                rule="self == '' || " + cel_matches("self", HTTP_URL_RE),
                message=_S3_ENDPOINT_MESSAGE,
                reason="FieldValueInvalid",
            )
        ),
    )
    prefix: str = Field(
        default="",
        max_length=512,
        # S3's "safe" key characters only: keys stay portable across S3-compatible services.
        pattern=r"^[A-Za-z0-9!_.*'()/-]*$",
        description=(
            "Key prefix under which catalogues are written as <prefix>/<namespace>/<name>/... . "
            "Letters, digits and !_.*'()-/ only."
        ),
        json_schema_extra=cel(
            CelRule(
                rule="!self.startsWith('/') && !self.endsWith('/') && !self.contains('//')",
                message=_S3_PREFIX_SLASH_MESSAGE,
                reason="FieldValueInvalid",
            ),
            # MinIO refuses object names with dot segments; refuse them here rather than at sync time.
            CelRule(
                rule="!self.matches(" + cel_string(S3_DOT_SEGMENT_RE) + ")",
                message=_S3_PREFIX_DOT_MESSAGE,
                reason="FieldValueInvalid",
            ),
        ),
    )
    force_path_style: StrictBool = Field(
        default=False,
        description=(
            "Address the bucket as <endpoint>/<bucket> instead of <bucket>.<endpoint> (needed for MinIO)."
        ),
    )
    credentials_secret_ref: SecretReference | None = Field(
        default=None,
        description=(
            "Secret with keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. When absent, the operator "
            "uses its own identity only for a bucket the cluster administrator allowed (the chart's "
            "operator.s3.ambientCredentials.allowedBuckets); any other bucket is refused with reason "
            "CredentialsRequired and nothing is written. The API pods then use their standard AWS chain."
        ),
    )
    server_side_encryption: ServerSideEncryption = Field(
        default="",
        description="Server-side encryption for written objects: '' (bucket default), AES256 or aws:kms.",
    )
    kms_key_id: str = Field(
        default="",
        max_length=2048,
        description=(
            "KMS key ID or ARN; only with serverSideEncryption aws:kms. Empty uses the AWS managed key."
        ),
    )


class Storage(ResourceModel):
    """Where the processed catalogue is kept for the registry API."""

    model_config = cel_rules(
        required_when("s3", key="type", value="s3", message="storage.s3 is required when storage.type is s3")
    )

    type: StorageType = Field(
        default=StorageType.CONFIGMAP,
        description=(
            "configmap: ConfigMaps owned by the MCPRegistry (compressed and split when large); "
            "s3: an S3-compatible bucket."
        ),
    )
    s3: S3Storage | None = Field(
        default=None, description="S3 settings; required when type is s3, ignored otherwise."
    )
