"""Auth mode oidc against a real HTTP issuer of the test's own (discovery document and JWKS served by
aiohttp, keys made with cryptography): signatures, audience, issuer, expiry, required claims, key
rotation and its rate limit, and the RFC 9728 metadata with the challenge that points at it."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric import rsa

from mcpreg.apiconfig import OidcAuthConfig
from mcpreg_api.auth.decision import ReviewFailed
from mcpreg_api.auth.middleware import PROTECTED_RESOURCE_PATH, Authenticator, ProtectedResource
from mcpreg_api.auth.oidc import OidcAuthenticator
from mcpreg_api.metrics import ApiMetrics

ISSUER = "https://issuer.example"
AUDIENCE = "https://registry.example/company"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Issuer:
    """A discovery document and a JWKS over HTTP; `keys` by kid may change between fetches."""

    keys: dict[str, rsa.RSAPrivateKey] = field(default_factory=dict)
    issuer: str = ISSUER
    fetches: int = 0
    base: str = ""

    def app(self) -> web.Application:
        app = web.Application()

        async def discovery(request: web.Request) -> web.Response:
            return web.json_response({"issuer": self.issuer, "jwks_uri": f"{self.base}/openid/v1/jwks"})

        async def jwks(request: web.Request) -> web.Response:
            self.fetches += 1
            keys = []
            for kid, key in self.keys.items():
                jwk: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
                keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
            return web.json_response({"keys": keys})

        app.router.add_get("/.well-known/openid-configuration", discovery)
        app.router.add_get("/openid/v1/jwks", jwks)
        return app

    def token(self, kid: str = "k1", key: rsa.RSAPrivateKey | None = None, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": [AUDIENCE], "sub": "agent", "iat": now, "exp": now + 600, **claims}
        body = {name: value for name, value in body.items() if value is not None}  # None: left out
        return jwt.encode(body, key or self.keys[kid], algorithm="RS256", headers={"kid": kid})


@pytest_asyncio.fixture(loop_scope="function")
async def issuer() -> AsyncIterator[Issuer]:
    served = Issuer(keys={"k1": new_key()})
    server = TestServer(served.app())
    await server.start_server()
    served.base = str(server.make_url("")).rstrip("/")
    yield served
    await server.close()


def authenticator(issuer: Issuer, **settings: Any) -> OidcAuthenticator:
    config = OidcAuthConfig(
        issuer=ISSUER,
        audience=AUDIENCE,
        discovery_url=f"{issuer.base}/.well-known/openid-configuration",
        **settings,
    )
    return OidcAuthenticator(config, metrics=ApiMetrics())


async def test_a_token_of_the_issuer_for_this_audience_reads(issuer: Issuer) -> None:
    decision = await authenticator(issuer).decide(issuer.token())
    assert (decision.outcome, decision.subject) == ("allowed", "agent")
    assert decision.expires_at is not None and decision.expires_at > time.time()


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": ["https://other.example"]}, "the token is not issued for this registry"),
        ({"iss": "https://evil.example"}, "the token is not from the configured issuer"),
        ({"exp": int(time.time()) - 3600}, "the token has expired"),
        ({"sub": None}, "the token has no sub claim"),
    ],
)
async def test_tokens_not_for_us_are_401s(issuer: Issuer, claims: dict[str, Any], reason: str) -> None:
    decision = await authenticator(issuer).decide(issuer.token(**claims))
    assert (decision.outcome, decision.reason) == ("unauthenticated", reason)


async def test_forged_and_malformed_tokens_are_401s(issuer: Issuer) -> None:
    auth = authenticator(issuer)
    forged = issuer.token(key=new_key())  # the right kid, another key
    hmac = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": 2**31},
        "a-shared-secret-of-32-bytes-or-more",
        algorithm="HS256",
    )
    for token, reason in (
        (forged, "the token is invalid"),
        (hmac, "the token is not signed with a public-key algorithm"),
        ("not-a-jwt", "the token is not a JWT"),
        ('a"b', "the bearer token is malformed"),
    ):
        decision = await auth.decide(token)
        assert (decision.outcome, decision.reason) == ("unauthenticated", reason)


async def test_required_claims_decide_403(issuer: Issuer) -> None:
    auth = authenticator(issuer, required_claims={"team": "a", "verified": "true"})
    assert (await auth.decide(issuer.token(team="a", verified=True))).outcome == "allowed"
    refused = await auth.decide(issuer.token(team="b", verified=True))
    assert (refused.outcome, refused.reason) == (
        "forbidden",
        "agent may not read this registry: claim team must be 'a'",
    )


async def test_rotated_keys_are_fetched_again_but_not_for_every_unknown_kid(issuer: Issuer) -> None:
    auth = authenticator(issuer, jwks_refresh_seconds=3600)
    assert (await auth.decide(issuer.token())).outcome == "allowed"
    assert issuer.fetches == 1
    for kid in ("nope-1", "nope-2", "nope-3"):
        decision = await auth.decide(issuer.token(kid=kid, key=new_key()))
        assert decision.reason == "the token is not signed by the issuer's keys"
    assert issuer.fetches == 1  # within jwks_refresh_seconds of the last fetch: not fetched again

    rotating = authenticator(issuer, jwks_refresh_seconds=0)
    assert (await rotating.decide(issuer.token())).outcome == "allowed"
    issuer.keys["k2"] = new_key()
    assert (await rotating.decide(issuer.token(kid="k2"))).outcome == "allowed"
    assert issuer.fetches == 3


async def test_a_discovery_document_of_another_issuer_is_no_decision(issuer: Issuer) -> None:
    issuer.issuer = "https://impostor.example"
    with pytest.raises(ReviewFailed, match=re.escape("is not issuer https://issuer.example's document")):
        await authenticator(issuer).decide(issuer.token())


async def test_an_unreachable_issuer_is_no_decision() -> None:
    config = OidcAuthConfig(issuer=ISSUER, audience=AUDIENCE, discovery_url="http://127.0.0.1:9/x")
    with pytest.raises(ReviewFailed, match="cannot fetch the issuer's keys"):
        await OidcAuthenticator(config, metrics=ApiMetrics()).decide(Issuer(keys={"k1": new_key()}).token())


async def test_protected_resource_metadata_and_the_challenge_naming_it(
    issuer: Issuer, edge_file: Any
) -> None:
    from mcpreg.storage import FileCatalogReader
    from mcpreg_api.app import LOADER, create_app
    from mcpreg_api.config import AccessLogConfig, HttpConfig

    auth = authenticator(issuer)

    def build(metrics: ApiMetrics) -> Authenticator:
        return auth

    app = create_app(
        FileCatalogReader(edge_file, poll_interval=0.05, count_servers=lambda _: 0),
        config=HttpConfig(access_log=AccessLogConfig(enabled=False)),
        authenticator=build,
        realm=AUDIENCE,
        protected_resource=ProtectedResource(AUDIENCE, (ISSUER,)),
    )
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        await app[LOADER].wait_loaded()
        metadata = await client.get(PROTECTED_RESOURCE_PATH)
        assert metadata.status == 200
        assert await metadata.json() == {
            "resource": AUDIENCE,
            "authorization_servers": [ISSUER],
            "bearer_methods_supported": ["header"],
        }
        refused = await client.get("/v0.1/servers")
        assert refused.status == 401
        url = str(client.make_url(PROTECTED_RESOURCE_PATH))
        assert refused.headers["WWW-Authenticate"] == f'Bearer realm="{AUDIENCE}", resource_metadata="{url}"'
        read = await client.get("/v0.1/servers", headers={"Authorization": f"Bearer {issuer.token()}"})
        assert read.status == 200
    finally:
        await client.close()
