"""``spec.api.auth``: who may read the registry API. Anonymous by default (as before); `kubernetes`
lets Kubernetes decide: a bearer token the API server accepts (TokenReview, bound to an audience),
authorized by RBAC (a SubjectAccessReview of verb `get` on `mcpregistries/catalog` named after the
registry, in its namespace). See docs/api-auth.md."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, StrictStr

from mcpreg_operator.spec.base import NO_SPACE_PATTERN, JsonInt32, NoSpaceStr, ResourceModel, object_default
from mcpreg_operator.spec.cel import cel_rules, required_when

#: How the registry API authenticates its callers.
AuthMode = StrEnum("AuthMode", {"ANONYMOUS": "anonymous", "KUBERNETES": "kubernetes", "OIDC": "oidc"})

#: An audience or a claim name, as tokens carry them.
_TokenName = Annotated[NoSpaceStr, Field(max_length=253)]
#: A URL or URI: the issuer's, its discovery document's, this API's resource identifier (each field
#: gives its pattern).
_Uri = Annotated[StrictStr, Field(max_length=2048)]


class KubernetesAuth(ResourceModel):
    """Bearer tokens checked by the Kubernetes API server (TokenReview) and authorized by RBAC."""

    audience: _TokenName = Field(
        default="",
        description=(
            "The audience tokens must be issued for (TokenRequest `audiences`, a projected token's "
            "`audience`). Empty: mcpregistry.dev/<namespace>/<name>, one per registry."
        ),
    )
    cache_ttl_seconds: JsonInt32 = Field(
        default=10,
        ge=1,
        le=300,
        description=(
            "How long each API pod reuses a token's review and authorization decision, in seconds: "
            "also how long a revoked token or a removed RoleBinding may still be honoured."
        ),
    )


class OidcAuth(ResourceModel):
    """JWTs of an OpenID Connect issuer, verified by the API pods with the issuer's published keys."""

    issuer: _Uri = Field(
        pattern=r"^https://[^\x00-\x20\x7f]+$",
        description="The issuer URL: tokens' iss claim, and where its discovery document is found.",
    )
    audience: _TokenName = Field(
        min_length=1,
        description="What the tokens' aud claim must contain: this registry's identifier at the issuer.",
    )
    discovery_url: _Uri = Field(
        default="",
        pattern=r"^(https?://[^\x00-\x20\x7f]+)?$",
        description=(
            "Where to read the discovery document, when not at <issuer>/.well-known/openid-configuration "
            "(an issuer whose name resolves elsewhere). Its issuer must still be the issuer above."
        ),
    )
    ca_bundle: StrictStr = Field(
        default="",
        max_length=65536,
        description="PEM certificates to trust for discovery and keys. Empty: the image's system roots.",
    )
    username_claim: _TokenName = Field(
        default="sub",
        min_length=1,
        description="The claim naming the caller (in the access log and 403 answers).",
    )
    required_claims: dict[
        StrictStr, Annotated[StrictStr, Field(max_length=1024, description="The value the claim must have.")]
    ] = Field(
        default_factory=dict,
        max_length=32,
        description="Claims a token must carry with exactly these values (else 403), e.g. {team: platform}.",
    )
    cache_ttl_seconds: JsonInt32 = Field(
        default=60,
        ge=1,
        le=3600,
        description="How long a verified token's decision is reused (never past its exp), in seconds.",
    )
    resource: _Uri = Field(
        default="",
        pattern=NO_SPACE_PATTERN,
        description="This API's identifier in its RFC 9728 metadata. Empty: the audience.",
    )


class ApiAuth(ResourceModel):
    """Who may read the registry API. /health, /readiness and /metrics always answer without credentials."""

    model_config = cel_rules(
        required_when(
            "oidc", key="mode", value="oidc", message="mode oidc needs oidc.issuer and oidc.audience"
        )
    )

    mode: AuthMode = Field(
        default=AuthMode.ANONYMOUS,
        description=(
            "anonymous: anyone reaching the Service reads (the default); kubernetes: a bearer token the "
            "Kubernetes API server accepts for the audience below, whose subject RBAC allows verb get on "
            "mcpregistries/catalog with this registry's name, in its namespace; oidc: a JWT of the issuer "
            "below (signature, audience, expiry, required claims)."
        ),
    )
    kubernetes: KubernetesAuth = object_default(
        KubernetesAuth, "Settings of mode kubernetes (ignored in the other modes)."
    )
    oidc: OidcAuth | None = Field(default=None, description="Settings of mode oidc; required with it.")
