"""The middleware that lets a request through only when its caller may read.

Open without credentials: `/health`, `/readiness` and `/metrics` (probes and Prometheus scrapes on the
same port), and every OPTIONS request (browsers send CORS preflights without credentials). Everything
else needs `Authorization: Bearer <token>`: missing, malformed, invalid, expired or wrong-audience
tokens are answered 401 with a `WWW-Authenticate: Bearer` challenge, callers RBAC does not allow 403,
both with a JSON problem body; a review the Kubernetes API server could not answer is a 503 (logged),
never a decision. The caller's subject is put on the request for the access log.
"""

from __future__ import annotations

import logging
from typing import Protocol

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from mcpreg_api.accesslog import SUBJECT_KEY
from mcpreg_api.auth.bearer import MalformedCredentials, bearer_token, challenge
from mcpreg_api.auth.decision import Decision, ReviewFailed
from mcpreg_api.errors import ApiError

log = logging.getLogger("mcpreg_api.auth")

OPEN_PATHS = frozenset({"/health", "/readiness", "/metrics"})


class Authenticator(Protocol):
    async def decide(self, token: str) -> Decision: ...


def _unauthorized(realm: str, detail: str, error: str | None) -> ApiError:
    return ApiError(
        401, detail, headers={"WWW-Authenticate": challenge(realm, error, detail if error else None)}
    )


def auth_middleware(authenticator: Authenticator, realm: str) -> Middleware:
    """`realm`: what the challenge names (the audience tokens must be issued for)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "OPTIONS" or request.path in OPEN_PATHS:
            return await handler(request)
        try:
            token = bearer_token(request.headers.get("Authorization"))
        except MalformedCredentials as exc:
            raise _unauthorized(realm, str(exc), "invalid_token") from None
        if token is None:
            raise _unauthorized(realm, "this registry needs a bearer token (Authorization: Bearer ...)", None)
        try:
            decision = await authenticator.decide(token)
        except ReviewFailed as exc:
            log.warning("cannot check a caller's credentials: %s", exc)
            raise ApiError(
                503, "cannot check credentials right now; try again shortly", headers={"Retry-After": "1"}
            ) from None
        if decision.subject is not None:
            request[SUBJECT_KEY] = decision.subject
        if decision.outcome == "unauthenticated":
            raise _unauthorized(realm, decision.reason, "invalid_token")
        if decision.outcome == "forbidden":
            raise ApiError(403, decision.reason)
        return await handler(request)

    return middleware
