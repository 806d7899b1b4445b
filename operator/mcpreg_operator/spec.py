"""Pydantic models of the ``MCPRegistry`` custom resource: ``spec`` and ``status``.

These models are the single source of truth for the resource's shape. ``mcpreg_dev.crd`` turns
their JSON schema into the CRD's structural OpenAPI schema, so descriptions, enums, patterns, bounds
and defaults written here are what ``kubectl explain`` shows and what the API server enforces.

Validation happens twice, on purpose:

* at admission, by the CRD schema and the CEL rules (``x-kubernetes-validations``) attached to the
  models below with :func:`cel`;
* in the operator, by the pydantic validators that mirror every CEL rule, so a spec that reached the
  operator without the CRD's checks (an older CRD, a CRD installed by hand, a test that bypasses the
  API server) is refused with the same meaning.

The unit tests evaluate every CEL rule (with cel-python) next to the pydantic validators on the same
good and bad objects, so the two copies cannot drift apart silently.

Conventions: Python attributes are snake_case, the wire format is camelCase (aliases). Dump with
``model_dump(mode="json", exclude_none=True)``: ``None`` means "absent" and is never written as
``null`` (the CRD schema has no nullable fields; in a JSON merge patch ``null`` deletes a field).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from fractions import Fraction
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictStr,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

# --- identity of the resource -------------------------------------------------------------------

GROUP = "mcpregistry.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "MCPRegistry"
PLURAL = "mcpregistries"
SINGULAR = "mcpregistry"
SHORT_NAMES = ("mcpreg",)
CATEGORIES = ("mcp",)
CRD_NAME = f"{PLURAL}.{GROUP}"

#: Annotation a user sets (to any new value) to ask for one sync; acknowledged in
#: ``status.lastManualSyncTrigger``.
SYNC_TRIGGER_ANNOTATION = f"{GROUP}/sync-trigger"

# --- limits shared by the CRD and the validators -------------------------------------------------

#: Shortest accepted ``syncPolicy.interval``. A change check is cheap (``git ls-remote``), but below
#: this many registries polling at once turn the operator into a load generator for the git server.
MIN_SYNC_INTERVAL_SECONDS = 30
#: Longest accepted interval. Keeps the value far below Go's ``time.Duration`` overflow (~292 years),
#: so the API server's CEL ``duration()`` and this module's parser always agree.
MAX_SYNC_INTERVAL_SECONDS = 8760 * 3600
MAX_API_REPLICAS = 100
#: Bounds on filter lists: they keep CEL cost estimates finite and catch runaway generated manifests.
MAX_FILTER_PATTERNS = 100
MAX_FILTER_PATTERN_LENGTH = 256

# DNS-1123 subdomain: the name format of Secrets and ConfigMaps.
DNS1123_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS1123_SUBDOMAIN_MAX_LENGTH = 253
# ConfigMap data keys (k8s.io/apimachinery IsConfigMapKey).
CONFIGMAP_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
# Kubernetes resource.Quantity, exactly as controller-gen emits it for ResourceRequirements.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
# metav1.Condition field patterns (copied from k8s.io/apimachinery so status matches the standard shape).
CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"

# Regular expressions used by both a CEL rule (RE2, via ``matches``) and its Python mirror
# (``re.fullmatch``). They stay inside the syntax both engines read the same way, and the CEL side
# anchors them with ``^...$`` (RE2's ``$`` only matches at the very end, like ``fullmatch``).
GO_DURATION_RE = r"([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+"
COMMIT_SHA_RE = r"[0-9a-fA-F]{7,40}"
GIT_URL_SCHEME_RE = r"(https?|git)://.*"
URL_USERINFO_RE = r"[A-Za-z][A-Za-z0-9+.-]*://[^/]*@.*"
# scheme://host[:port][/path]; host is a name, an IPv4 address or a bracketed IPv6 address. The path
# may hold anything but spaces and control characters.
URL_SHAPE_RE = r"[a-z]+://[A-Za-z0-9.:\[\]-]+(/[^\x00-\x20\x7f]*)?"
HTTP_URL_RE = r"https?://[A-Za-z0-9.:\[\]-]+(/[^\x00-\x20\x7f]*)?"
S3_BUCKET_RE = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
DOT_SEGMENT_RE = r"(^|/)[.][.](/|$)"
S3_DOT_SEGMENT_RE = r"(^|/)[.][.]?(/|$)"
REGISTRY_NAME_RE = r"[a-z]([-a-z0-9]*[a-z0-9])?"
#: ``<name>-api`` must be a Service name (DNS-1035 label, at most 63 characters).
MAX_REGISTRY_NAME_LENGTH = 59


# --- CEL rules -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CelRule:
    """One ``x-kubernetes-validations`` entry.

    ``reason`` is one of the API server's ``FieldValue*`` reasons; ``field_path`` (relative to the
    schema node carrying the rule) makes ``kubectl`` point at the offending field rather than its
    parent.
    """

    rule: str
    message: str
    reason: str | None = None
    field_path: str | None = None

    def to_schema(self) -> dict[str, str]:
        out = {"rule": self.rule, "message": self.message}
        if self.reason is not None:
            out["reason"] = self.reason
        if self.field_path is not None:
            out["fieldPath"] = self.field_path
        return out


def cel_string(value: str) -> str:
    """Quote ``value`` as a CEL single-quoted string literal (backslashes and quotes escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def cel_matches(expr: str, regex: str) -> str:
    """A CEL ``matches`` call that succeeds only when the whole of ``expr`` matches ``regex``."""
    return f"{expr}.matches({cel_string('^' + regex + '$')})"


def cel(*rules: CelRule) -> dict[str, Any]:
    """``json_schema_extra`` carrying CEL rules; the CRD generator copies them into the schema."""
    return {"x-kubernetes-validations": [r.to_schema() for r in rules]}


def _fullmatch(regex: str, value: str) -> bool:
    return re.fullmatch(regex, value) is not None


# --- Go durations --------------------------------------------------------------------------------

_DURATION_UNITS: dict[str, Fraction] = {
    "ns": Fraction(1, 1_000_000_000),
    "us": Fraction(1, 1_000_000),
    "ms": Fraction(1, 1000),
    "s": Fraction(1),
    "m": Fraction(60),
    "h": Fraction(3600),
}
_DURATION_PART = re.compile(r"([0-9]+(?:[.][0-9]+)?)(ns|us|ms|s|m|h)")


def parse_go_duration(text: str) -> float:
    """Seconds in a Go-style duration such as ``30s``, ``5m``, ``1h30m``, ``1.5h`` or ``250ms``.

    Accepts the unsigned subset of Go's ``time.ParseDuration`` that the CRD accepts (no sign, no bare
    ``0``, no ``µs``). Raises ``ValueError`` for anything else. Arithmetic is exact, so comparisons with
    the bounds agree with the API server's nanosecond arithmetic.
    """
    return float(_parse_go_duration_exact(text))


def _parse_go_duration_exact(text: str) -> Fraction:
    if not _fullmatch(GO_DURATION_RE, text):
        raise ValueError(
            f"{text!r} is not a Go duration such as 30s, 5m or 1h30m (units h, m, s, ms, us, ns)"
        )
    total = Fraction(0)
    for number, unit in _DURATION_PART.findall(text):
        # Go truncates each component to whole nanoseconds; do the same so bounds agree exactly.
        nanos = int(Fraction(number) * _DURATION_UNITS[unit] * 1_000_000_000)
        total += Fraction(nanos, 1_000_000_000)
    return total


# --- base classes --------------------------------------------------------------------------------


class _SpecModel(BaseModel):
    # extra="forbid" mirrors kubectl's default strict field validation, which refuses unknown fields;
    # the API server would otherwise prune them silently. Scalars that pydantic would coerce ("2" to 2,
    # "true" to True) are declared Strict*/JsonInt, because the API server refuses the wrong JSON type.
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
    )


class _StatusModel(BaseModel):
    # Status is written by the operator itself; reading it must never fail on a field an older or
    # newer operator version wrote, hence extra="ignore".
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="ignore",
    )


def _object_default(factory: type[BaseModel], description: str) -> Any:
    """A sub-object that defaults to ``{}`` both in pydantic and in the CRD (whose nested defaults
    then fill it in, so ``kubectl get -o yaml`` shows the effective settings)."""
    return Field(default_factory=factory, description=description, json_schema_extra={"default": {}})


#: The API server's OpenAPI validation counts a whole float as an integer only within +-(2**53 - 1).
_MAX_JSON_FLOAT_INTEGER = float(2**53 - 1)


def _json_integer(value: Any) -> Any:
    # What the API server takes for an integer: a JSON integer, or a whole float such as 2.0 within
    # the exactly representable range; never a string or a boolean, which pydantic's lax mode would
    # otherwise convert.
    if isinstance(value, str | bool):
        raise ValueError("must be an integer")
    if isinstance(value, float) and not (value.is_integer() and abs(value) <= _MAX_JSON_FLOAT_INTEGER):
        raise ValueError("must be an integer")
    return value


JsonInt = Annotated[int, BeforeValidator(_json_integer)]


# --- spec: references ----------------------------------------------------------------------------

DnsSubdomainName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=DNS1123_SUBDOMAIN_MAX_LENGTH,
        pattern=DNS1123_SUBDOMAIN_PATTERN,
    ),
]


class SecretReference(_SpecModel):
    """A Secret in the MCPRegistry's own namespace."""

    name: DnsSubdomainName = Field(
        description="Name of the Secret, in the MCPRegistry's namespace (a DNS-1123 subdomain)."
    )


# --- spec: source --------------------------------------------------------------------------------


class SourceType(StrEnum):
    """Where the catalogue comes from."""

    GIT = "git"
    CONFIGMAP = "configmap"


class CatalogFormat(StrEnum):
    """Format of the catalogue file."""

    AUTO = "auto"
    TOOLHIVE = "toolhive"
    UPSTREAM = "upstream"


class GitAuth(_SpecModel):
    """HTTPS credentials for the git repository."""

    secret_ref: SecretReference = Field(
        description=(
            "Secret in the same namespace holding the credentials: keys 'username' and 'password', "
            "or a single key 'token'. Its values never appear in logs, status or events."
        )
    )


_GIT_REF_PATTERN = r"^[^\x00-\x20\x7f~^:?*\[\\]+$"
_GIT_REF_RULE = CelRule(
    rule="!self.startsWith('-') && !self.contains('..')",
    message="must be a git ref name: it must not start with '-' or contain '..'",
    reason="FieldValueInvalid",
)


class GitSource(_SpecModel):
    """A file in a git repository, fetched over https://, http:// or git://."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            CelRule(
                rule="(has(self.branch) ? 1 : 0) + (has(self.tag) ? 1 : 0) + (has(self.commit) ? 1 : 0) <= 1",
                message="at most one of branch, tag and commit may be set",
                reason="FieldValueForbidden",
            ),
        )
    )

    repository: str = Field(
        min_length=1,
        max_length=2048,
        description=(
            "URL of the repository: https://, http:// or git://. file://, ssh:// and scp-style "
            "addresses are refused (the operator must not read its own filesystem, and SSH keys are not "
            "supported). Credentials must not be embedded in the URL: use auth.secretRef."
        ),
        json_schema_extra=cel(
            CelRule(
                rule=cel_matches("self", GIT_URL_SCHEME_RE),
                message=(
                    "repository must be an https://, http:// or git:// URL "
                    "(file://, ssh:// and scp-style addresses are not supported)"
                ),
                reason="FieldValueInvalid",
            ),
            CelRule(
                rule="!" + cel_matches("self", URL_USERINFO_RE),
                message=(
                    "repository must not contain credentials; "
                    "put them in a Secret referenced by auth.secretRef"
                ),
                reason="FieldValueForbidden",
            ),
            CelRule(
                rule=cel_matches("self", URL_SHAPE_RE),
                message=(
                    "repository must be a URL with a host (optionally :port) and a path "
                    "without spaces or control characters"
                ),
                reason="FieldValueInvalid",
            ),
        ),
    )
    branch: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        pattern=_GIT_REF_PATTERN,
        description="Branch to follow. At most one of branch, tag and commit; none follows the remote HEAD.",
        json_schema_extra=cel(_GIT_REF_RULE),
    )
    tag: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        pattern=_GIT_REF_PATTERN,
        description="Tag to use. At most one of branch, tag and commit.",
        json_schema_extra=cel(_GIT_REF_RULE),
    )
    commit: str | None = Field(
        default=None,
        min_length=7,
        max_length=40,
        description=(
            "Commit SHA to pin (7 to 40 hexadecimal characters). At most one of branch, tag and commit."
        ),
        json_schema_extra=cel(
            CelRule(
                rule=cel_matches("self", COMMIT_SHA_RE),
                message="commit must be a hexadecimal commit SHA of 7 to 40 characters",
                reason="FieldValueInvalid",
            )
        ),
    )
    path: str = Field(
        default="registry.json",
        min_length=1,
        max_length=1024,
        # Control characters would make status messages and logs misleading; spaces are legal.
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="Path of the catalogue file inside the repository, relative to its root.",
        json_schema_extra=cel(
            CelRule(
                rule="!self.startsWith('/')",
                message="path must be relative to the repository root (must not start with '/')",
                reason="FieldValueInvalid",
            ),
            CelRule(
                rule="!self.matches(" + cel_string(DOT_SEGMENT_RE) + ")",
                message="path must not contain '..' segments",
                reason="FieldValueInvalid",
            ),
        ),
    )
    auth: GitAuth | None = Field(
        default=None,
        description="Credentials for HTTPS repositories that need them. Omit for public repositories.",
    )

    @field_validator("repository")
    @classmethod
    def _check_repository(cls, value: str) -> str:
        if not _fullmatch(GIT_URL_SCHEME_RE, value):
            raise ValueError(
                "repository must be an https://, http:// or git:// URL "
                "(file://, ssh:// and scp-style addresses are not supported)"
            )
        if _fullmatch(URL_USERINFO_RE, value):
            raise ValueError(
                "repository must not contain credentials; put them in a Secret referenced by auth.secretRef"
            )
        if not _fullmatch(URL_SHAPE_RE, value):
            raise ValueError(
                "repository must be a URL with a host (optionally :port) and a path "
                "without spaces or control characters"
            )
        return value

    @field_validator("branch", "tag")
    @classmethod
    def _check_ref(cls, value: str | None) -> str | None:
        if value is not None and (value.startswith("-") or ".." in value):
            raise ValueError("must be a git ref name: it must not start with '-' or contain '..'")
        return value

    @field_validator("commit")
    @classmethod
    def _check_commit(cls, value: str | None) -> str | None:
        if value is not None and not _fullmatch(COMMIT_SHA_RE, value):
            raise ValueError("commit must be a hexadecimal commit SHA of 7 to 40 characters")
        return value

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: str) -> str:
        if value.startswith("/"):
            raise ValueError("path must be relative to the repository root (must not start with '/')")
        if ".." in value.split("/"):
            raise ValueError("path must not contain '..' segments")
        return value

    @model_validator(mode="after")
    def _one_ref(self) -> GitSource:
        if sum(v is not None for v in (self.branch, self.tag, self.commit)) > 1:
            raise ValueError("at most one of branch, tag and commit may be set")
        return self


class ConfigMapSource(_SpecModel):
    """A key of a ConfigMap in the MCPRegistry's namespace."""

    name: DnsSubdomainName = Field(description="Name of the ConfigMap, in the MCPRegistry's namespace.")
    key: str = Field(
        default="registry.json",
        min_length=1,
        max_length=253,
        pattern=CONFIGMAP_KEY_PATTERN,
        description="Key in the ConfigMap's data (or binaryData) holding the catalogue.",
    )


def _source_rules() -> dict[str, Any]:
    rules: list[CelRule] = []
    for type_, field, other in (("git", "git", "configMap"), ("configmap", "configMap", "git")):
        rules.append(
            CelRule(
                rule=f"self.type != '{type_}' || has(self.{field})",
                message=f"source.{field} is required when source.type is {type_}",
                reason="FieldValueRequired",
                field_path=f".{field}",
            )
        )
        rules.append(
            CelRule(
                rule=f"self.type != '{type_}' || !has(self.{other})",
                message=f"source.{other} must not be set when source.type is {type_}",
                reason="FieldValueForbidden",
                field_path=f".{other}",
            )
        )
    return cel(*rules)


class Source(_SpecModel):
    """Where the catalogue is read from. The sub-object named by type must be set, and no other."""

    model_config = ConfigDict(json_schema_extra=_source_rules())

    type: SourceType = Field(description="Kind of source: git or configmap.")
    format: CatalogFormat = Field(
        default=CatalogFormat.AUTO,
        description=(
            "Catalogue format: toolhive (ToolHive registry format), upstream (official MCP Registry "
            "server.json entries) or auto (detected from the content)."
        ),
    )
    git: GitSource | None = Field(
        default=None, description="Git repository source; required when type is git."
    )
    config_map: ConfigMapSource | None = Field(
        default=None, description="ConfigMap source; required when type is configmap."
    )

    @model_validator(mode="after")
    def _sub_object_matches_type(self) -> Source:
        present = {"git": self.git is not None, "configMap": self.config_map is not None}
        wanted = {SourceType.GIT: "git", SourceType.CONFIGMAP: "configMap"}[self.type]
        if not present[wanted]:
            raise ValueError(f"source.{wanted} is required when source.type is {self.type.value}")
        for field, is_set in present.items():
            if is_set and field != wanted:
                raise ValueError(f"source.{field} must not be set when source.type is {self.type.value}")
        return self


# --- spec: sync policy ---------------------------------------------------------------------------

_INTERVAL_FORMAT_MESSAGE = (
    "interval must be a Go duration such as 30s, 5m or 1h30m (units h, m, s, ms, us, ns)"
)
_INTERVAL_BOUNDS_MESSAGE = (
    f"interval must be at least {MIN_SYNC_INTERVAL_SECONDS}s and at most {MAX_SYNC_INTERVAL_SECONDS // 3600}h"
)


class SyncPolicy(_SpecModel):
    """When the operator syncs on its own, besides creation, spec changes and manual triggers."""

    interval: str | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        description=(
            "Time between automatic syncs, a Go duration such as 30s, 5m or 1h30m "
            f"(units h, m, s, ms, us, ns; {MIN_SYNC_INTERVAL_SECONDS}s to "
            f"{MAX_SYNC_INTERVAL_SECONDS // 3600}h). Each one first checks cheaply whether the source "
            "changed. Omit for manual-only syncing."
        ),
        json_schema_extra=cel(
            CelRule(
                rule=cel_matches("self", GO_DURATION_RE),
                message=_INTERVAL_FORMAT_MESSAGE,
                reason="FieldValueInvalid",
            ),
            # Guarded by the format check so an unparsable value yields one clear message, not an
            # evaluation error from duration().
            CelRule(
                rule=(
                    "!"
                    + cel_matches("self", GO_DURATION_RE)
                    + f" || (duration(self) >= duration('{MIN_SYNC_INTERVAL_SECONDS}s')"
                    + f" && duration(self) <= duration('{MAX_SYNC_INTERVAL_SECONDS // 3600}h'))"
                ),
                message=_INTERVAL_BOUNDS_MESSAGE,
                reason="FieldValueInvalid",
            ),
        ),
    )

    @field_validator("interval")
    @classmethod
    def _check_interval(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not _fullmatch(GO_DURATION_RE, value):
            raise ValueError(_INTERVAL_FORMAT_MESSAGE)
        seconds = _parse_go_duration_exact(value)
        if not MIN_SYNC_INTERVAL_SECONDS <= seconds <= MAX_SYNC_INTERVAL_SECONDS:
            raise ValueError(_INTERVAL_BOUNDS_MESSAGE)
        return value

    @property
    def interval_seconds(self) -> float | None:
        """The interval in seconds, or None for manual-only syncing."""
        return None if self.interval is None else parse_go_duration(self.interval)


# --- spec: filter --------------------------------------------------------------------------------

_FilterPattern = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_FILTER_PATTERN_LENGTH,
        description="A shell-style glob: * matches any run of characters, ? one character, [abc] a set.",
    ),
]


class GlobFilter(_SpecModel):
    """Include and exclude lists of shell-style globs (*, ?, [abc])."""

    include: list[_FilterPattern] = Field(
        default_factory=list,
        max_length=MAX_FILTER_PATTERNS,
        description=(
            "Keep only entries matching at least one of these globs. Empty or absent keeps everything."
        ),
    )
    exclude: list[_FilterPattern] = Field(
        default_factory=list,
        max_length=MAX_FILTER_PATTERNS,
        description="Drop entries matching any of these globs. Exclusion wins over inclusion.",
    )


class Filter(_SpecModel):
    """Which servers of the source catalogue are kept. Both filters must keep a server."""

    names: GlobFilter | None = Field(default=None, description="Globs matched against server names.")
    tags: GlobFilter | None = Field(
        default=None,
        description=(
            "Globs matched against server tags: include keeps a server with at least one matching tag, "
            "exclude drops a server with any matching tag."
        ),
    )


# --- spec: storage -------------------------------------------------------------------------------


class StorageType(StrEnum):
    """Where the processed catalogue is stored."""

    CONFIGMAP = "configmap"
    S3 = "s3"


class ServerSideEncryption(StrEnum):
    """S3 server-side encryption requested for stored objects."""

    NONE = ""
    AES256 = "AES256"
    AWS_KMS = "aws:kms"


_KMS_MESSAGE = "kmsKeyId may only be set when serverSideEncryption is aws:kms"
_S3_BUCKET_MESSAGE = (
    "bucket must be a valid S3 bucket name: 3 to 63 lowercase letters, digits, dots and hyphens, "
    "starting and ending with a letter or digit"
)
_S3_ENDPOINT_MESSAGE = "endpoint must be empty or an http:// or https:// URL with a host and optional :port"
_S3_PREFIX_SLASH_MESSAGE = "prefix must not start or end with '/' or contain '//'"
_S3_PREFIX_DOT_MESSAGE = "prefix must not contain '.' or '..' segments"


class S3Storage(_SpecModel):
    """An S3-compatible bucket (AWS S3, MinIO, ...)."""

    model_config = ConfigDict(
        json_schema_extra=cel(
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
            "Secret with keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. When absent, the standard AWS "
            "credential chain of the operator and API pods is used."
        ),
    )
    server_side_encryption: ServerSideEncryption = Field(
        default=ServerSideEncryption.NONE,
        description="Server-side encryption for written objects: '' (bucket default), AES256 or aws:kms.",
    )
    kms_key_id: str = Field(
        default="",
        max_length=2048,
        description=(
            "KMS key ID or ARN; only with serverSideEncryption aws:kms. Empty uses the AWS managed key."
        ),
    )

    @field_validator("bucket")
    @classmethod
    def _check_bucket(cls, value: str) -> str:
        if not _fullmatch(S3_BUCKET_RE, value):
            raise ValueError(_S3_BUCKET_MESSAGE)
        return value

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str) -> str:
        if value and not _fullmatch(HTTP_URL_RE, value):
            raise ValueError(_S3_ENDPOINT_MESSAGE)
        return value

    @field_validator("prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if value.startswith("/") or value.endswith("/") or "//" in value:
            raise ValueError(_S3_PREFIX_SLASH_MESSAGE)
        if value and any(segment in (".", "..") for segment in value.split("/")):
            raise ValueError(_S3_PREFIX_DOT_MESSAGE)
        return value

    @model_validator(mode="after")
    def _kms_only_with_kms(self) -> S3Storage:
        if self.kms_key_id and self.server_side_encryption is not ServerSideEncryption.AWS_KMS:
            raise ValueError(_KMS_MESSAGE)
        return self


class Storage(_SpecModel):
    """Where the processed catalogue is kept for the registry API."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            CelRule(
                # has(self.type): the API server also checks this rule against the bare default
                # ({}), before nested defaults fill type in.
                rule="!has(self.type) || self.type != 's3' || has(self.s3)",
                message="storage.s3 is required when storage.type is s3",
                reason="FieldValueRequired",
                field_path=".s3",
            )
        )
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

    @model_validator(mode="after")
    def _s3_needs_settings(self) -> Storage:
        if self.type is StorageType.S3 and self.s3 is None:
            raise ValueError("storage.s3 is required when storage.type is s3")
        return self


# --- spec: API workload --------------------------------------------------------------------------


def _check_quantity(value: int | str) -> int | str:
    if isinstance(value, str) and not _fullmatch(QUANTITY_PATTERN[1:-1], value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity such as 100m, 64Mi or 1")
    return value


# int-or-string with the quantity pattern, in the shape the API server expects for Quantity fields.
Quantity = Annotated[
    JsonInt | StrictStr,
    AfterValidator(_check_quantity),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
            "description": "A Kubernetes quantity, e.g. 100m, 0.5, 64Mi or 1.",
        }
    ),
]


class ResourceRequirements(_SpecModel):
    """Compute resources of the registry API container (requests and limits, as in a Pod)."""

    limits: dict[str, Quantity] = Field(
        default_factory=dict,
        max_length=16,
        description="Maximum resources, by resource name (cpu, memory, ephemeral-storage, ...).",
    )
    requests: dict[str, Quantity] = Field(
        default_factory=dict,
        max_length=16,
        description="Minimum resources the scheduler reserves, by resource name (cpu, memory, ...).",
    )


class Api(_SpecModel):
    """The registry API Deployment and Service the operator runs for this MCPRegistry."""

    enabled: StrictBool = Field(
        default=True,
        description="Run the registry API (Deployment and Service <name>-api). false removes them.",
    )
    replicas: JsonInt = Field(
        default=1,
        ge=0,
        le=MAX_API_REPLICAS,
        description=(
            f"Number of API pods (0 to {MAX_API_REPLICAS}). Not enforced while an HPA manages the Deployment."
        ),
        json_schema_extra={"format": "int32"},
    )
    image: str = Field(
        default="",
        max_length=512,
        pattern=r"^[^\x00-\x20\x7f]*$",
        description="Container image of the registry API. Empty uses the operator's own configured image.",
    )
    resources: ResourceRequirements = _object_default(
        ResourceRequirements, "Compute resources (requests and limits) of the API container."
    )


# --- spec ----------------------------------------------------------------------------------------


class MCPRegistrySpec(_SpecModel):
    """Desired state of an MCPRegistry: an organisation's own catalogue of MCP servers."""

    display_name: str | None = Field(
        default=None, max_length=256, description="Human-readable name of the catalogue."
    )
    source: Source = Field(description="Where the catalogue data comes from.")
    sync_policy: SyncPolicy | None = Field(
        default=None,
        description=(
            "Automatic sync schedule. Omit for manual-only syncing (annotation mcpregistry.dev/sync-trigger)."
        ),
    )
    filter: Filter | None = Field(
        default=None, description="Which servers to keep. Omit to keep all of them."
    )
    storage: Storage = _object_default(
        Storage, "Where the processed catalogue is stored. Defaults to ConfigMaps."
    )
    api: Api = _object_default(Api, "The in-cluster registry API serving the catalogue.")


# --- metadata.name -------------------------------------------------------------------------------

REGISTRY_NAME_MESSAGE = (
    f"metadata.name must be a DNS-1035 label of at most {MAX_REGISTRY_NAME_LENGTH} characters "
    "(lowercase letters, digits and '-', starting with a letter), so that the '<name>-api' Service "
    "name is valid"
)
#: Root-level CEL rule; the CRD generator places it on the resource's root schema.
REGISTRY_NAME_RULE = CelRule(
    rule=f"size(self.metadata.name) <= {MAX_REGISTRY_NAME_LENGTH} && "
    + cel_matches("self.metadata.name", REGISTRY_NAME_RE),
    message=REGISTRY_NAME_MESSAGE,
    reason="FieldValueInvalid",
)


def validate_registry_name(name: str) -> str:
    """Python mirror of :data:`REGISTRY_NAME_RULE`."""
    if len(name) > MAX_REGISTRY_NAME_LENGTH or not _fullmatch(REGISTRY_NAME_RE, name):
        raise ValueError(REGISTRY_NAME_MESSAGE)
    return name


# --- status --------------------------------------------------------------------------------------


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with second precision and a ``Z``, like metav1.Time."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


#: A timestamp as Kubernetes writes it; naive datetimes are refused so no local time leaks in.
K8sTime = Annotated[AwareDatetime, PlainSerializer(format_time, return_type=str)]


def now() -> datetime:
    """The current time, truncated to what a K8sTime can hold."""
    return datetime.now(UTC).replace(microsecond=0)


class Phase(StrEnum):
    """Overall phase of the MCPRegistry."""

    PENDING = "Pending"
    SYNCING = "Syncing"
    READY = "Ready"
    FAILED = "Failed"
    TERMINATING = "Terminating"


class SyncPhase(StrEnum):
    """Phase of the latest sync."""

    SYNCING = "Syncing"
    COMPLETE = "Complete"
    FAILED = "Failed"


class ApiPhase(StrEnum):
    """Phase of the registry API workload."""

    NOT_STARTED = "NotStarted"
    DEPLOYING = "Deploying"
    READY = "Ready"
    UNHEALTHY = "Unhealthy"


class ConditionType(StrEnum):
    """Condition types the operator maintains (all of them, always)."""

    SOURCE_AVAILABLE = "SourceAvailable"
    DATA_VALID = "DataValid"
    SYNCED = "Synced"
    API_READY = "APIReady"
    READY = "Ready"


class ConditionStatus(StrEnum):
    """Status of a condition."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(_StatusModel):
    """One aspect of the MCPRegistry's state, in the standard metav1.Condition shape."""

    type: str = Field(
        max_length=316,
        pattern=CONDITION_TYPE_PATTERN,
        description="Type of condition: SourceAvailable, DataValid, Synced, APIReady or Ready.",
    )
    status: ConditionStatus = Field(description="Status of the condition: True, False or Unknown.")
    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="metadata.generation of the spec this condition was computed from.",
        json_schema_extra={"format": "int64"},
    )
    last_transition_time: K8sTime = Field(description="When the condition's status last changed.")
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=CONDITION_REASON_PATTERN,
        description="Machine-readable CamelCase reason for the condition's status.",
    )
    message: str = Field(max_length=32768, description="Human-readable detail; may be empty.")


class SyncStatus(_StatusModel):
    """State of syncing the catalogue from its source."""

    phase: SyncPhase | None = Field(default=None, description="Syncing, Complete or Failed.")
    message: str | None = Field(default=None, description="What happened in the latest sync, for people.")
    revision: str | None = Field(
        default=None,
        description="Source revision of the stored data: git commit SHA or ConfigMap resourceVersion.",
    )
    last_sync_hash: str | None = Field(
        default=None, description="Content hash (sha256:...) of the stored catalogue."
    )
    last_sync_time: K8sTime | None = Field(
        default=None, description="When the latest successful sync finished."
    )
    last_attempt: K8sTime | None = Field(default=None, description="When the latest sync attempt started.")
    attempt_count: int | None = Field(
        default=None,
        ge=0,
        description="Consecutive failed attempts since the last success (0 after a success).",
    )
    server_count: int | None = Field(
        default=None, ge=0, description="Number of servers in the stored catalogue."
    )
    spec_hash: str | None = Field(
        default=None,
        description=(
            "Hash of the spec fields that shaped the stored data (source, filter, storage); a spec change "
            "that alters it forces a full sync even when the source revision is unchanged."
        ),
    )


class ApiStatus(_StatusModel):
    """State of the registry API workload."""

    phase: ApiPhase | None = Field(default=None, description="NotStarted, Deploying, Ready or Unhealthy.")
    endpoint: str | None = Field(
        default=None, description="In-cluster URL of the registry API; set only while it is ready."
    )
    ready_replicas: int | None = Field(default=None, ge=0, description="Number of ready API pods.")
    ready_since: K8sTime | None = Field(default=None, description="When the API last became ready.")
    message: str | None = Field(default=None, description="Why the API is not ready, for people.")


class S3StorageRef(_StatusModel):
    """Location of the catalogue in S3."""

    bucket: str = Field(description="Bucket holding the catalogue.")
    prefix: str | None = Field(default=None, description="Key prefix of this MCPRegistry's objects.")
    key: str | None = Field(
        default=None, description="Key of the pointer object naming the current generation."
    )
    endpoint: str | None = Field(default=None, description="Endpoint of the S3 service; absent for AWS.")
    region: str | None = Field(default=None, description="Region of the bucket, when one was set.")


class StorageRef(_StatusModel):
    """Where the current catalogue is stored."""

    type: StorageType = Field(description="configmap or s3.")
    config_maps: list[Annotated[str, Field(description="Name of a ConfigMap.")]] = Field(
        default_factory=list, description="Names of the ConfigMaps holding the catalogue, in order."
    )
    s3: S3StorageRef | None = Field(default=None, description="S3 location, when type is s3.")


class MCPRegistryStatus(_StatusModel):
    """Observed state of an MCPRegistry, written by the operator only."""

    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="metadata.generation last acted upon by the operator.",
        json_schema_extra={"format": "int64"},
    )
    phase: Phase | None = Field(
        default=None, description="Overall phase: Pending, Syncing, Ready, Failed or Terminating."
    )
    message: str | None = Field(default=None, description="Summary of the current state, for people.")
    sync_status: SyncStatus | None = Field(default=None, description="State of syncing from the source.")
    api_status: ApiStatus | None = Field(default=None, description="State of the registry API.")
    storage_ref: StorageRef | None = Field(default=None, description="Where the current catalogue is stored.")
    last_manual_sync_trigger: str | None = Field(
        default=None,
        description=(
            "The last value of the mcpregistry.dev/sync-trigger annotation acted upon (whether that "
            "sync succeeded or failed). Setting the annotation to any other value triggers a sync."
        ),
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="SourceAvailable, DataValid, Synced, APIReady and Ready conditions.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )

    @field_validator("conditions")
    @classmethod
    def _unique_condition_types(cls, value: list[Condition]) -> list[Condition]:
        # Mirrors x-kubernetes-list-type: map, which refuses two entries with the same type.
        types = [c.type for c in value]
        if len(types) != len(set(types)):
            raise ValueError("conditions must have unique types")
        return value

    def condition(self, type_: ConditionType | str) -> Condition | None:
        """The condition of that type, if present."""
        return next((c for c in self.conditions if c.type == type_), None)

    def set_condition(
        self,
        type_: ConditionType | str,
        status: ConditionStatus,
        reason: str,
        message: str = "",
        *,
        observed_generation: int | None = None,
        at: datetime | None = None,
    ) -> bool:
        """Set a condition in place; returns True if anything changed.

        ``lastTransitionTime`` moves only when the status changes, as metav1 requires; a recovery
        (False -> True) is a transition like any other, so conditions never stay stale after it.
        """
        current = self.condition(type_)
        if (
            current is not None
            and current.status == status
            and current.reason == reason
            and current.message == message
            and current.observed_generation == observed_generation
        ):
            return False
        transition = current.last_transition_time if current and current.status == status else (at or now())
        new = Condition(
            type=str(type_),
            status=status,
            observed_generation=observed_generation,
            last_transition_time=transition,
            reason=reason,
            message=message,
        )
        self.conditions = [new if c.type == type_ else c for c in self.conditions]
        if current is None:
            self.conditions.append(new)
        return True


# --- whole object --------------------------------------------------------------------------------


class RegistryMetadata(BaseModel):
    """The part of ObjectMeta the operator reads; everything else is kept as-is."""

    model_config = ConfigDict(extra="allow")

    name: str
    namespace: str | None = None

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return validate_registry_name(value)


class MCPRegistry(BaseModel):
    """A whole MCPRegistry object, e.g. from a manifest or an API response."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    api_version: Literal["mcpregistry.dev/v1alpha1"]
    kind: Literal["MCPRegistry"]
    metadata: RegistryMetadata
    spec: MCPRegistrySpec
    status: MCPRegistryStatus | None = None
