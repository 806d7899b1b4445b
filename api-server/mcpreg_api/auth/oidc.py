"""Auth mode `oidc`: JWTs of an OpenID Connect issuer, verified here.

The issuer's discovery document gives its `jwks_uri`; the keys are fetched once and again when a token
names a key not among them (at most every `jwks_refresh_seconds`, so random `kid`s cannot make the API
hammer the issuer). A token must be signed with an asymmetric algorithm by one of those keys, for the
configured issuer (`iss`) and audience (`aud`), unexpired (`exp`, required), and carry each required
claim with its value. Decisions are cached by the token's digest, never past the token's `exp`.
Everything here that waits (discovery, keys) is asynchronous; verifying a signature takes tens of
microseconds and happens once per token per TTL.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from typing import Any

import aiohttp
import jwt

from mcpreg.apiconfig import OidcAuthConfig
from mcpreg_api.auth.bearer import well_formed
from mcpreg_api.auth.cache import TtlCache, token_key
from mcpreg_api.auth.decision import MALFORMED, Caller, Decision, ReviewFailed
from mcpreg_api.metrics import ApiMetrics

# Only public-key signatures: an HMAC ("HS256") token would be checked with a public key as its secret.
ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
LEEWAY_SECONDS = 30  # clock skew between the issuer and this pod
MAX_DOCUMENT_BYTES = 1024 * 1024


def _refused(reason: str) -> Decision:
    return Decision("unauthenticated", reason=reason)


class OidcAuthenticator:
    def __init__(self, config: OidcAuthConfig, *, metrics: ApiMetrics, clock: Any = time.monotonic) -> None:
        self.config = config
        self.metrics = metrics
        self.clock = clock
        self.cache: TtlCache[Decision] = TtlCache(config.cache_ttl_seconds, config.cache_max_entries)
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        self._ssl = ssl.create_default_context(cadata=config.ca_bundle) if config.ca_bundle else None

    async def decide(self, token: str) -> Decision:
        key = token_key(token)
        return await self.cache.get_or_compute(key, lambda: self._verify(token), self._lifetime)

    @staticmethod
    def _lifetime(decision: Decision) -> float | None:
        expires = decision.expires_at
        return None if expires is None else max(0.0, expires - time.time())

    # --- keys -----------------------------------------------------------------------------------

    async def _get_json(self, session: aiohttp.ClientSession, url: str) -> Any:
        async with session.get(url, ssl=self._ssl if self._ssl is not None else True) as response:
            if response.status != 200:
                raise ReviewFailed(f"{url} answered {response.status}")
            body = await response.content.read(MAX_DOCUMENT_BYTES + 1)
            if len(body) > MAX_DOCUMENT_BYTES:
                raise ReviewFailed(f"{url} sent more than {MAX_DOCUMENT_BYTES} bytes")
            return json.loads(body)

    async def _fetch_keys(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.config.fetch_timeout_seconds)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                discovery = await self._get_json(session, self.config.discovery)
                if not isinstance(discovery, dict) or discovery.get("issuer") != self.config.issuer:
                    raise ReviewFailed(
                        f"{self.config.discovery} is not issuer {self.config.issuer}'s document"
                    )
                jwks_uri = discovery.get("jwks_uri")
                if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
                    raise ReviewFailed("the discovery document names no jwks_uri")
                document = await self._get_json(session, jwks_uri)
        except (aiohttp.ClientError, TimeoutError, ValueError, ssl.SSLError) as exc:
            self.metrics.auth_reviews.labels("keys", "failed").inc()
            raise ReviewFailed(f"cannot fetch the issuer's keys: {exc!r}") from exc
        except ReviewFailed:
            self.metrics.auth_reviews.labels("keys", "failed").inc()
            raise
        keys: dict[str, jwt.PyJWK] = {}
        for entry in (document.get("keys") if isinstance(document, dict) else None) or []:
            try:
                key = jwt.PyJWK.from_dict(entry)
            except jwt.PyJWTError:
                continue  # a key of a kind we cannot use (or an encryption key): not for signatures
            if isinstance(entry, dict) and entry.get("use", "sig") == "sig":
                keys[str(entry.get("kid") or "")] = key
        self.metrics.auth_reviews.labels("keys", "fetched").inc()
        self._keys, self._fetched_at = keys, self.clock()

    async def _key(self, kid: str) -> jwt.PyJWK | None:
        key = self._keys.get(kid)
        if key is not None:
            return key
        async with self._lock:
            key = self._keys.get(kid)  # fetched meanwhile
            if key is not None:
                return key
            recently = (
                self._fetched_at is not None
                and self.clock() - self._fetched_at < self.config.jwks_refresh_seconds
            )
            if not recently:
                await self._fetch_keys()
            return self._keys.get(kid)

    # --- a token ----------------------------------------------------------------------------------

    async def _verify(self, token: str) -> Decision:
        if not well_formed(token):
            return MALFORMED
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return _refused("the token is not a JWT")
        algorithm = header.get("alg")
        if algorithm not in ASYMMETRIC:
            return _refused("the token is not signed with a public-key algorithm")
        key = await self._key(str(header.get("kid") or ""))
        if key is None:
            return _refused("the token is not signed by the issuer's keys")
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[algorithm],
                audience=self.config.audience,
                issuer=self.config.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            return _refused("the token has expired")
        except jwt.InvalidAudienceError:
            return _refused("the token is not issued for this registry")
        except jwt.InvalidIssuerError:
            return _refused("the token is not from the configured issuer")
        except jwt.PyJWTError:
            return _refused("the token is invalid")
        username = claims.get(self.config.username_claim)
        if not isinstance(username, str) or not username:
            return _refused(f"the token has no {self.config.username_claim} claim")
        caller = Caller(username)
        expires_at = float(claims["exp"])
        for name, wanted in self.config.required_claims.items():
            if _claim_text(claims.get(name)) != wanted:
                return Decision(
                    "forbidden",
                    caller,
                    f"{username} may not read this registry: claim {name} must be {wanted!r}",
                    expires_at=expires_at,
                )
        return Decision("allowed", caller, expires_at=expires_at)


def _claim_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None
