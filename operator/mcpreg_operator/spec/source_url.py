"""``spec.source.url``: one catalogue document fetched over HTTPS (issue 15), optionally with a detached
cosign signature beside it (issue 18)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field

from mcpreg.catalog.limits import DEFAULT_MAX_BYTES
from mcpreg_operator.spec.base import (
    DnsSubdomainName,
    JsonInt,
    NamespacedReference,
    ObjectKey,
    ResourceModel,
    SecretReference,
)
from mcpreg_operator.spec.cel import cel, cel_rules, exactly_one_of
from mcpreg_operator.spec.durations import DurationSetting
from mcpreg_operator.spec.url_rules import http_url_rules

_URL_MAX_LENGTH = 2048
_TIMEOUT = DurationSetting("timeout", default="60s", min_s=1, max_s=600)


def url_field(name: str, description: str, *, required: bool) -> Any:
    """An http(s) URL field with the CEL rules of `http_url_rules`."""
    optional: dict[str, Any] = {} if required else {"default": None}
    return Field(
        **optional,
        min_length=1,
        max_length=_URL_MAX_LENGTH,
        description=description,
        json_schema_extra=cel(*http_url_rules(name)),
    )


def max_bytes_field(what: str, past_it: str) -> Any:
    """A limit of the bytes one sync reads: at most the catalogue's own limit, which is its default."""
    return Field(
        default=DEFAULT_MAX_BYTES,
        ge=1,
        le=DEFAULT_MAX_BYTES,
        description=(
            f"{what} after decompression (default and maximum {DEFAULT_MAX_BYTES // (1024 * 1024)} MiB, "
            f"the catalogue limit). {past_it}"
        ),
    )


class UrlAuth(ResourceModel):
    """Credentials sent with each request to the catalogue's host."""

    secret_ref: SecretReference = Field(
        description=(
            "Secret in the same namespace: key 'token' (sent as 'Authorization: Bearer <token>'), or "
            "keys 'username' and 'password' (HTTP basic), or key 'headers' (lines 'Name: value', for "
            "servers that want e.g. 'PRIVATE-TOKEN' or 'X-API-Key'). Credentials go only to the host "
            "of url (and of a redirect on that host); values never appear in logs, status or events."
        )
    )


#: The auth field of the HTTP sources: one client sends the credentials for every source type.
SourceAuth = Annotated[
    UrlAuth | None, Field(description="Credentials sent with every request; omit for a public source.")
]


class KeyReference(NamespacedReference):
    """One key of a Secret or ConfigMap in the MCPRegistry's namespace."""

    name: DnsSubdomainName = Field(description="Name of the object, in the MCPRegistry's namespace.")
    key: ObjectKey = Field(default="ca.crt", description="Key holding the PEM certificates.")


class CaBundle(ResourceModel):
    """PEM CA certificates that the catalogue's server certificate must chain to."""

    model_config = cel_rules(
        exactly_one_of(
            "secretRef", "configMapRef", message="caBundle needs exactly one of secretRef and configMapRef"
        )
    )

    secret_ref: KeyReference | None = Field(
        default=None, description="A Secret key holding the CA certificates."
    )
    config_map_ref: KeyReference | None = Field(
        default=None, description="A ConfigMap key holding the CA certificates."
    )


#: The caBundle field of the HTTP sources: one client trusts them for every source type.
PrivateCaBundle = Annotated[
    CaBundle | None,
    Field(
        description=(
            "CA certificates for a server whose certificate a private CA issued. When set, only these CAs "
            "are trusted (not the system's); omit to trust the system's CAs."
        )
    ),
]


#: Which redirects are followed (at most five, never from https:// to http://).
RedirectPolicy = StrEnum(
    "RedirectPolicy", {"SAME_HOST": "SameHost", "ANY_HOST": "AnyHost", "REFUSE": "Refuse"}
)


class CosignVerification(ResourceModel):
    """A detached signature in the format of `cosign sign-blob`, checked against trusted public keys
    before the catalogue is parsed; where the signature is found depends on the source."""

    secret_ref: SecretReference = Field(
        description=(
            "Secret in the same namespace holding the trusted public keys: every key ending in '.pub' "
            "(PEM, ECDSA P-256 or Ed25519, as `cosign generate-key-pair` writes cosign.pub). A signature "
            "by any of them is accepted, so a rotation can list the old and the new key for a while."
        )
    )


#: The redirects field of the HTTP sources: one client follows them for every source type.
Redirects = Annotated[
    RedirectPolicy,
    Field(
        description=(
            "SameHost (default): follow redirects on url's host only. AnyHost: to other hosts too "
            "(credentials are not sent there). Refuse: a redirect fails the sync. At most five are "
            "followed, never from https:// to http://."
        )
    ),
]


class UrlVerification(CosignVerification):
    """The signature of a document fetched over HTTPS: at a URL of its own."""

    signature_url: str | None = url_field(
        "signatureUrl",
        (
            "URL of the base64 signature (the output of `cosign sign-blob`); default: url with '.sig' "
            "appended to its path. Fetched with the same CA and rules as url; credentials are sent only "
            "when it is on url's host."
        ),
        required=False,
    )


class UrlSource(ResourceModel):
    """One catalogue document (any supported format) fetched with a conditional GET, so that an unchanged
    document costs one small request answered 304."""

    url: str = url_field(
        "url",
        (
            "URL of the catalogue document: https://, or http:// only where the operator allows it "
            "(its setting allowInsecureHttpSources, off by default). No credentials in the URL: use "
            "auth.secretRef. Link-local addresses (169.254.0.0/16, fe80::/10: cloud metadata services) "
            "are refused, whatever name resolves to them."
        ),
        required=True,
    )
    auth: SourceAuth = None
    ca_bundle: PrivateCaBundle = None
    max_bytes: JsonInt = max_bytes_field(
        "Largest document accepted, in bytes", "Reading stops past it and the sync fails with SourceTooLarge."
    )
    timeout: str = _TIMEOUT.field("Time allowed for one fetch, redirects and body included")
    redirects: Redirects = RedirectPolicy.SAME_HOST
    verify: UrlVerification | None = Field(
        default=None,
        description=(
            "Verify a detached signature of the document before parsing it; a missing or wrong signature "
            "fails the sync with the reason SourceVerificationFailed and the last good catalogue stays "
            "served."
        ),
    )

    @property
    def timeout_seconds(self) -> float:
        return _TIMEOUT.seconds(self.timeout)

    @property
    def signature_location(self) -> str:
        """Where the detached signature is: verify.signatureUrl, or url + '.sig' (before any query)."""
        if self.verify is not None and self.verify.signature_url:
            return self.verify.signature_url
        base, sep, query = self.url.partition("?")
        return f"{base}.sig{sep}{query}"
