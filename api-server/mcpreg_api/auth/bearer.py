"""The bearer token of a request (RFC 6750 §2.1), and the `WWW-Authenticate` challenge of a refusal."""

from __future__ import annotations

import re

# RFC 6750's b64token: what a bearer token may be made of; anything else is malformed, not looked up.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
MAX_TOKEN_BYTES = 8192  # a Kubernetes token is about 1 KiB; aiohttp caps a header at 8190 anyway


class MalformedCredentials(ValueError):
    """An Authorization header that is not `Bearer <token>`; the message says what is wrong."""


def bearer_token(authorization: str | None) -> str | None:
    """The token of `Authorization: Bearer <token>`; None when there is no header at all.
    Raises MalformedCredentials for any other scheme, no token or an oversized one."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise MalformedCredentials("the Authorization header must be 'Bearer <token>'")
    token = token.strip()
    if not token:
        raise MalformedCredentials("the Authorization header carries no token")
    if len(token) > MAX_TOKEN_BYTES:
        raise MalformedCredentials("the bearer token is malformed")
    return token


def well_formed(token: str) -> bool:
    """Whether `token` is made of what RFC 6750 allows. Checked before a token is first reviewed (a
    cached decision was made for a token that passed), so not on every request."""
    return _B64TOKEN.fullmatch(token) is not None


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def challenge(
    realm: str,
    error: str | None = None,
    description: str | None = None,
    *,
    resource_metadata: str | None = None,
) -> str:
    """A `WWW-Authenticate: Bearer` value (RFC 6750 §3): no error code when no credentials were sent;
    `resource_metadata` is the URL of the RFC 9728 metadata (§5.1)."""
    parts = [f"realm={_quoted(realm)}"]
    if resource_metadata:
        parts.append(f"resource_metadata={_quoted(resource_metadata)}")
    if error:
        parts.append(f"error={_quoted(error)}")
    if description:
        parts.append(f"error_description={_quoted(description)}")
    return "Bearer " + ", ".join(parts)
