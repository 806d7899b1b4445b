"""The middleware that lets a request through only when its caller may read.

Open without credentials: `/health`, `/readiness` and `/metrics` (probes and Prometheus scrapes on the
same port), and every OPTIONS request (browsers send CORS preflights without credentials). Everything
else needs `Authorization: Bearer <token>`: missing, malformed, invalid, expired or wrong-audience
tokens are answered 401 with a `WWW-Authenticate: Bearer` challenge, callers RBAC does not allow 403,
both with a JSON problem body; a review the Kubernetes API server could not answer is a 503 (logged),
never a decision. The caller's subject is put on the request for the access log.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from mcpreg_api.accesslog import SUBJECT_KEY
from mcpreg_api.auth.bearer import MalformedCredentials, bearer_token, challenge
from mcpreg_api.auth.decision import Decision, ReviewFailed
from mcpreg_api.errors import ApiError

log = logging.getLogger("mcpreg_api.auth")

PROTECTED_RESOURCE_PATH = "/.well-known/oauth-protected-resource"
OPEN_PATHS = frozenset({"/health", "/readiness", "/metrics", PROTECTED_RESOURCE_PATH})


@dataclass(frozen=True)
class ProtectedResource:
    """This API as an OAuth 2.0 protected resource (RFC 9728): its identifier and who issues its tokens,
    served at PROTECTED_RESOURCE_PATH and named in every 401 challenge (`resource_metadata`)."""

    resource: str
    authorization_servers: tuple[str, ...]

    def document(self) -> bytes:
        return json.dumps(
            {
                "resource": self.resource,
                "authorization_servers": list(self.authorization_servers),
                "bearer_methods_supported": ["header"],
            },
            separators=(",", ":"),
        ).encode()

    def register(self, app: web.Application) -> None:
        body = self.document()

        async def metadata(request: web.Request) -> web.StreamResponse:
            return web.Response(
                body=body,
                headers={"Content-Type": "application/json", "Cache-Control": "public, max-age=300"},
            )

        app.router.add_get(PROTECTED_RESOURCE_PATH, metadata)


class Authenticator(Protocol):
    async def decide(self, token: str) -> Decision: ...


def auth_middleware(
    authenticator: Authenticator, realm: str, protected_resource: ProtectedResource | None = None
) -> Middleware:
    """`realm`: what the challenge names (the audience tokens must be issued for); with
    `protected_resource`, challenges also point at its RFC 9728 metadata."""

    def _unauthorized(request: web.Request, detail: str, error: str | None) -> ApiError:
        metadata = None
        if protected_resource is not None:
            metadata = f"{request.scheme}://{request.host}{PROTECTED_RESOURCE_PATH}"
        value = challenge(realm, error, detail if error else None, resource_metadata=metadata)
        return ApiError(401, detail, headers={"WWW-Authenticate": value})

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "OPTIONS" or request.path in OPEN_PATHS:
            return await handler(request)
        try:
            token = bearer_token(request.headers.get("Authorization"))
        except MalformedCredentials as exc:
            raise _unauthorized(request, str(exc), "invalid_token") from None
        if token is None:
            raise _unauthorized(
                request, "this registry needs a bearer token (Authorization: Bearer ...)", None
            )
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
            raise _unauthorized(request, decision.reason, "invalid_token")
        if decision.outcome == "forbidden":
            raise ApiError(403, decision.reason)
        return await handler(request)

    return middleware
