"""Auth, the pure parts: bearer headers and challenges, what review answers amount to, the decision
cache, and the middleware's answers (401/403/503, open paths, the caller on the request) with an
authenticator whose decisions the test chooses."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mcpreg.storage import FileCatalogReader
from mcpreg_api.accesslog import AccessLogSink, JsonAccessLogger
from mcpreg_api.app import LOADER, create_app
from mcpreg_api.auth.bearer import MalformedCredentials, bearer_token, challenge, well_formed
from mcpreg_api.auth.cache import TtlCache, token_key
from mcpreg_api.auth.decision import Caller, Decision, ReviewFailed, from_access_review, from_token_review
from mcpreg_api.auth.middleware import Authenticator
from mcpreg_api.config import AccessLogConfig, HttpConfig
from mcpreg_api.metrics import ApiMetrics

AUDIENCE = "mcpregistry.dev/team-a/company"
AGENT = "system:serviceaccount:team-a:agent"

# --- bearer ---------------------------------------------------------------------------------------


def test_a_bearer_token_is_read_from_the_header() -> None:
    assert bearer_token("Bearer abc.DEF-_~+/=") == "abc.DEF-_~+/="
    assert bearer_token("bearer   abc  ") == "abc"  # the scheme is case-insensitive
    assert bearer_token(None) is None


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Basic dXNlcjpwYXNz", "must be 'Bearer <token>'"),
        ("Bearer", "carries no token"),
        ("Bearer   ", "carries no token"),
        ("Bearer " + "a" * 9000, "malformed"),
    ],
)
def test_other_credentials_are_malformed(header: str, message: str) -> None:
    with pytest.raises(MalformedCredentials, match=message):
        bearer_token(header)


def test_tokens_of_characters_rfc_6750_does_not_allow_are_malformed() -> None:
    assert well_formed("abc.DEF-_~+/==")
    for token in ("a b", 'a"b', "a,b", "é"):
        assert not well_formed(token), token


def test_challenges_follow_rfc_6750() -> None:
    assert challenge(AUDIENCE) == f'Bearer realm="{AUDIENCE}"'
    assert challenge("r", "invalid_token", 'say "no"') == (
        'Bearer realm="r", error="invalid_token", error_description="say \\"no\\""'
    )


# --- decisions ------------------------------------------------------------------------------------


def test_an_authenticated_token_names_its_caller() -> None:
    status = {
        "authenticated": True,
        "audiences": [AUDIENCE],
        "user": {
            "username": AGENT,
            "uid": "u-1",
            "groups": ["system:serviceaccounts", "system:authenticated"],
            "extra": {"authentication.kubernetes.io/pod-name": ["agent-0"]},
        },
    }
    assert from_token_review(status, AUDIENCE) == Caller(
        AGENT,
        "u-1",
        ("system:serviceaccounts", "system:authenticated"),
        (("authentication.kubernetes.io/pod-name", ("agent-0",)),),
    )


def test_unauthenticated_and_other_audience_tokens_are_401s() -> None:
    refused = from_token_review({"authenticated": False, "error": "token expired"}, AUDIENCE)
    assert isinstance(refused, Decision) and refused.outcome == "unauthenticated"
    # The apiserver's own words stay in its answer; the caller gets a general reason.
    assert refused.reason == "the token is invalid, expired or not for this registry"
    other = from_token_review(
        {"authenticated": True, "audiences": ["https://kubernetes.default.svc"], "user": {"username": "x"}},
        AUDIENCE,
    )
    assert isinstance(other, Decision) and other.outcome == "unauthenticated"
    assert other.reason == "the token is not issued for this registry"


@pytest.mark.parametrize("status", [None, "x", {"authenticated": True}, {"authenticated": True, "user": {}}])
def test_an_odd_token_review_is_no_decision(status: object) -> None:
    with pytest.raises(ReviewFailed):
        from_token_review(status, AUDIENCE)


def test_access_review_decides() -> None:
    caller = Caller(AGENT)
    assert from_access_review({"allowed": True}, caller, "x") == Decision("allowed", caller)
    denied = from_access_review({"allowed": False, "reason": "RBAC: nothing"}, caller, "verb get on y")
    assert denied.outcome == "forbidden" and denied.subject == AGENT
    assert denied.reason == f"{AGENT} may not read this registry: it needs verb get on y"
    assert from_access_review({"allowed": True, "denied": True}, caller, "x").outcome == "forbidden"
    with pytest.raises(ReviewFailed):
        from_access_review(None, caller, "x")


# --- cache ----------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_the_ttl() -> None:
    clock = Clock()
    cache: TtlCache[str] = TtlCache(10, 100, clock=clock)
    cache.put(b"k", "v")
    clock.now += 9.9
    assert cache.get(b"k") == "v"
    clock.now += 0.1
    assert cache.get(b"k") is None and len(cache) == 0


def test_the_least_recently_used_entry_goes_first() -> None:
    cache: TtlCache[int] = TtlCache(10, 2)
    cache.put(b"a", 1)
    cache.put(b"b", 2)
    assert cache.get(b"a") == 1  # a is now the most recently used
    cache.put(b"c", 3)
    assert (cache.get(b"a"), cache.get(b"b"), cache.get(b"c"), len(cache)) == (1, None, 3, 2)


def test_tokens_are_kept_by_digest() -> None:
    assert token_key("secret") != b"secret" and len(token_key("secret")) == 32


async def test_concurrent_first_requests_share_one_review() -> None:
    cache: TtlCache[str] = TtlCache(10, 100)
    calls = 0
    release = asyncio.Event()

    async def review() -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        return "decided"

    waiting = [asyncio.create_task(cache.get_or_compute(b"k", review)) for _ in range(20)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*waiting) == ["decided"] * 20
    assert calls == 1
    assert await cache.get_or_compute(b"k", review) == "decided" and calls == 1


async def test_a_failed_review_is_not_cached() -> None:
    cache: TtlCache[str] = TtlCache(10, 100)

    async def failing() -> str:
        raise ReviewFailed("apiserver away")

    async def working() -> str:
        return "decided"

    with pytest.raises(ReviewFailed):
        await cache.get_or_compute(b"k", failing)
    assert await cache.get_or_compute(b"k", working) == "decided"


# --- middleware -----------------------------------------------------------------------------------

TOKENS = {
    "good": Decision("allowed", Caller(AGENT)),
    "stranger": Decision("forbidden", Caller("system:serviceaccount:team-b:x"), "x may not read it"),
    "bad": Decision("unauthenticated", reason="the token is invalid, expired or not for this registry"),
}


class ChosenDecisions:
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def decide(self, token: str) -> Decision:
        self.asked.append(token)
        if token == "unreachable":
            raise ReviewFailed("connection refused to 10.0.0.1")
        return TOKENS[token]


Guarded = tuple[TestClient[web.Request, web.Application], "ChosenDecisions", io.StringIO]


@pytest_asyncio.fixture(loop_scope="function")
async def guarded(
    edge_file: Path,
) -> AsyncIterator[Guarded]:
    decisions = ChosenDecisions()
    log = io.StringIO()

    def build(metrics: ApiMetrics) -> Authenticator:
        return decisions

    reader = FileCatalogReader(edge_file, poll_interval=0.05, count_servers=lambda _: 0)
    app = create_app(
        reader,
        config=HttpConfig(access_log=AccessLogConfig(enabled=False)),
        authenticator=build,
        realm=AUDIENCE,
    )
    server = TestServer(app)
    await server.start_server(
        access_log_class=JsonAccessLogger, access_log=AccessLogSink(log, flush_interval=0)
    )
    client = TestClient(server)
    await client.start_server()
    await app[LOADER].wait_loaded()
    yield client, decisions, log
    await client.close()


def last_logged(log: io.StringIO) -> dict[str, object]:
    line: dict[str, object] = json.loads(log.getvalue().splitlines()[-1])
    return line


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_an_allowed_caller_reads_and_is_logged(guarded: Guarded) -> None:
    client, _, log = guarded
    response = await client.get("/v0.1/servers", headers=bearer("good"))
    assert response.status == 200
    await response.read()
    assert last_logged(log)["subject"] == AGENT


async def test_no_token_is_a_401_with_a_bare_challenge(guarded: Guarded) -> None:
    client, decisions, log = guarded
    response = await client.get("/v0.1/servers")
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == f'Bearer realm="{AUDIENCE}"'
    assert (await response.json())["status"] == 401
    assert decisions.asked == []
    assert "subject" not in last_logged(log)


async def test_an_invalid_token_is_a_401_naming_the_error(guarded: Guarded) -> None:
    client, _, _ = guarded
    for headers in (bearer("bad"), {"Authorization": "Basic dXNlcjpwYXNz"}):
        response = await client.get("/v0.1/servers", headers=headers)
        assert response.status == 401
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
        assert response.headers["Content-Type"] == "application/problem+json"


async def test_a_caller_rbac_refuses_is_a_403_with_a_json_body(guarded: Guarded) -> None:
    client, _, log = guarded
    response = await client.get("/api/v1/registry", headers=bearer("stranger"))
    assert response.status == 403
    assert await response.json() == {"title": "Forbidden", "status": 403, "detail": "x may not read it"}
    assert last_logged(log)["subject"] == "system:serviceaccount:team-b:x"


async def test_an_unanswered_review_is_a_503_without_internals(guarded: Guarded) -> None:
    client, _, _ = guarded
    response = await client.get("/v0.1/servers", headers=bearer("unreachable"))
    assert response.status == 503 and response.headers["Retry-After"] == "1"
    assert "10.0.0.1" not in await response.text()


@pytest.mark.parametrize("path", ["/health", "/readiness", "/metrics"])
async def test_probes_and_metrics_stay_open(guarded: Guarded, path: str) -> None:
    client, decisions, _ = guarded
    response = await client.get(path)
    assert response.status == 200
    assert decisions.asked == []


async def test_preflights_need_no_token(guarded: Guarded) -> None:
    client, _, _ = guarded
    response = await client.options(
        "/v0.1/servers", headers={"Origin": "https://vscode.dev", "Access-Control-Request-Method": "GET"}
    )
    assert response.status == 204


async def test_everything_else_needs_a_token(guarded: Guarded) -> None:
    client, _, _ = guarded
    for path in ("/version", "/openapi.yaml", "/", "/v0.1/x/dev.mcpregistry/info", "/no-such-thing"):
        assert (await client.get(path)).status == 401, path
