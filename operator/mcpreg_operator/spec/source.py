"""``spec.source``: where the catalogue is read from, a file in a git repository or a ConfigMap key."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import ConfigDict, Field

from mcpreg_operator.spec.base import (
    DnsSubdomainName,
    NamespacedReference,
    ObjectKey,
    ResourceModel,
    SecretReference,
)
from mcpreg_operator.spec.cel import CelRule, cel, cel_matches, cel_rules, cel_string
from mcpreg_operator.spec.source_api import ApiSource
from mcpreg_operator.spec.source_url import CosignVerification, UrlSource
from mcpreg_operator.spec.url_rules import URL_SHAPE_RE, URL_USERINFO_RE

# Regular expressions of the CEL rules (RE2, via ``matches``). The git client checks a repository
# URL and a commit against the same ones before use (see ``mcpreg_operator.sources.git``).
COMMIT_SHA_RE = r"[0-9a-fA-F]{7,40}"
GIT_URL_SCHEME_RE = r"(https?|git)://.*"
DOT_SEGMENT_RE = r"(^|/)[.][.](/|$)"


#: Where the catalogue comes from.
SourceType = StrEnum("SourceType", {"GIT": "git", "CONFIGMAP": "configmap", "URL": "url", "API": "api"})


#: Format of the catalogue file.
CatalogFormat = StrEnum("CatalogFormat", {"AUTO": "auto", "TOOLHIVE": "toolhive", "UPSTREAM": "upstream"})


class GitAuth(ResourceModel):
    """HTTPS credentials for the git repository."""

    secret_ref: SecretReference = Field(
        description=(
            "Secret in the same namespace holding the credentials: keys 'username' and 'password', "
            "or a single key 'token'. Its values never appear in logs, status or events."
        )
    )


#: What carries the signature to check.
VerifyMode = StrEnum("VerifyMode", {"HEAD": "HEAD", "TAG": "Tag", "TAG_AND_HEAD": "TagAndHEAD"})


class GitVerification(ResourceModel):
    """Signature verification of what is synced: an unsigned or untrusted revision is refused."""

    mode: VerifyMode = Field(
        default=VerifyMode.HEAD,
        description=(
            "HEAD: the synced commit must be signed by a trusted key. Tag: the annotated tag named by "
            "tag must be (its commit need not be). TagAndHEAD: both. Tag and TagAndHEAD need tag."
        ),
    )
    secret_ref: SecretReference = Field(
        description=(
            "Secret in the same namespace holding the trusted keys: key 'allowed_signers' for SSH "
            "signatures (the format of ssh-keygen's allowed signers file, as git's "
            "gpg.ssh.allowedSignersFile), and any keys ending in '.asc' (ASCII-armored) or '.gpg' "
            "(binary) holding OpenPGP public keys. A signature of either kind is checked against the "
            "keys of its kind."
        )
    )


#: A commit SHA, whole or abbreviated; checked by a CEL rule (its message names the field: commit).
CommitSha = Annotated[
    str,
    Field(
        min_length=7,
        max_length=40,
        json_schema_extra=cel(
            CelRule(
                rule=cel_matches("self", COMMIT_SHA_RE),
                message="commit must be a hexadecimal commit SHA of 7 to 40 characters",
                reason="FieldValueInvalid",
            )
        ),
    ),
]

_GIT_REF_PATTERN = r"^[^\x00-\x20\x7f~^:?*\[\\]+$"
_GIT_REF_RULE = CelRule(
    rule="!self.startsWith('-') && !self.contains('..')",
    message="must be a git ref name: it must not start with '-' or contain '..'",
    reason="FieldValueInvalid",
)


def _git_ref_field(description: str) -> Any:
    """An optional branch or tag name: git's ref-name rules, as schema pattern and CEL rule."""
    return Field(
        default=None,
        min_length=1,
        max_length=255,
        pattern=_GIT_REF_PATTERN,
        description=description,
        json_schema_extra=cel(_GIT_REF_RULE),
    )


class GitSource(ResourceModel):
    """A file in a git repository, fetched over https://, http:// or git://."""

    model_config = cel_rules(
        CelRule(
            rule="(has(self.branch) ? 1 : 0) + (has(self.tag) ? 1 : 0) + (has(self.commit) ? 1 : 0) <= 1",
            message="at most one of branch, tag and commit may be set",
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule="!has(self.verify) || self.verify.mode == 'HEAD' || has(self.tag)",
            message="verify.mode Tag and TagAndHEAD need tag: only an annotated tag carries a signature",
            reason="FieldValueRequired",
            field_path=".verify.mode",
        ),
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
    branch: str | None = _git_ref_field(
        "Branch to follow. At most one of branch, tag and commit; none follows the remote HEAD."
    )
    tag: str | None = _git_ref_field("Tag to use. At most one of branch, tag and commit.")
    commit: CommitSha | None = Field(
        default=None,
        description=(
            "Commit SHA to pin (7 to 40 hexadecimal characters). At most one of branch, tag and commit."
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
    verify: GitVerification | None = Field(
        default=None,
        description=(
            "Verify the signature of every synced revision (SSH or OpenPGP) against trusted keys. "
            "A revision that is unsigned, signed by another key or badly signed is refused with the "
            "reason SourceVerificationFailed, and the last good catalogue stays served."
        ),
    )


class BlobVerification(CosignVerification):
    """The signature of a ConfigMap's catalogue: a key of the same ConfigMap."""

    signature_key: ObjectKey | None = Field(
        default=None,
        description=(
            "Key of the same ConfigMap holding the base64 signature (the output of `cosign sign-blob`); "
            "default: the catalogue's key with '.sig' appended."
        ),
    )


class ConfigMapSource(NamespacedReference):
    """A key of a ConfigMap in the MCPRegistry's namespace."""

    name: DnsSubdomainName = Field(description="Name of the ConfigMap, in the MCPRegistry's namespace.")
    key: ObjectKey = Field(
        default="registry.json",
        description="Key in the ConfigMap's data (or binaryData) holding the catalogue.",
    )
    verify: BlobVerification | None = Field(
        default=None,
        description=(
            "Verify a detached signature of the catalogue before parsing it; a missing or wrong "
            "signature fails the sync with the reason SourceVerificationFailed and the last good "
            "catalogue stays served."
        ),
    )

    @property
    def signature_key_name(self) -> str:
        return self.verify.signature_key if self.verify and self.verify.signature_key else f"{self.key}.sig"


# Each source type and the field holding its settings: that field is required, every other forbidden.
_SOURCE_FIELDS = {"git": "git", "configmap": "configMap", "url": "url", "api": "api"}


def _type_rule(type_: str, field: str, *, required: bool) -> CelRule:
    """That ``source.<field>`` is set (``required``) or not set when ``source.type`` is ``type_``."""
    if required:
        test, must, reason = f"has(self.{field})", "is required", "FieldValueRequired"
    else:
        test, must, reason = f"!has(self.{field})", "must not be set", "FieldValueForbidden"
    return CelRule(
        rule=f"self.type != '{type_}' || {test}",
        message=f"source.{field} {must} when source.type is {type_}",
        reason=reason,
        field_path=f".{field}",
    )


def _source_rules() -> dict[str, Any]:
    rules: list[CelRule] = []
    for type_, field in _SOURCE_FIELDS.items():
        rules.append(_type_rule(type_, field, required=True))
        rules.extend(
            _type_rule(type_, other, required=False) for other in _SOURCE_FIELDS.values() if other != field
        )
    rules.append(
        CelRule(
            # An API mirror is assembled as an upstream-format list: no other format can read it.
            rule="self.type != 'api' || !has(self.format) || self.format != 'toolhive'",
            message="source.format must be auto or upstream when source.type is api",
            reason="FieldValueInvalid",
            field_path=".format",
        )
    )
    return cel(*rules)


def _settings_of(type_: SourceType, what: str) -> Any:
    """The optional sub-object holding the settings of one source type (`_source_rules` requires it
    with that type and forbids it with every other)."""
    return Field(default=None, description=f"{what}; required when type is {type_}.")


class Source(ResourceModel):
    """Where the catalogue is read from. The sub-object named by type must be set, and no other."""

    model_config = ConfigDict(json_schema_extra=_source_rules())

    type: SourceType = Field(description="Kind of source: git, configmap, url or api.")
    format: CatalogFormat = Field(
        default=CatalogFormat.AUTO,
        description=(
            "Catalogue format: toolhive (ToolHive registry format), upstream (official MCP Registry "
            "server.json entries) or auto (detected from the content)."
        ),
    )
    git: GitSource | None = _settings_of(SourceType.GIT, "Git repository source")
    config_map: ConfigMapSource | None = _settings_of(SourceType.CONFIGMAP, "ConfigMap source")
    url: UrlSource | None = _settings_of(SourceType.URL, "One catalogue document over HTTPS")
    api: ApiSource | None = _settings_of(SourceType.API, "An MCP Registry API v0.1 endpoint to mirror")
