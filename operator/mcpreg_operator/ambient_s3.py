"""Where the operator may use its own S3 identity (no confused deputy).

An MCPRegistry with `storage.type: s3` and no `credentialsSecretRef` would have the operator write,
prune and delete with *its* cloud identity (instance role, IRSA, environment), in a bucket, prefix and
endpoint that anyone allowed to create an MCPRegistry in any namespace chooses. That is refused unless
the cluster administrator lists the bucket in the chart (`operator.s3.ambientCredentials.allowedBuckets`,
passed to the operator as `MCPREG_S3_AMBIENT_BUCKETS`).

An entry is a bucket name (`catalogues`: that bucket on AWS, the empty endpoint) or an endpoint URL
followed by the bucket (`http://minio.storage:9000/catalogues`): the endpoint is part of the grant, so
a tenant cannot point the operator's credentials at a server of its own that happens to use an
allowed bucket name. Keys always hold `<prefix>/<namespace>/<name>/`, so registries sharing an
allowed bucket never write each other's objects.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from mcpreg.storage.errors import StorageAccessError
from mcpreg.storage.s3_errors import S3StorageError
from mcpreg_operator.spec.storage import HTTP_URL_RE, S3_BUCKET_RE

AMBIENT_BUCKETS_ENV = "MCPREG_S3_AMBIENT_BUCKETS"
CHART_VALUE = "operator.s3.ambientCredentials.allowedBuckets"


class OperatorCredentialsRefusedError(S3StorageError, StorageAccessError):
    """No credentialsSecretRef, and the operator's own identity is not allowed for this bucket."""

    reason = "CredentialsRequired"


def _endpoint_key(endpoint: str) -> str:
    """An endpoint as grants compare it: scheme and host are case-insensitive, a trailing '/' is noise."""
    endpoint = endpoint.strip().rstrip("/")
    scheme, sep, rest = endpoint.partition("://")
    if not sep:
        return endpoint
    host, slash, path = rest.partition("/")
    return f"{scheme.lower()}://{host.lower()}{slash}{path}"


@dataclass(frozen=True)
class AmbientCredentialsPolicy:
    """The (endpoint, bucket) pairs where the operator may act with its own identity."""

    allowed: frozenset[tuple[str, str]] = frozenset()

    @classmethod
    def parse(cls, text: str) -> AmbientCredentialsPolicy:
        """Entries separated by commas or whitespace. Raises ValueError naming a malformed entry."""
        allowed: set[tuple[str, str]] = set()
        for entry in (e for e in re.split(r"[\s,]+", text) if e):
            endpoint, bucket = "", entry
            if "://" in entry:
                endpoint, _, bucket = entry.rstrip("/").rpartition("/")
                if "://" not in endpoint or re.fullmatch(HTTP_URL_RE, endpoint) is None:
                    raise ValueError(
                        f"{AMBIENT_BUCKETS_ENV}: {entry!r} is neither a bucket name nor "
                        "<http(s)://host[:port]>/<bucket>"
                    )
            if re.fullmatch(S3_BUCKET_RE, bucket) is None:
                raise ValueError(f"{AMBIENT_BUCKETS_ENV}: {bucket!r} (in {entry!r}) is not an S3 bucket name")
            allowed.add((_endpoint_key(endpoint), bucket))
        return cls(frozenset(allowed))

    @classmethod
    def from_environment(cls) -> AmbientCredentialsPolicy:
        return cls.parse(os.environ.get(AMBIENT_BUCKETS_ENV, ""))

    def allows(self, bucket: str, endpoint: str) -> bool:
        return (_endpoint_key(endpoint), bucket) in self.allowed

    def refusal(self, bucket: str, endpoint: str) -> str:
        """What status says when the operator's identity is refused: the bucket, and both ways out."""
        where = f"bucket {bucket!r} at {endpoint}" if endpoint else f"bucket {bucket!r} (AWS)"
        return (
            "spec.storage.s3 has no credentialsSecretRef, and the operator's own identity may not be used "
            f"for {where}: add credentialsSecretRef naming a Secret in this namespace with keys "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the cluster administrator lists the bucket "
            f"in the chart value {CHART_VALUE}); nothing was written"
        )
